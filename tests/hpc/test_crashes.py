"""Individuals that kill their worker process, on a real LocalCluster with NEURON: the
culprit is found by running the lost chunk's individuals alone, confirmed in a fresh process
and stored as ``crashed`` with the penalty and the signal, the others get their real errors,
and a worker killed from outside (also while an individual runs alone) marks nobody.

The crashing model is UC1's plus an FInitializeHandler: hoc's ``system()`` runs ``/bin/sh``,
whose parent is the worker process, and ``kill -SEGV $PPID`` (or ``-ABRT``) kills that.
"""

from __future__ import annotations

import os
import resource
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytest
from distributed import Client
from hpc_runs import uc1_spec, wait_until, worker_evaluating
from mechanism_models import MODEL_HOC, leak_problem

from neuroptimus.optimization.evaluation.individual import CRASHED, OK, STATUSES, evaluate_batch
from neuroptimus.optimization.evaluation.problem import build_problem
from neuroptimus.optimization.execution.cluster import ClusterConfig, make_cluster
from neuroptimus.optimization.execution.dask_evaluator import DaskEvaluator
from neuroptimus.optimization.execution.hang_watchdog import fingerprint
from neuroptimus.optimization.execution.worker_deaths import DEATHS
from neuroptimus.optimization.problem.model_spec import ParameterSpec
from neuroptimus.optimization.problem.problem_file import load_problem

CRASH_HOC = """\
// UC1's model, plus a fault: initializing it with a leak conductance above {segv} makes the
// process that runs it kill itself with SIGSEGV, below {abrt} with SIGABRT, above {kill}
// (and not above {segv}) with SIGKILL ($PPID of the shell that system() starts is that
// process). With {busy_s} s of busy waiting per run.
load_file("{model}")
proc neuroptimus_test_crash() {{ local started
    started = startsw()
    while (startsw() - started < {busy_s}) {{ }}
    if (soma.gl_hh(0.5) > {segv}) {{
        system("kill -SEGV $PPID")
    }}
    if (soma.gl_hh(0.5) < {abrt}) {{
        system("kill -ABRT $PPID")
    }}
    if (soma.gl_hh(0.5) > {kill}) {{
        system("kill -KILL $PPID")
    }}
}}
objref neuroptimus_test_fih
neuroptimus_test_fih = new FInitializeHandler("neuroptimus_test_crash()")
"""
SEGV_ABOVE, ABRT_BELOW = 9e-4, 2e-5  # gl_hh: the true value 3e-4 (the target) runs well


def crashing_spec(folder: Path, busy_s: float = 0.0, segv: float = SEGV_ABOVE,
                  abrt: float = ABRT_BELOW, kill: float = 1.0):  # fmt: skip
    spec = uc1_spec()
    model = Path(spec.resolve(spec.model.hoc))
    hoc = folder / "crash.hoc"
    hoc.write_text(CRASH_HOC.format(model=model, segv=segv, abrt=abrt, kill=kill, busy_s=busy_s))
    return spec.model_copy(update={"model": spec.model.model_copy(update={"hoc": str(hoc)})})


