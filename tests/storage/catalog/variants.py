"""Runs of the catalog tests made from the real one: other ids, seeds, algorithms, curves."""

from __future__ import annotations

import uuid

from neuroptimus.storage.catalog.schema import CatalogRun, GenerationRow


def variant(
    base: CatalogRun, curve: list[tuple[int, float]] | None = None, **changes
) -> CatalogRun:
    """``base`` with a new run id and ``changes``; ``curve``: (cumulative evaluations, best
    so far) per generation, which also sets the evaluations and the final error."""
    update = {"run_id": str(uuid.uuid4()), **changes}
    if curve is not None:
        update["curve"] = [
            GenerationRow(generation=g, evaluations=n, best=b, cumulative_best=b)
            for g, (n, b) in enumerate(curve)
        ]
        update.setdefault("evaluations", curve[-1][0])
        update.setdefault("final_error", curve[-1][1])
    return base.model_copy(update=update)
