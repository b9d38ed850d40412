"""A run as the catalog records it (``CatalogRun``), from a run store or a metadata.json.

Two shapes of metadata.json are read: ours (neuroptimus.storage.runs.metadata: it carries
``run_id``, ``use_case`` and ``problem``) and the original Neuroptimus tool's (``opt_name``,
``final_fitness``, …), whose problem is known only by names and bounds (a weak fingerprint)
and whose run id is derived from its content (the same file always gets the same id).
"""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.problem.identity import (
    FingerprintError,
    IdentityMismatch,
    recomputed_identity,
    weak_identity,
)
from neuroptimus.storage.catalog.schema import (
    CatalogRun,
    ComponentRow,
    GenerationRow,
    ParameterRow,
    UseCaseIdentity,
)
from neuroptimus.storage.runs.metadata import run_metadata, store_use_case
from neuroptimus.storage.runs.run_store import RunStore, StoreError

# the namespace of the run ids given to the original tool's runs
ORIGINAL_NAMESPACE = uuid.UUID("8c4d0f0e-6b0e-4f8e-b1b7-2f0a3c6c1d55")
_OURS = ("optimization_name", "generation_statistics", "algorithm")
_ORIGINAL = ("opt_name", "final_fitness", "number_of_evaluations")


class IngestError(UserError, ValueError):
    """A run cannot be cataloged; the message names what is wrong and where."""


