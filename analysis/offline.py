"""Make a saved Panel page truly self-contained: ``save(resources=INLINE)`` inlines the
scripts, but Panel still links its own stylesheets and icons on its CDN (holoviz/panel#6759);
offline, those links fail. Each link is replaced by a data URI of the file Panel ships."""

from __future__ import annotations

import base64
import mimetypes
import re
from pathlib import Path

import panel

_DIST = Path(panel.__file__).parent / "dist"
_CDN = re.compile(r"https://cdn\.holoviz\.org/panel/[^/\"']+/dist/([^\"'\s?]+)(\?v=[^\"'\s]*)?")


def _data_uri(match: re.Match) -> str:
    local = _DIST / match.group(1)
    if not local.is_file():
        return match.group(0)
    kind = mimetypes.guess_type(local.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(local.read_bytes()).decode()}"


def inline_panel_resources(path: str | Path) -> Path:
    """Rewrite the HTML file at ``path`` with Panel's CDN links replaced by data URIs."""
    path = Path(path)
    path.write_text(_CDN.sub(_data_uri, path.read_text(encoding="utf-8")), encoding="utf-8")
    return path


__all__ = ["inline_panel_resources"]
