"""What the JSON API's routes share: the catalog of the request's app, who may ask
(``Depends`` annotations for endpoints), YAML downloads, and stored file names kept inside
the app's files folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from fastapi import Depends, HTTPException, Request, Response

from neuroptimus.storage.catalog.db.repository import Catalog, Principal
from neuroptimus.storage.catalog.web.auth import require, viewer

Viewer = Annotated[Principal | None, Depends(viewer)]
Uploader = Annotated[Principal, Depends(require("upload"))]
Reader = Annotated[Principal, Depends(require("read"))]


def catalog_of(request: Request) -> Catalog:
    return request.app.state.catalog


# the catalog of the request's app, for a route's parameter (routers are module-level)
CatalogDep = Annotated[Catalog, Depends(catalog_of)]


def yaml_download(data: dict[str, Any], filename: str) -> Response:
    return Response(
        yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
        media_type="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def inside_files(files: Path, name: str) -> Path:
    """A stored file name as a path that cannot leave the files folder."""
    path = (files / name).resolve()
    if not path.is_relative_to(files.resolve()):
        raise HTTPException(404, "the file is not in this catalog.")
    return path


def remove_file(files: Path, name: str) -> None:
    path = inside_files(files, name)
    path.unlink(missing_ok=True)
    # the run's folder, once empty
    if path.parent != files.resolve() and not any(path.parent.iterdir()):
        path.parent.rmdir()
