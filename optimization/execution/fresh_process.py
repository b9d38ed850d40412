"""One evaluation in a fresh process: the confirmation ``crash_blame`` asks for before it
blames an individual for killing its worker.

The worker starts a new Python process (a subprocess: Dask's worker processes are daemons,
which ``multiprocessing`` forbids to have children), which builds the model, evaluates the one
individual and hands its outcome back in a file. The worker watches it meanwhile: it kills it
past the evaluation's time limit plus the grace (a hang), or once its memory passes the
worker's memory limit as the nanny would, and reports how it ended with its peak memory.
Nothing the process does can take the worker along.

Run as
``python -m neuroptimus.optimization.execution.fresh_process JOB RESULT READY_FD PARENT_PID``."""

from __future__ import annotations

import ctypes
import os
import pickle
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cloudpickle
import numpy as np
import psutil

from neuroptimus.optimization.errors import InfrastructureError
from neuroptimus.optimization.evaluation import individual as evaluation
from neuroptimus.optimization.evaluation.problem import Problem

# The longest a fresh process may take to start Python and build the model.
BUILD_S = 300.0
_LOOK_S = 0.05  # how often the worker looks at the process


class FreshProcessError(InfrastructureError, RuntimeError):
    """The fresh process could not evaluate the individual for a reason of its own (it did
    not start, or could not build the model)."""


@dataclass
class FreshRun:
    """How the evaluation in a fresh process ended."""

    outcome: tuple[np.ndarray, int, str, float] | None  # evaluate_one's, if it ended
    exitcode: int  # -N: killed by signal N
    seconds: float  # from the model built to the end
    memory_start: int | None  # bytes resident once the model was built
    memory_peak: int  # the most bytes it held
    memory_limit: int | None  # above this much it was killed (None: never)
    memory_killed: bool  # killed here past that limit
    hung: bool  # killed here past the time limit and the grace
    pid: int

    def as_dict(self) -> dict:
        return asdict(self)


def _resident(pid: int) -> int | None:
    try:
        return psutil.Process(pid).memory_info().rss
    except (psutil.Error, OSError):
        return None


def evaluate_fresh(
    problem: Problem, values: np.ndarray, grace_s: float, memory_limit: int | None
) -> FreshRun:
    """Evaluate ``values`` in a new process; kill it ``grace_s`` past the evaluation's time
    limit, or once it holds more than ``memory_limit`` bytes."""

    with tempfile.TemporaryDirectory(prefix="neuroptimus-fresh-") as folder:
        job, result = Path(folder) / "job.pickle", Path(folder) / "result.pickle"
        job.write_bytes(cloudpickle.dumps((problem, np.asarray(values))))
        ready, ready_write = os.pipe()
        # the same imports as this worker
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        command = [sys.executable, "-m", __name__, str(job), str(result), str(ready_write)]
        try:
            process = subprocess.Popen(
                [*command, str(os.getpid())],
                pass_fds=(ready_write,), stdin=subprocess.DEVNULL, env=env,
            )  # fmt: skip
        finally:
            os.close(ready_write)
        try:
            run = _watch(process, ready, problem.spec.evaluation.timeout_s + grace_s, memory_limit)
        finally:
            os.close(ready)
        if result.exists():
            run.outcome = pickle.loads(result.read_bytes())
        elif run.exitcode >= 0:
            raise FreshProcessError(
                f"a fresh process could not evaluate the individual (exit status "
                f"{run.exitcode}, see the worker's log); check that the model builds"
            )
        return run


def _watch(
    process: subprocess.Popen, ready: int, limit_s: float, memory_limit: int | None
) -> FreshRun:
    started = time.monotonic()
    built: float | None = None
    memory_start, killed_for = None, None
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        now = time.monotonic()
        if built is None and select.select([ready], [], [], 0)[0]:
            built, memory_start = now, _resident(process.pid)
        memory = _resident(process.pid)
        if memory_limit and memory and memory > memory_limit:
            killed_for = "memory"
        elif built is not None and now > built + limit_s:
            killed_for = "time"
        elif built is None and now > started + BUILD_S:
            killed_for = "build"
        if killed_for:
            process.kill()
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(_LOOK_S)
    process.returncode = exitcode = os.waitstatus_to_exitcode(status)  # reaped here
    if killed_for == "build":
        raise FreshProcessError(
            f"a fresh process did not build the model within {BUILD_S:g} s; check the model"
        )
    return FreshRun(
        outcome=None,
        exitcode=exitcode,
        seconds=time.monotonic() - (built or started),
        memory_start=memory_start,
        memory_peak=usage.ru_maxrss * 1024,  # Linux reports kilobytes
        memory_limit=memory_limit,
        memory_killed=killed_for == "memory",
        hung=killed_for == "time",
        pid=process.pid,
    )


def _die_with_parent(parent: int) -> None:
    """Be killed when the worker dies (Linux), so that a hung simulation does not outlive it."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)  # it died before the line above


def main(argv: list[str]) -> None:
    job, result, ready, parent = Path(argv[0]), Path(argv[1]), int(argv[2]), int(argv[3])
    _die_with_parent(parent)

    problem, values = pickle.loads(job.read_bytes())
    evaluation.simulator_for(problem)
    os.write(ready, b"1")
    os.close(ready)
    outcome = evaluation.evaluate_one(problem, values)
    partial = result.with_suffix(".partial")
    partial.write_bytes(pickle.dumps(outcome))
    partial.rename(result)


if __name__ == "__main__":
    main(sys.argv[1:])
