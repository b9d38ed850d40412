"""A run's held-out validation error in the catalog: read from its store (metadata.json),
kept in the record and the runs table, null for a run not validated."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from neuroptimus.storage.catalog.intake.ingest import run_from_store
from neuroptimus.storage.runs.run_store import RunStore
from neuroptimus.storage.runs.validation import write_validation
from tests.analysis.trust_runs import in_fresh_process
from tests.flows import validation_runs


def _run(folder):
    """A small real run of the wave problem with a validation: section."""
    return validation_runs.run_store(folder, population=6, generations=2)


def _validate(path):
    """Its two best individuals evaluated on the held-out recording in this process, stored
    as the validation flow stores them."""
    from neuroptimus.optimization.evaluation.individual import evaluate_batch
    from neuroptimus.optimization.problem.spec import ProblemSpec
    from neuroptimus.optimization.trust.validation import best_distinct, validation_problem

    store = RunStore.open(path)
    rows = store.evaluations()
    chosen = best_distinct(rows["parameters"], rows["total"], 2)
    held_out = validation_problem(ProblemSpec.model_validate(store.attrs["spec"]))
    result = evaluate_batch(held_out, rows["parameters"][chosen])
    write_validation(
        path,
        {"rows": chosen, "parameters": rows["parameters"][chosen],
         "training_total": rows["total"][chosen], "errors": result.errors,
         "total": result.total, "status": result.status},
        {"validation_error": float(result.total[0]), "best": 2, "best_row": int(chosen[0]),
         "component_names": held_out.component_names, "weights": [1.0]},
    )  # fmt: skip
    return float(result.total[0])


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    path = in_fresh_process(_run, tmp_path_factory.mktemp("validated"))
    return path, in_fresh_process(_validate, path)  # a process hosts one model


def test_the_catalog_keeps_a_runs_validation_error(catalog, validated, hh_run):
    store, error = validated
    run = run_from_store(store)
    assert run.validation_error == error and np.isfinite(error)
    ada = catalog.authenticate(catalog.issue_token("ada"))
    catalog.put_run(run, ada)
    catalog.put_run(hh_run, ada)
    assert catalog.run_record(run.run_id).validation_error == error
    assert catalog.run_record(hh_run.run_id).validation_error is None  # not validated
    with catalog.engine.connect() as connection:
        stored = dict(connection.execute(text("SELECT id, validation_error FROM runs")).all())
    assert stored == {run.run_id: error, hh_run.run_id: None}
