"""The deployment definitions without a server: the parameter schema Prefect draws as a form,
deployments/prefect.yaml, the run flow's problem choice, and the artifact table."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools import validate

from neuroptimus.flows.compare import benchmark_flow
from neuroptimus.flows.run import (
    default_store,
    resolve_cluster,
    resolve_problem,
    resume_flow,
    run_flow,
)
from neuroptimus.flows.server.serve import WORK_POOL
from neuroptimus.optimization.algorithms import ALGORITHMS
from neuroptimus.optimization.execution.cluster import ClusterConfig, ClusterError
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.optimization.problem.spec import CostName, ProblemSpec
from neuroptimus.optimization.problem.spec_base import SpecError
from neuroptimus.tasks.artifacts import artifact_key, best_markdown
from neuroptimus.usecases import problem_path

ROOT = Path(__file__).resolve().parents[2]
PREFECT_YAML = ROOT / "deployments" / "prefect.yaml"
TYPED = {"type", "enum", "const", "$ref", "anyOf"}


def _resolve(schema: dict, node: dict) -> dict:
    ref = node.get("$ref")
    return schema["definitions"][ref.rsplit("/", 1)[-1]] if ref else node


def _check_drawable(schema: dict, node: dict, where: str, seen: set[str]) -> None:
    """Every value has a type a form can draw: no untyped field, no free-form object."""
    assert TYPED & set(node), f"{where} has no type: {node}"
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            _check_drawable(schema, schema["definitions"][name], name, seen)
        return
    for index, option in enumerate(node.get("anyOf", [])):
        _check_drawable(schema, option, f"{where}|{index}", seen)
    if node.get("type") == "array":
        _check_drawable(schema, node["items"], f"{where}[]", seen)
    if node.get("type") == "object":
        extra = node.get("additionalProperties", False)
        assert node.get("properties") or isinstance(extra, dict), f"{where} is an opaque object"
        assert extra is False or isinstance(extra, dict), f"{where} takes untyped extra keys"
        if isinstance(extra, dict):
            _check_drawable(schema, extra, f"{where}{{}}", seen)
        for name, field in node.get("properties", {}).items():
            _check_drawable(schema, field, f"{where}.{name}", seen)
            if "$ref" in field or any("$ref" in o for o in field.get("anyOf", [])):
                assert field.get("title"), f"{where}.{name}: a nested form needs a label"


@pytest.mark.parametrize("flow", [run_flow, benchmark_flow], ids=lambda f: f.name)
def test_problem_form_is_typed_throughout(flow):
    schema = parameter_schema(flow.fn).model_dump()
    problem = schema["properties"]["problem"]
    seen: set[str] = set()
    _check_drawable(schema, problem, "problem", seen)
    assert {"ProblemSpec", "ParameterSpec", "StimulusSpec", "CostTerm", "AlgorithmSpec"} <= seen

    defs = schema["definitions"]
    fields = {name: defs[name]["properties"] for name in seen}
    # Literal → a choice list; the algorithm is a choice among the registered ones.
    assert fields["CostTerm"]["name"]["enum"] == list(typing.get_args(CostName))
    assert fields["StimulusSpec"]["type"]["enum"] == ["IClamp", "VClamp"]
    # the registered algorithms, and "chain" for a chain of them (its stages in algorithm.chain)
    assert fields["AlgorithmSpec"]["name"]["enum"] == [*ALGORITHMS, "chain"]
    # numbers with their bounds
    assert (
        fields["AlgorithmSpec"]["population"].items() >= {"minimum": 1, "maximum": 100_000}.items()
    )
    assert fields["StimulusSpec"]["position"].items() >= {"minimum": 0, "maximum": 1}.items()
    assert (
        fields["ProtocolSpec"]["tstop_ms"].items()
        >= {"type": "number", "exclusiveMinimum": 0}.items()
    )
    # arrays of objects with properties
    parameters = fields["ProblemSpec"]["parameters"]
    assert parameters["type"] == "array" and parameters["minItems"] == 1
    assert _resolve(schema, parameters["items"])["properties"]["lower"]["type"] == "number"
    settings = fields["AlgorithmSpec"]["settings"]["additionalProperties"]
    assert {option["type"] for option in settings["anyOf"]} >= {"number", "boolean", "string"}


def test_run_flow_parameters_are_described():
    properties = parameter_schema(run_flow.fn).model_dump()["properties"]
    assert list(properties)[:2] == ["problem", "store"]  # positional use by the CLI still works
    for name in ("problem", "store", "usecase", "population", "generations", "seed"):
        assert properties[name]["description"], name
        assert properties[name]["default"] is None  # everything optional from the UI
    assert properties["population"]["anyOf"][0] == {"minimum": 1, "type": "integer"}


def test_resume_form_asks_for_the_store_only():
    schema = parameter_schema(resume_flow.fn).model_dump()
    assert schema["required"] == ["store"]
    assert schema["properties"]["store"]["type"] == "string"
    assert schema["properties"]["store"]["description"]
    assert validate({"store": "runs/hh.zarr"}, schema, raise_on_error=False) == []
    assert validate({}, schema, raise_on_error=False) != []


def _deployments() -> dict[str, dict]:
    config = yaml.safe_load(PREFECT_YAML.read_text())
    return {deployment["name"]: deployment for deployment in config["deployments"]}


def test_prefect_yaml_declares_both_flows_on_the_process_pool():
    deployments = _deployments()
    assert set(deployments) == {"run", "resume", "benchmark"}
    flows = {}
    for name, deployment in deployments.items():
        # a module path, as a worker loads it: the file layout is not part of the contract
        assert deployment["entrypoint"].startswith("neuroptimus.flows.")
        flows[name] = load_flow_from_entrypoint(deployment["entrypoint"])
        assert deployment["work_pool"]["name"] == WORK_POOL
        assert deployment["enforce_parameter_schema"] is True
    assert flows["run"].name == "neuroptimus-run"
    assert flows["benchmark"].name == "benchmark-algorithms"
    assert flows["resume"].name == "neuroptimus-resume"
    schedules = deployments["benchmark"]["schedules"]
    assert schedules and all(schedule["active"] is False for schedule in schedules)
    assert all(re.fullmatch(r"[\d*/,-]+( [\d*/,-]+){4}", s["cron"]) for s in schedules)


@pytest.mark.parametrize("name", ["run", "benchmark"])
def test_prefect_yaml_defaults_pass_the_server_check(name):
    """What the server checks before it accepts a run (enforce_parameter_schema)."""
    deployment = _deployments()[name]
    flow = run_flow if name == "run" else benchmark_flow
    schema = parameter_schema(flow.fn).model_dump()
    variants = [deployment["parameters"]]
    variants += [{**variants[0], **s.get("parameters", {})} for s in deployment["schedules"]]
    for parameters in variants:
        assert validate(parameters, schema, raise_on_error=False) == []


@pytest.mark.parametrize("name", ["run", "benchmark"])
def test_prefect_yaml_default_problem_is_use_case_hh(name):
    default = _deployments()[name]["parameters"]["problem"]
    spec = ProblemSpec.model_validate(default)
    assert (ROOT / spec.base_dir / spec.model.hoc).is_file()  # relative to the project root
    bundled = load_problem(problem_path("hh"))
    assert spec.model_dump(exclude={"base_dir"}) == bundled.model_dump(exclude={"base_dir"})


def test_use_case_replaces_the_form_and_overrides_apply():
    hh = load_problem(problem_path("hh"))
    spec = resolve_problem(hh, "vclamp", population=6, generations=2, algorithm=None, seed=7)
    assert (spec.name, spec.algorithm.population, spec.algorithm.generations, spec.seed) == (
        "vclamp", 6, 2, 7)  # fmt: skip
    assert resolve_problem(hh) == hh
    assert resolve_problem(None, "hh", algorithm="random").algorithm.name == "random"
    with pytest.raises(SpecError, match="use case name"):
        resolve_problem(None, None)


def test_form_problem_gets_the_file_checks():
    broken = load_problem(problem_path("hh")).model_copy(update={"base_dir": "/nonexistent"})
    with pytest.raises(SpecError, match=r"problem parameter: model.hoc: file .* does not exist"):
        resolve_problem(broken)


def test_default_store_is_new_per_run():
    spec = load_problem(problem_path("hh"))
    path = default_store(spec)
    assert re.fullmatch(r"runs/hh-cmaes-seed1235-\d{8}-\d{6}\.zarr", path)


def test_best_table_lists_parameters_bounds_and_weighted_components():
    spec = load_problem(problem_path("hh"))
    best = {
        "generation": 3,
        "total": 0.5,
        "parameters": {"gnabar_hh": 0.1, "gkbar_hh": 0.04, "gl_hh": 0.0003},
        "errors": {term.name: 0.5 for term in spec.costs.functions},
    }
    text = best_markdown(spec, "CMA-ES (cmaes)", best, 40, "generation 4")
    assert "| gnabar_hh | 0.1 | 0.001 | 1 | S/cm2 |" in text
    assert "| AP width | 0.5 | 0.25 |" in text
    assert "**40** of 3000 evaluations" in text and "(generation 3)" in text
    assert artifact_key("UC 1", "inspyred-pso") == "uc-1-inspyred-pso"


def test_a_cluster_profile_can_be_named_instead_of_a_cluster(tmp_path):
    profile = tmp_path / "site.yaml"
    profile.write_text("workers: 3\nchunks_per_worker: 2\n")
    assert resolve_cluster(None, str(profile)) == ClusterConfig(workers=3, chunks_per_worker=2)
    assert resolve_cluster(None, "local").is_local
    assert resolve_cluster(ClusterConfig(workers=1), None) == ClusterConfig(workers=1)
    assert resolve_cluster(None, None) is None
    with pytest.raises(ClusterError, match="not both"):
        resolve_cluster(ClusterConfig(), "local")
    with pytest.raises(ClusterError, match="no cluster profile named 'nowhere'"):
        resolve_cluster(None, "nowhere")
