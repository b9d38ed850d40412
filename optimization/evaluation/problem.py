"""Problem = parameter space + simulator factory + objective over the loaded target."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.problem.parameters import ParameterSpace
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.problem.trace_files import (
    TraceFileError,
    read_table,
    upsample_to_simulation_grid,
    voltage_in_mV,
)
from neuroptimus.optimization.scoring.objective import Objective, make_objective
from neuroptimus.optimization.simulators import ModelError, Simulator, Trace, create_simulator


class TargetError(UserError, ValueError):
    """The target data cannot be used with this protocol (missing, wrong shape or length)."""


def model_key(spec: dict) -> str:
    """Names what a built simulator depends on, in a problem spec's JSON form: the model, the
    targets of the parameters (hoc, section, segment, sections, property), the protocol
    (stimulus, recording, dt, duration, initial voltage), the target's sampling rate and
    compare_on (recordings are sampled by them) and where the files are. Equal keys can share
    one simulator process."""
    target = spec.get("target") or {}
    baked = {
        "model": spec.get("model"),
        "parameters": [
            [p.get(k) for k in ("name", "hoc", "section", "segment", "sections", "property")]
            for p in spec.get("parameters") or []
        ],
        "protocol": spec.get("protocol"),
        "sampling_rate_hz": target.get("sampling_rate_hz"),
        # simulation_grid: recorded at every step instead of at the target's rate
        "compare_on": target.get("compare_on", "target_grid"),
        "base_dir": spec.get("base_dir"),
    }
    if spec.get("protocols") is not None:  # emodel problems (only then, so other keys stay)
        baked["protocols"] = spec["protocols"]
        baked["distributions"] = [p.get("distribution") for p in spec.get("parameters") or []]
    return hashlib.sha256(json.dumps(baked).encode()).hexdigest()[:16]


def problem_key(spec: dict) -> str:
    """Names everything an evaluation depends on: the model (model_key), the parameter space,
    the target, the costs and the evaluation settings; not the algorithm."""
    fields = ("model", "parameters", "protocol", "target", "costs", "evaluation", "base_dir")
    chosen = {k: spec.get(k) for k in fields}
    if spec.get("protocols") is not None:  # emodel problems (only then, so other keys stay)
        chosen["protocols"] = spec["protocols"]
    if isinstance(chosen["evaluation"], dict):  # how setup checks the model changes no result
        chosen["evaluation"] = {
            k: v for k, v in chosen["evaluation"].items() if k != "setup_check_s"
        }
    text = json.dumps(chosen)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Problem:
    """Everything an evaluation needs; small enough to send to every worker once."""

    spec: ProblemSpec
    space: ParameterSpace
    objective: Objective  # or features.FeatureObjective (same interface)

    @cached_property  # asked for on every evaluation; the spec does not change
    def key(self) -> str:
        """Identifies the simulated model, so a worker process can tell if it already has it."""
        return model_key(self.spec.model_dump(mode="json"))

    @cached_property
    def identity(self) -> str:
        """Identifies the whole problem (objective included), so that problems sharing a
        model but scored differently are told apart where they are installed."""
        return problem_key(self.spec.model_dump(mode="json"))

    def make_simulator(self) -> Simulator:
        return create_simulator(self.spec)

    @property
    def component_names(self) -> list[str]:
        return self.objective.component_names


def build_problem(spec: ProblemSpec, targets: list[np.ndarray] | None = None) -> Problem:
    """Load (or regenerate) the target and assemble the problem."""
    if spec.protocols is not None:  # an emodel problem: scored by its protocols' features
        targets = []
    elif targets is None:
        targets = load_targets(spec)
    if targets:
        check_target_lengths(spec, targets)
    try:
        objective = make_objective(spec, targets)
    except ValueError as error:  # a features file changed since the problem file was read
        raise TargetError(str(error)) from None
    return Problem(spec, ParameterSpace.from_specs(spec.parameters), objective)


def true_values(spec: ProblemSpec) -> dict[str, float]:
    return {p.name: p.true_value for p in spec.parameters}


def load_targets(spec: ProblemSpec) -> list[np.ndarray]:
    """One target array per sweep, from the target file or simulated from the true values
    (none for a features target or an emodel problem)."""
    if spec.target is None or spec.target.features is not None:
        return []
    if spec.target.regenerate:
        return [trace.values for trace in simulate_isolated(spec, true_values(spec))]
    return read_target_file(spec)


def read_target_file(spec: ProblemSpec) -> list[np.ndarray]:
    """One target array per sweep, in mV (voltage) and on the grid the costs compare on."""
    target, protocol = spec.target, spec.protocol
    path = spec.local_path(target.file)
    if not path.is_file():  # deleted since the problem file was checked
        raise TargetError(f"target file {path}: not found")
    try:
        table = read_table(path, "target file")
        columns = table[:, 1:] if target.time_column else table
        if columns.shape[1] != protocol.sweeps:
            raise TargetError(
                f"target file {path}: {columns.shape[1]} trace column(s) for "
                f"{protocol.sweeps} sweep(s) (time_column: {target.time_column})"
            )
        if protocol.recording.variable == "v":
            columns = voltage_in_mV(columns, target.unit, path)
        traces = [columns[:, k].copy() for k in range(columns.shape[1])]
        if target.compare_on == "simulation_grid":
            traces = [
                upsample_to_simulation_grid(
                    trace, protocol.tstop_ms, target.sampling_rate_hz, protocol.dt_ms
                )
                for trace in traces
            ]
    except TraceFileError as error:
        message = str(error)
        raise TargetError(
            message if message.startswith("target file") else f"target file {path}: {message}"
        ) from None
    return traces


def expected_length(spec: ProblemSpec) -> int:
    """Samples a simulated sweep has at the comparison rate."""
    step_ms = 1000 / spec.comparison_rate_hz
    samples = int(round(spec.protocol.tstop_ms / step_ms)) + 1
    return samples - 1 if spec.protocol.recording.variable == "clamp_current" else samples


def check_target_lengths(spec: ProblemSpec, targets: list[np.ndarray]) -> None:
    """Model and target may differ by one sample at most (a configuration error otherwise)."""
    model = expected_length(spec)
    for k, target in enumerate(targets):
        if abs(len(target) - model) > 1:
            raise TargetError(
                f"target sweep {k + 1} has {len(target)} samples but the protocol records "
                f"{model} (tstop_ms {spec.protocol.tstop_ms:g} at "
                f"{spec.comparison_rate_hz:g} Hz): fix tstop_ms or sampling_rate_hz"
            )


def _simulate_here(spec: ProblemSpec, parameters: dict[str, float]) -> list[Trace]:
    simulator = create_simulator(spec)
    simulator.setup()
    return simulator.run(parameters)


def simulate_isolated(spec: ProblemSpec, parameters: dict[str, float]) -> list[Trace]:
    """Simulate once in a fresh process, leaving this process free of any model state."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        try:
            return pool.submit(_simulate_here, spec, parameters).result()
        except ModelError:
            raise
        except Exception as error:
            raise ModelError(f"simulating {spec.name} failed: {error}") from error