def read_metadata_file(path: str | Path) -> CatalogRun:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise IngestError(f"{path}: cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise IngestError(f"{path}: not a text file (expected metadata.json)") from None
    except json.JSONDecodeError as error:
        raise IngestError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from None
    try:
        return run_from_metadata(data)
    except IngestError as error:
        raise IngestError(f"{path}: {error}") from None


def run_from_metadata(data: dict) -> CatalogRun:
    """Our metadata.json or the original tool's, told apart by their keys."""
    if not isinstance(data, dict):
        raise IngestError("metadata must be a JSON object (a metadata.json file)")
    try:
        if all(key in data for key in _OURS):
            return _checked(_ours(data))
        if all(key in data for key in _ORIGINAL):
            return _checked(_original(data))
    except IngestError:
        raise
    except ValidationError as error:
        raise IngestError(_validation_message(error)) from None
    except FingerprintError as error:
        raise IngestError(f"use case: {error}") from None
    except IdentityMismatch as error:
        raise IngestError(f"{error} (a run's use case is derived from its problem)") from None
    except KeyError as error:
        raise IngestError(f"missing field {error.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError, IndexError) as error:
        raise IngestError(f"malformed metadata: {error}") from None
    raise IngestError(
        "neither a Neuroptimus metadata.json (needs " + ", ".join(_OURS) + ") nor the original "
        "tool's (needs " + ", ".join(_ORIGINAL) + ")"
    )


def store_metadata(
    path: str | Path, use_case: dict[str, Any] | None = None, hash_files: bool = False
) -> dict[str, Any]:
    """A run store's metadata.json content, written afresh from its committed generations;
    IngestError if the store cannot be catalogued (not a store, no generation yet, a store
    older than the catalog that records no use case).

    A store older than the catalog records no use case: it takes ``use_case`` (the identity
    its metadata.json claims, checked against the store's problem like any other), else with
    ``hash_files`` the files its problem names are hashed now (only where the run was made:
    a catalog server never resolves a path from an upload)."""

    try:
        store = RunStore.open(path)
    except StoreError as error:
        raise IngestError(str(error)) from None
    if store.attrs.get("use_case"):
        use_case = None  # the store's own
    elif use_case is None and hash_files:  # a store older than the catalog: hashed now, once
        try:
            use_case = store_use_case(store)
        except FingerprintError as error:
            raise IngestError(
                f"its use case cannot be identified: {error} (push it where the problem's "
                "files are)"
            ) from None
    elif use_case is None:
        raise IngestError(
            "the store predates the catalog and records no use case: push it from where its "
            "problem's files are (which hashes them)"
        )
    data = run_metadata(store, use_case)
    if not data["generation_statistics"]:
        raise IngestError("the run has no committed generation yet")
    return data


def run_from_store(
    path: str | Path, use_case: dict[str, Any] | None = None, hash_files: bool = False
) -> CatalogRun:
    """A run store's committed generations (an unfinished run is ``partial``); ``use_case``
    and ``hash_files``: for a store older than the catalog, see ``store_metadata``."""
    try:
        return run_from_metadata(store_metadata(path, use_case, hash_files))
    except IngestError as error:
        raise IngestError(f"{path}: {error}") from None


def _validation_message(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _checked(run: CatalogRun) -> CatalogRun:
    """What the schema cannot say on its own: the numbers agree with each other."""
    if run.curve and run.curve[-1].evaluations > run.evaluations:
        raise IngestError(
            f"curve: its last generation counts {run.curve[-1].evaluations} evaluations, "
            f"more than the run's {run.evaluations}"
        )
    generations = [row.generation for row in run.curve]
    if generations != sorted(set(generations)):
        raise IngestError("curve: generations must be unique and in order")
    return run


def _number(value: Any) -> float | None:
    """A finite float, or None for a missing, infinite or NaN value."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# -- our metadata.json ------------------------------------------------------------------------
def _ours(data: dict[str, Any]) -> CatalogRun:
    for key in ("run_id", "use_case", "problem"):
        if not data.get(key):
            raise IngestError(
                f"missing field {key!r}: this metadata.json predates the catalog; write it again "
                "from its store (neuroptimus analyze STORE) or push the store itself"
            )
    # the identity is derived from the problem, not taken on the uploader's word
    use_case = recomputed_identity(data["problem"], UseCaseIdentity(**data["use_case"]))
    components = [e["name"] for e in data["error_functions"]]
    if components and components != use_case.components:
        raise IdentityMismatch("use_case.components are not the run's error components")
    algorithm = data["algorithm"]
    stats = data["generation_statistics"]
    software = data.get("software") or {}
    cluster = data.get("cluster")
    seconds = [s.get("seconds") for s in stats if s.get("seconds") is not None]
    return CatalogRun(
        run_id=data["run_id"],
        source_format="neuroptimus",
        use_case=use_case,
        optimization_name=data["optimization_name"],
        algorithm_key=algorithm["key"],
        algorithm_label=algorithm["name"],
        package=algorithm["package"],
        settings=algorithm.get("settings") or {},
        population=algorithm.get("population"),
        generations=data.get("generations_run", len(stats)),
        budget=algorithm.get("max_evaluations"),
        seed=algorithm.get("seed"),
        evaluations=data["evaluations"],
        stop_reason=data.get("stop_reason"),
        state="complete" if data.get("stop_reason") else "partial",
        final_error=data.get("final_error"),
        validation_error=data.get("validation_error"),
        evaluations_to_best=data.get("evaluations_to_best"),
        wall_seconds=sum(seconds) if seconds else None,
        workers=(cluster or {}).get("workers"),
        cluster=cluster,
        created_at=data["created"],
        parameters=[
            ParameterRow(
                name=p["name"],
                unit=p.get("unit") or "",
                lower=p["lower_bound"],
                upper=p["upper_bound"],
                log=bool(p.get("log_scale")),
                optimum=p.get("optimum"),
                true_value=p.get("true_value"),
            )
            for p in data["parameters"]
        ],  # fmt: skip
        components=[ComponentRow(**e) for e in data["error_functions"]],
        curve=[
            GenerationRow(**{k: s.get(k) for k in GenerationRow.model_fields if k in s})
            for s in stats
        ],
        provenance={
            "versions": software.get("versions") or {},
            "git_revision": software.get("git_revision"),
        },
        problem=data.get("problem"),
        metadata=data,
    )


# -- the original tool's metadata.json (see the catalog design notes, §1a) -------------------
def original_run_id(data: dict[str, Any]) -> str:
    """The same original metadata.json always gets the same id here: a key of its content,
    which the catalog turns into the id it files the run by (``run_ids.catalog_run_id``)."""
    key = {k: data.get(k) for k in ("opt_name", "created_at", "seed", "models", "final_fitness")}
    text = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)  # NaN allowed
    return str(uuid.uuid5(ORIGINAL_NAMESPACE, text))


def _setting(value: Any) -> Any:
    """The original writes every setting as a string: numbers become numbers again."""
    if not isinstance(value, str):
        return value
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def _original(data: dict[str, Any]) -> CatalogRun:
    algorithms = data.get("algorithm") or []
    if not isinstance(algorithms, list) or not algorithms:
        raise IngestError("algorithm: expected a list with one algorithm")
    algorithm = algorithms[0]
    settings = {
        str(p["parameter_name"]): _setting(p.get("parameter_value"))
        for p in algorithm.get("algorithm_parameters") or []
    }
    population = _count(settings, "population")
    generations = _count(settings, "generation")
    evaluations = int(data["number_of_evaluations"])
    stats = sorted(data.get("statistics") or [], key=lambda s: int(s["generation"]))
    curve, done, best = [], 0, math.inf
    for s in stats:
        minimum = _number(s.get("minimum"))
        done += int(s.get("population") or population or 0)
        best = min(best, minimum) if minimum is not None else best
        curve.append(
            GenerationRow(
                generation=int(s["generation"]), evaluations=min(done, evaluations),
                best=minimum, cumulative_best=best if math.isfinite(best) else None,
                median=_number(s.get("median")), mean=_number(s.get("mean")),
                worst=_number(s.get("maximum")),
            )
        )  # fmt: skip
    models = data.get("models") or {}
    name = algorithm["algorithm_name"]
    parameters = _each("parameters", data["parameters"], lambda p: ParameterRow(
        name=p["name"], lower=p["min_boundary"], upper=p["max_boundary"], optimum=p.get("optimum")
    ))  # fmt: skip
    components = _each("error_function", data["error_function"], lambda e: ComponentRow(
        name=e["name"], value=e.get("value"), weight=e["weight"],
        weighted_value=e.get("weighted_value"),
    ))  # fmt: skip
    return CatalogRun(
        run_id=original_run_id(data),
        source_format="original-neuroptimus",
        use_case=weak_identity(data),
        optimization_name=str(data["opt_name"]),
        algorithm_key=str(name),
        algorithm_label=str(name),
        package=str(algorithm.get("algorithm_package") or ""),
        settings=settings,
        population=population,
        generations=generations or len(stats) or None,
        budget=population * generations if population and generations else evaluations or None,
        seed=data.get("seed"),
        evaluations=evaluations,
        stop_reason=None,
        state="complete",
        final_error=data["final_fitness"],
        convergence_native=data.get("convergence_score"),
        created_at=str(data.get("created_at") or ""),
        parameters=parameters,
        components=components,
        curve=curve,
        provenance={"host": models.get("model_author")},
        problem=None,
        metadata=data,
    )


def _each(where: str, items: list, make: Any) -> list:
    """``make`` applied to every item; a refused item is named by its place."""
    if not isinstance(items, list):
        raise IngestError(f"{where}: expected a list")
    made = []
    for index, item in enumerate(items):
        try:
            made.append(make(item))
        except ValidationError as error:
            raise IngestError(f"{where}[{index}].{_validation_message(error)}") from None
        except KeyError as error:
            raise IngestError(f"{where}[{index}]: missing field {error.args[0]!r}") from None
    return made


def _count(settings: dict[str, Any], word: str) -> int | None:
    """A positive whole setting whose name mentions ``word`` (size_of_population, …)."""
    for name, value in settings.items():
        if word in name.lower() and isinstance(value, int) and value > 0:
            return value
    return None
