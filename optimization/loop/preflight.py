"""Find a problem's mistakes before a run starts: the algorithm with its population and
settings, then the model built once (every parameter target, section and recording checked
by the simulator) and the target loaded and checked against the protocol.

The model is built in a process that may host it — a worker of the run's own cluster (which
then keeps it for the evaluations) or a spawned process — never in the caller's, since NEURON
keeps global state. Every mistake is raised as a ``UserError`` with a one-line message;
anything else (a lost worker, a killed process) is an infrastructure failure.
"""

from __future__ import annotations

import multiprocessing
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

from neuroptimus.optimization.algorithms import AlgorithmError
from neuroptimus.optimization.algorithms.chain import create_for_spec
from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.evaluation import individual as evaluation
from neuroptimus.optimization.evaluation.problem import (
    Problem,
    build_problem,
    load_targets,
    true_values,
)
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.problem.spec_base import SpecError
from neuroptimus.optimization.scoring.likelihood import NOISE_SETTING, refusal
from neuroptimus.optimization.simulators import ModelError, SimulationTimeout
from neuroptimus.optimization.simulators.sampled import check_point


def check_algorithm(spec: ProblemSpec) -> None:
    """Construct the algorithm with the problem's dimension, population, seed and settings:
    a population too small for it or an out-of-range setting fails here (cheap, no model)."""
    try:
        with warnings.catch_warnings():  # the run itself shows a package's warnings
            warnings.simplefilter("ignore")
            create_for_spec(spec).close()  # a chain checks every stage
    except (ValueError, TypeError, AlgorithmError) as error:
        raise SpecError(str(error)) from None  # names the algorithm and the setting
    check_sampling(spec)


def check_sampling(spec: ProblemSpec) -> None:
    """A posterior sampler needs a likelihood (feature z-scores or a stated trace noise) and
    the problem's own run (the runner binds the likelihood to the problem's algorithm)."""
    algorithm = spec.algorithm
    if algorithm.chain and any(stage.name == "emcee" for stage in algorithm.chain):
        raise SpecError("emcee samples a posterior and cannot be a stage of a chain: run it on "
                        "its own, warm-started from the fit (--warm-start)")  # fmt: skip
    if algorithm.name == "emcee":
        reason = refusal(spec, algorithm.settings.get(NOISE_SETTING))
        if reason is not None:
            raise SpecError(f"algorithm 'emcee': {reason}")


def prepare_here(spec: ProblemSpec) -> Problem:
    """Build the model in this process (unless it hosts it already), load (or simulate) the
    target and check it; the model stays this process's simulator for the evaluations."""
    # names the missing parameter target, section or recorded variable
    simulator = evaluation.hosted_simulator(spec)
    checked = None
    # NEURON and e-models check themselves at setup (an e-model's check run costs seconds)
    in_process = spec.model.simulator in ("neuron", "emodel")
    if not in_process and spec.evaluation.setup_check_s != 0:
        checked = check_run(spec, simulator)  # None: still running at setup_check_s
    if spec.target is not None and spec.target.regenerate:
        traces = checked or simulator.run(true_values(spec))  # checked: the true values
        targets = [trace.values for trace in traces]
    else:
        targets = load_targets(spec)  # none for a features target
    problem = build_problem(spec, targets)  # checks the target's length against the protocol
    if checked is not None:
        try:
            problem.objective.errors(checked)
        except ValueError as error:  # e.g. a spike time beyond the trace
            raise ModelError(f"{_model_file(spec)}: {check_values_text(spec)}: the costs "
                             f"cannot score its output: {error}") from None  # fmt: skip
    return problem


def _model_file(spec: ProblemSpec) -> str:
    model = spec.model
    if model.simulator == "python":
        return f"model.file {model.file}"
    if model.simulator == "emodel":
        return f"model.morphology {model.morphology}"
    return f"model.command {' '.join(model.command)}"


def check_values_text(spec: ProblemSpec) -> str:
    given = all(p.true_value is not None for p in spec.parameters)
    return "at the true values" if given else "at the middle of the bounds"


def check_run(spec: ProblemSpec, simulator) -> list | None:
    """Python and external models show most mistakes only when they run (a program that is
    not there, a function that raises, a trace of the wrong length, a spike file that is not
    numbers): one evaluation at the true values (else the middle of the bounds), before any
    store exists, turns them into one line naming the model and what to fix.

    With ``evaluation.setup_check_s`` below the timeout, a model still running then has
    passed (None): it started, found its packages and files and did not fail, which is what
    a slow model's mistakes show in its first seconds."""
    evaluation = spec.evaluation
    limit = evaluation.timeout_s
    cut_short = evaluation.setup_check_s is not None and evaluation.setup_check_s < limit
    if cut_short:
        limit = evaluation.setup_check_s
    deadline = time.monotonic() + limit
    where = f"{_model_file(spec)}: {check_values_text(spec)}"
    try:
        return simulator.run(check_point(spec), deadline)
    except ModelError:
        raise
    except SimulationTimeout:
        if cut_short:
            return None
        raise ModelError(
            f"{where}: took longer than evaluation.timeout_s {spec.evaluation.timeout_s:g} s "
            "(raise the limit if the model is that slow)"
        ) from None
    except Exception as error:
        raise ModelError(f"{where}: {error}") from None


def prepare_isolated(spec: ProblemSpec) -> Problem:
    """``prepare_here`` in a fresh process (the caller stays free of model state)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(prepare_here, spec).result()


def prepare_on_worker(client, spec: ProblemSpec) -> Problem:
    """``prepare_here`` on a worker of a Dask ``client``'s cluster, which keeps the built
    model for the run's evaluations (the cluster starts once, validation rides along)."""
    outcome = client.submit(_prepare_reporting, spec, pure=False).result()
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _prepare_reporting(spec: ProblemSpec) -> Problem | Exception:
    """A mistake comes back as a value: as a failed task, the worker would log it with its
    traceback on the user's terminal."""
    try:
        return prepare_here(spec)
    except UserError as error:
        return error
