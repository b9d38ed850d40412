"""Hypervolumes of a run's fronts, computed beside the run instead of on its critical path.

Exact hypervolume is exponential in the number of objectives: a 12-objective front of a few
hundred points can take minutes, and its cost depends on the front's shape. So:

- up to 3 objectives the exact value is cheap (O(n log n)) and computed at once;
- beyond, a helper *process* computes it (pygmo holds the GIL while it computes, so a thread
  would stall the flow's Dask client), at a lower CPU priority than the workers;
- an exact computation that overruns ``exact_budget_s`` is killed and replaced by pygmo's
  FPRAS, whose relative error ``eps`` (with probability ``1 - delta``) is chosen to fit
  ``approx_budget_s``; the run stays approximate until its front shrinks below half the size
  that overran;
- when the helper falls behind (a computation took longer than ``keep_up_s``), generations
  waiting behind a newer one are skipped: the newest front is always the one computed.

Each generation ends with one of ``METHODS``; the store keeps it beside the value.
"""

from __future__ import annotations

import math
import pickle
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from neuroptimus.optimization.scoring import pareto

METHODS = ("none", "pending", "exact", "bf_fpras", "skipped", "failed")
NONE, PENDING, EXACT, FPRAS, SKIPPED, FAILED = range(len(METHODS))
EPS_RANGE = (0.01, 0.5)
DELTA = 0.05  # the FPRAS's error bound holds with probability 1 - DELTA

# The helper loads optimization/scoring/pareto.py by its path: importing the packages would pull in
# zarr, pydantic and the simulators, seconds of start-up for a numpy + pygmo job.
_HELPER = """
import importlib.util, os, pickle, sys, time
spec = importlib.util.spec_from_file_location("neuroptimus_pareto", sys.argv[1])
pareto = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pareto)
import numpy, pygmo  # loaded before saying ready: budgets time computations, not start-up
try:
    os.nice(10)  # the workers first: computations only take spare CPU
except OSError:
    pass
pickle.dump("ready", sys.stdout.buffer)
sys.stdout.buffer.flush()
while True:
    try:
        points, reference, eps, delta = pickle.load(sys.stdin.buffer)
    except EOFError:
        break
    started = time.process_time()
    try:
        reply = (pareto.hypervolume(points, reference, eps, delta), None)
    except Exception as error:
        reply = (float("nan"), repr(error))
    pickle.dump((*reply, time.process_time() - started), sys.stdout.buffer)
    sys.stdout.buffer.flush()
"""


@dataclass(frozen=True)
class Volume:
    """The hypervolume of the front after one generation."""

    generation: int
    value: float  # NaN unless computed
    method: int  # index into METHODS
    error: float  # relative error bound: 0 when exact, eps for the FPRAS, NaN if not computed
    note: str = ""
    token: int = 0  # as submitted: tells a retried generation's volume from an older one


