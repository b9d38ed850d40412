"""What the results catalog holds about one run: the typed summary every part of the catalog
(ingest, database, API, pages, command line) passes around.

A run's evaluations stay in its Zarr store; the catalog keeps a few kilobytes per run (its
numbers, parameters, error components and one row per generation) and a link to the store.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from neuroptimus.optimization.problem.identity import UseCaseIdentity

# What the catalog's columns hold (PostgreSQL refuses more; SQLite takes 64-bit integers):
# counts are 32-bit, seeds 64-bit, names as long as their columns.
COUNT_MAX = 2**31 - 1
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1

SourceFormat = Literal["neuroptimus", "original-neuroptimus"]
Visibility = Literal["public", "unlisted", "private"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _finite_or_none(value: float | None) -> float | None:
    """Scores are real numbers or missing; NaN and infinities are refused where given."""
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number (or null when unknown)")
    return value


class ParameterRow(_Strict):
    name: str = Field(max_length=200)
    unit: str = Field("", max_length=50)
    lower: float
    upper: float
    log: bool = False
    optimum: float | None = None
    true_value: float | None = None

    _finite = field_validator("lower", "upper", "optimum", "true_value")(_finite_or_none)


class ComponentRow(_Strict):
    """One error component of the best individual."""

    name: str = Field(max_length=300)
    value: float | None
    weight: float
    weighted_value: float | None

    _finite = field_validator("value", "weight", "weighted_value")(_finite_or_none)


class GenerationRow(_Strict):
    """One generation: ``evaluations`` is cumulative (simulations stored up to its end)."""

    generation: int = Field(ge=0, le=COUNT_MAX)
    evaluations: int = Field(ge=0, le=COUNT_MAX)
    best: float | None = None  # the generation's own minimum
    cumulative_best: float | None = None
    median: float | None = None
    mean: float | None = None
    worst: float | None = None
    failed: int | None = Field(None, ge=0, le=COUNT_MAX)
    seconds: float | None = None

    _finite = field_validator("best", "cumulative_best", "median", "mean", "worst", "seconds")(
        _finite_or_none
    )


class CatalogRun(_Strict):
    """The catalog's record of one finished (or partial) run."""

    run_id: str = Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    source_format: SourceFormat
    use_case: UseCaseIdentity
    optimization_name: str
    # the registry key (``cmaes``), or the original's name for its uploads
    algorithm_key: str = Field(max_length=100)
    algorithm_label: str = Field(max_length=200)
    package: str = Field(max_length=100)
    settings: dict[str, Any] = {}
    population: int | None = Field(default=None, ge=1, le=COUNT_MAX)
    generations: int | None = Field(default=None, ge=0, le=COUNT_MAX)  # generations run
    budget: int | None = Field(default=None, ge=1, le=COUNT_MAX)  # the budget it was given
    seed: int | None = Field(default=None, ge=SEED_MIN, le=SEED_MAX)
    evaluations: int = Field(ge=0, le=COUNT_MAX)
    stop_reason: str | None = None
    state: Literal["complete", "partial"] = "complete"
    final_error: float | None = None
    # the best individual's error on the problem's held-out validation (None: not validated)
    validation_error: float | None = None
    evaluations_to_best: int | None = Field(default=None, ge=1, le=COUNT_MAX)
    convergence_native: float | None = None  # the score the uploader's tool reported
    wall_seconds: float | None = None  # time spent evaluating generations
    workers: int | None = Field(default=None, ge=0, le=COUNT_MAX)
    cluster: dict[str, Any] | None = None
    created_at: str  # ISO 8601, as the run recorded it
    parameters: list[ParameterRow]
    components: list[ComponentRow]
    curve: list[GenerationRow]
    provenance: dict[str, Any] = {}  # package versions, git revision, python, platform
    problem: dict[str, Any] | None = None  # our problem spec (to reproduce); None: original
    metadata: dict[str, Any] = {}  # the metadata.json as uploaded

    _finite = field_validator(
        "final_error", "validation_error", "convergence_native", "wall_seconds"
    )(_finite_or_none)
