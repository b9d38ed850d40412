"""What the catalog records of a run: from a real run store, our metadata.json and the
original tool's metadata.json."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import zarr
from original_metadata import original_metadata

from neuroptimus.storage.catalog.intake.ingest import (
    IngestError,
    read_metadata_file,
    run_from_metadata,
    run_from_store,
)
from neuroptimus.storage.runs.metadata import write_metadata
from neuroptimus.storage.runs.run_store import RunStore


def test_a_store_becomes_a_complete_run_with_its_numbers(hh_run_store):
    run = run_from_store(hh_run_store)
    store = RunStore.open(hh_run_store)
    totals = store.evaluations()["total"]
    assert run.run_id == store.attrs["run_id"]
    assert run.state == "complete" and run.evaluations == 8 and run.budget == 8
    assert (run.population, run.generations, run.seed) == (4, 2, 3)
    assert run.final_error == float(totals.min())
    assert run.evaluations_to_best == int(np.argmin(totals)) + 1
    assert [row.evaluations for row in run.curve] == [4, 8]
    assert [row.cumulative_best for row in run.curve] == [
        float(totals[:4].min()),
        float(totals.min()),
    ]
    assert [p.name for p in run.parameters] == ["gnabar_hh", "gkbar_hh", "gl_hh"]
    assert run.parameters[0].true_value == 0.12
    weighted = sum(c.weighted_value for c in run.components)
    assert math.isclose(weighted, run.final_error, rel_tol=1e-12)
    assert run.problem["name"] == "hh" and run.use_case.kind == "content"


def test_an_unfinished_store_is_partial_and_only_committed_generations_count(
    hh_run_store, tmp_path
):
    copy = tmp_path / "unfinished.zarr"
    shutil.copytree(hh_run_store, copy)
    group = zarr.open_group(copy, mode="r+")
    group.attrs.update({"finished": None, "committed_generations": 1,
                        "committed_evaluations": 4})  # fmt: skip
    run = run_from_store(copy)
    assert run.state == "partial" and run.evaluations == 4 and len(run.curve) == 1
    assert run.run_id == run_from_store(hh_run_store).run_id


def test_a_store_older_than_the_catalog_is_hashed_only_where_asked(hh_run_store, tmp_path):
    """No use case recorded: its files are hashed by the pushing client (``hash_files``), or
    it takes the identity its metadata claims (a server), never hashed by default."""
    copy = tmp_path / "old.zarr"
    shutil.copytree(hh_run_store, copy)
    group = zarr.open_group(copy, mode="r+")
    identity = group.attrs["use_case"]
    group.attrs.update({"use_case": None})
    with pytest.raises(IngestError, match="predates the catalog and records no use case"):
        run_from_store(copy)
    assert run_from_store(copy, hash_files=True).use_case.model_dump(mode="json") == identity
    assert run_from_store(copy, identity).use_case.model_dump(mode="json") == identity


def test_our_metadata_json_alone_gives_the_same_record(hh_run_store, tmp_path):
    path = write_metadata(RunStore.open(hh_run_store), tmp_path / "metadata.json")
    from_file = read_metadata_file(path)
    from_store = run_from_store(hh_run_store)
    assert from_file.model_dump(exclude={"metadata"}) == from_store.model_dump(exclude={"metadata"})
    data = json.loads(path.read_text())
    del data["run_id"]
    with pytest.raises(IngestError, match="run_id.*predates the catalog"):
        run_from_metadata(data)


def test_the_original_format_is_read_with_a_weak_identity_and_a_stable_id():
    data = original_metadata()
    run = run_from_metadata(data)
    assert run.source_format == "original-neuroptimus" and run.use_case.kind == "weak"
    assert run.run_id == run_from_metadata(original_metadata()).run_id
    assert run.algorithm_key == "CMAES" and run.package == "Cmaes"
    assert run.settings == {"size_of_population": 10, "number_of_generations": 3, "sigma": 0.3,
                            "starting_points": "None"}  # fmt: skip
    assert (run.population, run.generations, run.budget, run.evaluations) == (10, 3, 30, 30)
    assert [r.evaluations for r in run.curve] == [10, 20, 30]
    assert [r.best for r in run.curve] == [0.5, 0.8, 0.0125]
    assert [r.cumulative_best for r in run.curve] == [0.5, 0.5, 0.0125]
    assert [r.worst for r in run.curve] == [9.0, 5.0, 4.0]
    assert run.final_error == 0.0125 and run.convergence_native == -3.5
    assert run.parameters[1].upper == 0.1 and run.parameters[1].optimum == 0.0361
    assert run.provenance == {"host": "labhost"} and run.problem is None
    other = original_metadata()
    other["opt_name"] += "x"
    assert run_from_metadata(other).run_id != run.run_id


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(final_fitness=float("nan")), "final_error: .*finite"),
        (lambda d: d.pop("parameters"), "missing field 'parameters'"),
        (lambda d: d.update(algorithm=[]), "algorithm: expected a list"),
        (lambda d: d.update(number_of_evaluations="many"), "malformed"),
        (
            lambda d: d["parameters"][0].update(min_boundary=None),
            r"parameters\[0\].lower: .*valid number",
        ),
    ],
)
def test_bad_original_files_are_refused_naming_the_field(change, message):
    data = original_metadata()
    change(data)
    with pytest.raises(IngestError, match=message):
        run_from_metadata(data)


def test_files_that_are_not_metadata_are_refused(tmp_path):
    broken = tmp_path / "metadata.json"
    broken.write_text("{not json")
    with pytest.raises(IngestError, match="not valid JSON"):
        read_metadata_file(broken)
    with pytest.raises(IngestError, match="neither a Neuroptimus metadata.json"):
        run_from_metadata({"hello": 1})
    with pytest.raises(IngestError, match="JSON object"):
        run_from_metadata([1, 2])