class _Helper:
    """One helper process; killed and replaced when a computation overruns its budget."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _HELPER, str(Path(pareto.__file__))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.ready = False

    def compute(self, job: tuple, timeout: float | None) -> tuple[float, str | None, float] | None:
        """(value, error message, CPU seconds), or None if it ran out of time."""
        if not self.ready:
            self.ready = pickle.load(self.process.stdout) == "ready"
        pickle.dump(job, self.process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            return None
        return pickle.load(self.process.stdout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            stream.close()


class HypervolumeService:
    """Takes fronts (``submit``), hands back finished ``Volume``s (``results``)."""

    def __init__(
        self,
        reference: np.ndarray,
        exact_budget_s: float = 2.0,
        approx_budget_s: float = 2.0,
        delta: float = DELTA,
        keep_up_s: float = 0.5,
    ) -> None:
        self.reference = np.asarray(reference, dtype=float)
        self.exact_budget_s, self.approx_budget_s = exact_budget_s, approx_budget_s
        self.delta, self.keep_up_s = delta, keep_up_s
        self.cpu_seconds = 0.0  # spent computing, here and in the helper
        self._condition = threading.Condition()
        self._queue: list[tuple[int, int, np.ndarray]] = []
        self._done: list[Volume] = []
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._helper: _Helper | None = None
        self._exact_overran_at = math.inf  # front size at which exact overran its budget
        self._fpras_cost = 2e-7  # seconds × eps² per point and objective (measured as it runs)
        self._last_seconds = 0.0

    # -- the run's side -------------------------------------------------------------------
    def submit(self, generation: int, front: np.ndarray, token: int = 0) -> None:
        """The front (weighted error vectors) after ``generation``; a later submission for
        the same generation replaces an earlier one still waiting."""
        front = np.array(front, dtype=float)
        if front.shape[1] <= 3 or len(front) <= 1:  # cheap and exact: no need for a helper
            started = time.process_time()
            value = pareto.hypervolume(front, self.reference)
            self.cpu_seconds += time.process_time() - started
            with self._condition:
                self._done.append(Volume(generation, value, EXACT, 0.0, token=token))
            return
        with self._condition:
            self._queue = [job for job in self._queue if job[0] != generation]
            self._queue.append((generation, token, front))
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="hypervolume", daemon=True)
                self._thread.start()
            self._condition.notify_all()

    def results(self) -> list[Volume]:
        """Volumes finished since the last call (never waits)."""
        with self._condition:
            done, self._done = self._done, []
        return done

    def drain(self, timeout: float | None = None) -> list[Volume]:
        """Wait until every submitted front is done (or ``timeout``), then ``results()``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while self._queue or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._condition.wait(left)
        return self.results()

    def pending(self) -> list[int]:
        with self._condition:
            return [generation for generation, _, _ in self._queue]

    def close(self) -> None:
        """Stop the helper; fronts still waiting are dropped (their generations stay
        ``pending`` in the store: recomputed when the run is resumed)."""
        with self._condition:
            self._closed = True
            self._queue.clear()
            self._condition.notify_all()
            helper, self._helper = self._helper, None
        if helper is not None:
            helper.stop()  # unblocks a computation in progress
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # -- the worker thread ----------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._condition:
                while not self._queue and not self._closed:
                    self._condition.wait()
                if self._closed:
                    return
                if len(self._queue) > 1 and self._last_seconds > self.keep_up_s:
                    note = "a later front was computed instead (the helper was behind)"
                    self._done += [Volume(g, math.nan, SKIPPED, math.nan, note, t)
                                   for g, t, _ in self._queue[:-1]]  # fmt: skip
                    del self._queue[:-1]
                generation, token, front = self._queue.pop(0)
                self._busy = True
            try:
                volume = self._compute(generation, front)
            except Exception as error:  # a side computation never stops the run
                volume = Volume(generation, math.nan, FAILED, math.nan, repr(error))
            volume = replace(volume, token=token)
            with self._condition:
                if not self._closed:
                    self._done.append(volume)
                self._busy = False
                self._condition.notify_all()

    def _ask(self, front: np.ndarray, eps: float | None, timeout: float | None):
        with self._condition:
            if self._closed:
                raise RuntimeError("the run store was closed")
            if self._helper is None:
                self._helper = _Helper()
            helper = self._helper
        try:
            reply = helper.compute((front, self.reference, eps, self.delta), timeout)
        except (EOFError, OSError, pickle.UnpicklingError) as error:
            reply = (math.nan, f"the helper process ended: {error!r}", 0.0)
        if reply is None or reply[1] is not None:  # overran, or the helper is in doubt
            with self._condition:
                self._helper = None
            helper.stop()
        return reply

    def _compute(self, generation: int, front: np.ndarray) -> Volume:
        n, k = front.shape
        self._last_seconds = 0.0  # CPU seconds of this front (helper start-up excluded)
        if n < self._exact_overran_at / 2:
            reply = self._ask(front, None, self.exact_budget_s)
            if reply is not None:
                self._last_seconds = reply[2]
                return self._volume(generation, reply, EXACT, 0.0)
            self._exact_overran_at = n
            self.cpu_seconds += self.exact_budget_s  # (at most: it had the spare CPU only)
            self._last_seconds = self.exact_budget_s
        eps = math.sqrt(self._fpras_cost * n * k / self.approx_budget_s)
        eps = min(max(eps, EPS_RANGE[0]), EPS_RANGE[1])
        reply = self._ask(front, eps, None)
        self._last_seconds += reply[2]
        if reply[1] is None and reply[2] > 0:
            self._fpras_cost = reply[2] * eps**2 / (n * k)
        note = f"exact overran {self.exact_budget_s:g} s at {int(self._exact_overran_at)} points"
        return self._volume(generation, reply, FPRAS, eps, note=note)

    def _volume(self, generation, reply, method, error, note="") -> Volume:
        value, failure, seconds = reply
        self.cpu_seconds += seconds
        if failure is not None:
            return Volume(generation, math.nan, FAILED, math.nan, failure)
        return Volume(generation, float(value), method, error, note)
