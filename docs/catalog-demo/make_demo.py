"""Write the demo catalog's runs: the metadata.json of every run store in the folders given
(benchmark folders), as ``metadata/<problem>-<store>.json`` beside this script.

The problem's folder (``problem.base_dir``, where the uploader's model files were) becomes the
bundled use case's folder relative to the repository, so the files carry no machine's path and
``neuroptimus catalog reproduce`` finds the model from the repository's root. Each run keeps
its store's random ``run_id`` (a store older than run ids is given one, kept in the store).

    python docs/catalog-demo/make_demo.py BENCHMARK_FOLDER...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from neuroptimus.storage.catalog.intake.ingest import run_from_metadata, store_metadata

HERE = Path(__file__).resolve().parent
BUNDLED = HERE.parents[1] / "usecases"


def shipped(data: dict) -> dict:
    """``data`` with the problem's folder made the bundled use case's (relative)."""
    problem = dict(data["problem"])
    folder = Path(problem.get("base_dir") or ".")
    if (BUNDLED / folder.name).is_dir():
        problem["base_dir"] = f"usecases/{folder.name}"
    return {**data, "problem": problem}


def main(folders: list[str]) -> None:
    out = HERE / "metadata"
    out.mkdir(exist_ok=True)
    for folder in folders:
        for store in sorted(Path(folder).glob("*.zarr")):
            data = shipped(store_metadata(store, hash_files=True))
            run_from_metadata(data)  # what the catalog will check on upload
            path = out / f"{data['model_name']}-{store.stem}.json"
            path.write_text(json.dumps(data, separators=(",", ":"), allow_nan=False) + "\n")
            print(path.relative_to(HERE))


if __name__ == "__main__":
    main(sys.argv[1:])