@pytest.fixture(autouse=True)
def no_core_files():
    """Crashed workers leave no core files behind (the worker processes inherit the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
    yield
    resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))


def _points(gl: list[float]) -> np.ndarray:
    return np.array([[0.12, 0.036, value] for value in gl])


def _evaluate_alone(spec, points: np.ndarray):
    """The results of the unmodified model, in a fresh process (NEURON holds one model)."""
    problem = build_problem(spec)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(evaluate_batch, problem, points).result()


def _pids(client: Client) -> set[int]:
    return set(client.run(os.getpid).values())


def test_individuals_that_kill_their_worker_are_stored_as_crashed(tmp_path):
    problem = build_problem(crashing_spec(tmp_path))
    # two chunks of four, each with a culprit (SIGSEGV at 1, SIGABRT at 6)
    gl = [3e-4, 9.5e-4, 1e-4, 5e-4, 2e-4, 6e-4, 1e-5, 4e-4]
    points = _points(gl)
    crashed = np.array([1, 6])
    config = ClusterConfig(workers=2, chunks_per_worker=1)
    with make_cluster(config) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        evaluator = DaskEvaluator(client, problem, config=config)
        before = _pids(client)
        result = evaluator(points)
        # the culprits killed workers (once in their chunk, once alone); the nanny replaced them
        wait_until(lambda: len(_pids(client)) == 2, 120, "two workers again")
        assert not _pids(client) & before
        deaths = client.get_metadata([DEATHS])
        by_individual = {d["running"]: d for d in deaths.values() if d["running"]}
        # evaluated again, they are known: nothing dies
        survivors = _pids(client)
        again = evaluator(points)
        assert _pids(client) == survivors
    assert [STATUSES[s] for s in result.status[crashed]] == ["crashed", "crashed"]
    # killed alone, then again in a fresh process
    assert result.message[1].count("killed by signal 11 (SIGSEGV)") == 2, result.message[1]
    assert result.message[6].count("killed by signal 6 (SIGABRT)") == 2, result.message[6]
    assert "fresh process" in result.message[1]
    for row, code in zip(crashed, (signal.SIGSEGV, signal.SIGABRT), strict=True):
        death = by_individual[fingerprint(problem.key, points[row])]
        assert death["exitcode"] == -code
        assert result.worker[row] == death["worker"]  # the process it killed, alone
        assert 0 < result.seconds[row] < 60
    penalty = problem.spec.evaluation.penalty
    assert np.all(result.total[crashed] == penalty) and np.all(result.errors[crashed] == penalty)
    fine = np.setdiff1d(np.arange(len(points)), crashed)
    assert np.all(result.status[fine] == OK)
    expected = _evaluate_alone(uc1_spec(), points[fine])
    assert np.array_equal(result.errors[fine], expected.errors)
    assert np.array_equal(result.total[fine], expected.total)
    assert np.array_equal(again.status, result.status)
    assert again.message[1] == result.message[1] and np.array_equal(again.total, result.total)


class OutsideKiller(threading.Thread):
    """Kills (SIGKILL) a worker process once it is evaluating, as a user or a node failure
    would."""

    def __init__(self, client: Client) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.killed: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            pid = wait_until(
                lambda: worker_evaluating(self.client), 120, "a worker evaluating", 0.005
            )
            os.kill(pid, signal.SIGKILL)
            self.killed = pid
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error


def test_worker_killed_from_outside_marks_nobody_crashed(tmp_path):
    """The lost chunk's individuals are all run again (alone) and get their real results:
    none of them kills its worker when run alone."""
    spec = crashing_spec(tmp_path, busy_s=0.3, segv=1.0, abrt=0.0)  # slow, never crashing
    problem = build_problem(spec)
    points = _points([1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4, 7e-4, 8e-4])
    config = ClusterConfig(workers=2, chunks_per_worker=1)
    with make_cluster(config) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        evaluator = DaskEvaluator(client, problem, config=config)
        killer = OutsideKiller(client)
        killer.start()
        result = evaluator(points)
        killer.join(timeout=10)
        assert killer.error is None, killer.error
        assert killer.killed, "no worker was killed"
        # its nanny saw the kill, during an evaluation
        deaths = client.get_metadata([DEATHS])
    (death,) = [d for d in deaths.values() if d["worker"].endswith(f":{killer.killed}")]
    assert death["exitcode"] == -signal.SIGKILL and death["running"] is not None
    assert np.all(result.status == OK), [result.message[i] for i in np.flatnonzero(result.status)]
    assert CRASHED not in result.status
    assert killer.killed not in {int(w.rsplit(":", 1)[1]) for w in result.worker}  # redone
    expected = _evaluate_alone(uc1_spec(), points)
    assert np.array_equal(result.errors, expected.errors)
    assert np.array_equal(result.total, expected.total)


class AloneKiller(threading.Thread):
    """Kills (SIGKILL) a worker process once it evaluates one of the individuals ``names``."""

    def __init__(self, client: Client, names: set[str]) -> None:
        super().__init__(daemon=True)
        self.client, self.names = client, names
        self.killed: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            pid = wait_until(
                lambda: worker_evaluating(self.client, self.names), 120, "an evaluation", 0.01
            )
            os.kill(pid, signal.SIGKILL)
            self.killed = pid
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error


def test_worker_killed_from_outside_while_an_individual_runs_alone_blames_nobody(tmp_path):
    """A chunk lost to a segfaulting individual is run again one individual per task; a
    SIGKILL from outside (scancel, a lost node) while one of them runs alone blames nobody:
    it gets its real result. The segfaulting one is blamed once a fresh process confirms it."""
    spec = crashing_spec(tmp_path, busy_s=0.3)
    problem = build_problem(spec)
    points = _points([9.5e-4, 1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4, 7e-4])  # the first: SIGSEGV
    # the others of the culprit's chunk: evaluated only alone (it dies first)
    alone = {fingerprint(problem.key, points[row]) for row in (1, 2, 3)}
    config = ClusterConfig(workers=2, chunks_per_worker=1)
    with make_cluster(config) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        evaluator = DaskEvaluator(client, problem, config=config)
        killer = AloneKiller(client, alone)
        killer.start()
        result = evaluator(points)
        killer.join(timeout=10)
        assert killer.error is None, killer.error
        deaths = client.get_metadata([DEATHS])
    (death,) = [d for d in deaths.values() if d["worker"].endswith(f":{killer.killed}")]
    assert death["exitcode"] == -signal.SIGKILL and death["running"] in alone
    assert STATUSES[result.status[0]] == "crashed"
    assert result.message[0].count("signal 11 (SIGSEGV)") == 2, result.message[0]
    assert np.all(result.status[1:] == OK), result.message
    expected = _evaluate_alone(uc1_spec(), points[1:])
    assert np.array_equal(result.errors[1:], expected.errors)
    assert np.array_equal(result.total[1:], expected.total)


def test_individual_whose_worker_keeps_dying_without_evidence_is_stored_as_failed(tmp_path):
    """An individual that SIGKILLs its own process (to the evaluator, a kill from outside:
    no memory growth) is never blamed; past ``resubmissions`` it is stored as failed, with
    the cause in its message."""
    spec = crashing_spec(tmp_path, kill=8e-4)
    problem = build_problem(spec)
    points = _points([8.5e-4])
    config = ClusterConfig(workers=1, resubmissions=1)
    with make_cluster(config) as cluster, Client(cluster) as client:
        client.wait_for_workers(1)
        result = DaskEvaluator(client, problem, config=config)(points)
    assert STATUSES[result.status[0]] == "failed"
    assert result.total[0] == problem.spec.evaluation.penalty
    message = result.message[0]
    assert "died 2 times while evaluating it" in message, message
    assert "signal 9 (SIGKILL)" in message and "no evidence" in message


def test_only_deaths_a_model_can_cause_make_an_individual_a_suspect():
    from neuroptimus.optimization.execution.crash_blame import confirmation, suspicion

    mb = 1_000_000
    death = {"exitcode": -signal.SIGKILL, "memory_start": 100 * mb, "memory_limit": 2000 * mb}
    assert suspicion({**death, "memory_last": 150 * mb}) is None  # an outside kill
    oom = suspicion({**death, "memory_last": 1900 * mb})
    assert "out of memory" in oom and "grew from 95.37 MiB to 1.77 GiB (limit 1.86 GiB)" in oom
    terminated = {**death, "exitcode": -signal.SIGTERM, "memory_terminated": True}
    assert "past Dask's memory limit" in suspicion(terminated)
    assert suspicion({**death, "exitcode": -signal.SIGTERM, "memory_last": 150 * mb}) is None
    assert "SIGSEGV" in suspicion({"exitcode": -signal.SIGSEGV})
    for code in (-signal.SIGBUS, -signal.SIGFPE, -signal.SIGILL, -signal.SIGABRT):
        assert suspicion({"exitcode": code}) is not None
    for code in (None, 0, 1, -signal.SIGINT, -signal.SIGHUP):
        assert suspicion({"exitcode": code}) is None
    assert confirmation({"exitcode": -signal.SIGKILL, "memory_killed": True}) is not None
    run = {"exitcode": -signal.SIGKILL, "memory_start": 100 * mb, "memory_limit": 2000 * mb}
    assert confirmation({**run, "memory_peak": 120 * mb}) is None
    assert "out of memory" in confirmation({**run, "memory_peak": 1500 * mb})


@pytest.mark.slow
def test_run_with_crashing_individuals_completes(tmp_path, prefect_harness):
    """The whole flow (Prefect, Dask, Zarr): the run ends normally and its store holds the
    culprits with the crashed status, the penalty and the signal."""
    from neuroptimus.flows.run import run_flow
    from neuroptimus.storage.runs.run_store import RunStore

    store = tmp_path / "crashing.zarr"
    run_flow(crashing_spec(tmp_path), str(store), ClusterConfig(workers=2), report=False)
    run = RunStore.open(store)
    assert run.attrs["finished"] is not None
    assert run.attrs["status_names"][CRASHED] == "crashed"
    rows = run.evaluations()
    gl = rows["parameters"][:, run.parameter_names.index("gl_hh")]
    culprits = (gl > SEGV_ABOVE) | (gl < ABRT_BELOW)
    assert 1 <= culprits.sum() < len(gl) / 2, "choose thresholds that catch a few individuals"
    assert np.array_equal(rows["status"] == CRASHED, culprits)
    assert np.all(rows["total"][culprits] == run.attrs["penalty"])
    for message, value in zip(rows["message"][culprits], gl[culprits], strict=True):
        assert ("signal 11 (SIGSEGV)" if value > SEGV_ABOVE else "signal 6 (SIGABRT)") in message
    assert np.all(rows["status"][~culprits] == OK)
    assert np.all(rows["total"][~culprits] < run.attrs["penalty"])


def test_death_messages_name_the_signal_or_the_exit_status():
    from neuroptimus.optimization.execution.worker_deaths import death_message

    assert death_message(-11) == "worker process killed by signal 11 (SIGSEGV)"
    assert death_message(-6) == "worker process killed by signal 6 (SIGABRT)"
    assert death_message(-9).startswith("worker process killed by signal 9 (SIGKILL): the out-of")
    assert "Dask's memory limit" in death_message(-15)
    assert death_message(3) == "worker process exited with status 3"
    assert death_message(None) == "worker process lost (no exit status reported)"


# A mechanism that writes through a null pointer when initialized with fault > 0.5: a real
# segmentation fault in compiled model code.
SEGFAULT_MOD = """\
NEURON {
    SUFFIX neuroptimus_test_segfault
    RANGE fault
}
PARAMETER {
    fault = 0
}
INITIAL {
VERBATIM
    if (fault > 0.5) {
        *(volatile int*)0 = 1;
    }
ENDVERBATIM
}
"""


def test_a_mechanism_that_segfaults_is_stored_as_crashed(tmp_path):
    """Real compiled code faulting: the individual is `crashed` after its two deaths by
    SIGSEGV; the others of its chunk get their results."""
    path = leak_problem(tmp_path, extra_mods={"segfault.mod": SEGFAULT_MOD})
    (tmp_path / "model.hoc").write_text(
        MODEL_HOC.replace("insert hh", "insert hh\n    insert neuroptimus_test_segfault")
    )
    fault = {"name": "fault", "hoc": "soma.fault_neuroptimus_test_segfault", "lower": 0,
             "upper": 1, "true_value": 0}  # fmt: skip
    spec = load_problem(path)
    spec = spec.model_copy(update={"parameters": [*spec.parameters, ParameterSpec(**fault)]})
    problem = build_problem(spec)
    points = np.array([[0.12, 3e-4, 0.1], [0.12, 3e-4, 0.9], [0.1, 5e-4, 0.2]])
    config = ClusterConfig(workers=2, chunks_per_worker=1)
    with make_cluster(config) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        result = DaskEvaluator(client, problem, config=config)(points)
    assert [STATUSES[s] for s in result.status] == ["ok", "crashed", "ok"], result.message
    assert result.message[1].count("killed by signal 11 (SIGSEGV)") == 2, result.message[1]
    assert result.total[0] < result.total[2] < problem.spec.evaluation.penalty
