"""A small catalog for the page tests: the session's real ``hh`` run (CMA-ES, seed 3), runs of
the same problem derived from it (other algorithms, seeds and uploaders: the curve scaled, so
the ranking is known), and one run of the original tool's metadata.json (a weak use case)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuroptimus.storage.catalog.intake.ingest import run_from_metadata, run_from_store
from neuroptimus.storage.catalog.schema import CatalogRun
from tests.storage.catalog.original_metadata import original_metadata

NAMESPACE = uuid.UUID("3f1d2a8e-0b5c-4f7e-9a41-6c2d8e0f5b17")
# (key, label, package, uploader, error factor per seed): PSO best, random search worst
VARIANTS = [
    ("cmaes", "CMA-ES (cmaes)", "cmaes", "alice", (1.0, 1.3)),
    ("pso", "PSO (pygmo)", "pygmo", "bob", (0.5, 0.6, 0.7)),
    ("random", "Random search", "neuroptimus", "bob", (4.0, 5.0)),
]


@dataclass
class SiteData:
    tokens: dict[str, str]  # handle -> token
    real: CatalogRun  # the real run
    runs: dict[str, CatalogRun] = field(default_factory=dict)  # run_id -> record
    slug: str = ""  # the hh use case
    original_slug: str = ""
    original_id: str = ""
    private_id: str = ""


def derived(run: CatalogRun, key: str, label: str, package: str, seed: int,
            factor: float) -> CatalogRun:  # fmt: skip
    """``run`` as if another algorithm (or seed) had found errors ``factor`` times its own."""
    run_id = str(uuid.uuid5(NAMESPACE, f"{key}-{seed}"))
    scale = lambda v: None if v is None else v * factor  # noqa: E731
    curve = [row.model_copy(update={name: scale(getattr(row, name)) for name in
                                    ("best", "cumulative_best", "median", "mean", "worst")})
             for row in run.curve]  # fmt: skip
    return run.model_copy(update={
        "run_id": run_id, "algorithm_key": key, "algorithm_label": label, "package": package,
        "seed": seed, "final_error": scale(run.final_error), "curve": curve,
        "optimization_name": f"hh_{key}_seed{seed}",
        "metadata": {**run.metadata, "run_id": run_id},
    })  # fmt: skip


def fill(catalog, store: Path) -> SiteData:
    tokens = {h: catalog.issue_token(h) for h in ("alice", "bob")}
    who = {h: catalog.authenticate(t) for h, t in tokens.items()}
    real = run_from_store(store)
    data = SiteData(tokens=tokens, real=real)
    data.slug = catalog.put_run(real, who["alice"]).use_case_slug
    data.runs[real.run_id] = real
    for key, label, package, uploader, factors in VARIANTS:
        for seed, factor in enumerate(factors, start=1):
            if (key, seed) == ("cmaes", 3):
                continue
            run = derived(real, key, label, package, seed, factor)
            catalog.put_run(run, who[uploader])
            data.runs[run.run_id] = run
    hidden = derived(real, "cmaes", "CMA-ES (cmaes)", "cmaes", 99, 0.01)
    catalog.put_run(hidden, who["alice"], visibility="private")
    data.private_id = hidden.run_id
    original = run_from_metadata(original_metadata())
    result = catalog.put_run(original, who["bob"])
    data.original_slug, data.original_id = result.use_case_slug, original.run_id
    return data


def filled_site(folder: Path, store: Path) -> tuple[Any, Any, SiteData]:
    """(app, catalog, data): the whole site on an SQLite catalog in ``folder``, filled."""
    from neuroptimus.storage.catalog.web.site import create_site

    app = create_site(f"sqlite:///{folder / 'catalog.sqlite'}", folder / "files")
    return app, app.state.catalog, fill(app.state.catalog, store)
