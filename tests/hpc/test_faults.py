"""Real faults during real UC1 runs (Prefect flows, Dask LocalCluster, NEURON), each compared
with the fault-free run of the same seed: the same result bit for bit, every evaluation stored
exactly once.

- a worker process killed with SIGKILL in the middle of a generation;
- a simulation stuck in C code (a hoc ``while (1) {}``) that no Python timeout can interrupt;
- a full disk and an unwritable store path.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from distributed import Client
from hpc_runs import assert_same_run, committed, uc1_spec, wait_until, worker_evaluating
from test_crashes import crashing_spec

from neuroptimus.flows.run import run_flow
from neuroptimus.optimization.evaluation.individual import OK, TIMEOUT
from neuroptimus.optimization.evaluation.problem import build_problem
from neuroptimus.optimization.execution.cluster import ClusterConfig, make_cluster
from neuroptimus.optimization.execution.hang_watchdog import fingerprint
from neuroptimus.optimization.execution.worker_deaths import DEATHS
from neuroptimus.storage.runs.run_store import RunStore, StoreError

pytestmark = pytest.mark.slow


class WorkerKiller(threading.Thread):
    """Once ``after`` generations are committed, kills (SIGKILL) a worker process that is
    evaluating a chunk of the next generation."""

    def __init__(self, client: Client, store: Path, after: int = 1) -> None:
        super().__init__(daemon=True)
        self.client, self.store, self.after = client, store, after
        self.killed: tuple[int, int] | None = None  # (pid, generation being evaluated)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            wait_until(lambda: committed(self.store) >= self.after, 300, "a committed generation")
            pid = wait_until(
                lambda: worker_evaluating(self.client), 120, "a worker evaluating", 0.005
            )
            os.kill(pid, signal.SIGKILL)
            self.killed = (pid, committed(self.store))
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error


@pytest.mark.parametrize("retried_by", ["evaluator", "prefect"])
def test_worker_killed_mid_generation_is_replaced_and_the_run_goes_on(
    tmp_path, prefect_harness, reference, caplog, retried_by
):
    """The lost chunk is submitted again by the evaluator (less the individuals it had
    finished), or (with no resubmissions) the whole generation by the Prefect task's retry.
    UC1 slowed by 0.1 s of busy waiting per evaluation (the same numbers), so that the kill
    lands in the middle of a chunk."""
    store = tmp_path / "killed.zarr"
    spec = crashing_spec(tmp_path, busy_s=0.1, segv=1.0, abrt=0.0)
    # one chunk per worker: the generation's work is in flight on both workers at once
    resubmissions = 3 if retried_by == "evaluator" else 0
    config = ClusterConfig(workers=2, chunks_per_worker=1, resubmissions=resubmissions)
    with make_cluster(config) as cluster, Client(cluster) as client:
        killer = WorkerKiller(client, store)
        killer.start()
        shared = config.model_copy(update={"address": cluster.scheduler_address})
        run_flow(spec, str(store), shared, report=False)
        killer.join(timeout=10)
        assert killer.error is None, killer.error
        assert killer.killed, "no worker was killed"
        pid, generation = killer.killed
        # the nanny started a fresh worker process in its place
        alive = wait_until(lambda: len(client.run(os.getpid)) == 2, 60, "two workers again")
        assert alive and pid not in client.run(os.getpid).values()
        deaths = client.get_metadata([DEATHS])
    retries = [r for r in caplog.records if "Retry 1/3" in r.getMessage()]
    assert bool(retries) == (retried_by == "prefect")
    rows = assert_same_run(store, reference)
    pids = np.array([int(name.rsplit(":", 1)[1]) for name in rows["worker"]])
    assert pid in pids[rows["generation"] < generation]  # it took part before …
    # … and what it was evaluating when killed (its nanny says) was evaluated again elsewhere
    (death,) = [d for d in deaths.values() if d["worker"].endswith(f":{pid}")]
    assert death["running"] is not None, "the worker was killed between two evaluations"
    key = build_problem(spec).key
    names = [fingerprint(key, values) for values in rows["parameters"]]
    (row,) = [i for i, name in enumerate(names) if name == death["running"]]
    assert rows["generation"][row] >= generation and pids[row] != pid
    assert np.all(rows["status"] == OK)


HANG_HOC = """\
// UC1's model, plus a fault: initializing a model with a leak conductance above {threshold}
// either never returns ({hang} = 1, a C-level loop no Python timeout can interrupt) or busy-waits
// {busy_s} s, past the evaluation's time limit, after which the time limit stops it.
load_file("{model}")
hang_forever = {hang}
proc neuroptimus_test_hang() {{ local started
    if (soma.gl_hh(0.5) > {threshold}) {{
        if (hang_forever) {{
            while (1) {{ }}
        }} else {{
            started = startsw()
            while (startsw() - started < {busy_s}) {{ }}
        }}
    }}
}}
objref neuroptimus_test_fih
neuroptimus_test_fih = new FInitializeHandler("neuroptimus_test_hang()")
"""


def _hanging_spec(folder: Path, hang: bool):
    spec = uc1_spec()
    model = Path(spec.resolve(spec.model.hoc))
    hoc = folder / ("hang.hoc" if hang else "slow.hoc")
    hoc.write_text(
        HANG_HOC.format(model=model, hang=int(hang), threshold=9e-4, busy_s=4.0)
    )  # the true value (3e-4, the target) does not hang
    model_spec = spec.model.model_copy(update={"hoc": str(hoc)})
    # 3 s: far beyond UC1's 30 ms, even on a loaded machine
    evaluation = spec.evaluation.model_copy(update={"timeout_s": 3.0})
    return spec.model_copy(update={"model": model_spec, "evaluation": evaluation})


def test_hung_simulation_gets_the_timeout_status_and_the_run_goes_on(tmp_path, prefect_harness):
    # the reference: the same individuals pass their time limit, but stop by themselves
    slow = tmp_path / "slow.zarr"
    run_flow(_hanging_spec(tmp_path, hang=False), str(slow), ClusterConfig(workers=2), report=False)
    timed_out = RunStore.open(slow).evaluations()["status"] == TIMEOUT
    assert 1 <= timed_out.sum() <= 3, "choose a threshold that catches a few individuals"

    hung = tmp_path / "hung.zarr"
    config = ClusterConfig(workers=2, hang_grace_s=2.0)  # killed 5 s after the start
    run_flow(_hanging_spec(tmp_path, hang=True), str(hung), config, report=False)
    rows = assert_same_run(hung, slow)
    assert np.array_equal(rows["status"] == TIMEOUT, timed_out)
    caught = zip(rows["message"][timed_out], rows["seconds"][timed_out], strict=True)
    for message, seconds in caught:
        assert "hung past its time limit (3 s)" in message and "killed" in message
        assert 5.0 <= seconds < 60  # killed after timeout + grace, not left hanging


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 MB tmpfs (root only); skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    return filler


def test_full_disk_and_unwritable_store_fail_before_any_evaluation(tiny_disk, prefect_harness):
    _fill(tiny_disk)
    with pytest.raises(StoreError, match="cannot write the run store .*No space left on device"):
        run_flow(uc1_spec(), str(tiny_disk / "run.zarr"), ClusterConfig(workers=1))
    assert not (tiny_disk / "run.zarr" / "zarr.json").exists()
    with pytest.raises(StoreError, match="cannot write the run store"):
        run_flow(uc1_spec(), "/proc/neuroptimus/run.zarr", ClusterConfig(workers=1))


def test_disk_full_mid_run_corrupts_nothing_and_the_run_resumes(
    tiny_disk, prefect_harness, reference, tmp_path
):
    """The disk fills after the first generation: the run stops with the disk's error, the
    committed generations stay readable, and once space is freed the resumed run ends with the
    reference's result. UC1 slowed by 0.2 s of busy waiting per evaluation (the same numbers),
    so that the disk fills while generations are left."""
    from neuroptimus.flows.run import resume_flow

    spec = crashing_spec(tmp_path, busy_s=0.2, segv=1.0, abrt=0.0)
    store = tiny_disk / "run.zarr"
    filled: list[Path] = []

    def fill_after_first_generation():
        wait_until(lambda: committed(store) >= 1, 300, "a committed generation")
        filled.append(_fill(tiny_disk))

    filler = threading.Thread(target=fill_after_first_generation, daemon=True)
    filler.start()
    with pytest.raises(StoreError, match=f"cannot write the run store at {store}: No space left"):
        run_flow(spec, str(store), ClusterConfig(workers=2), report=False)
    filler.join(timeout=10)
    assert filled
    survivor = RunStore.open(store)
    assert 1 <= survivor.committed_generations < 3
    assert survivor.attrs["finished"] is None
    assert len(survivor.evaluations()["total"]) == survivor.committed_evaluations

    with pytest.raises(StoreError, match="cannot write the run store .*No space left"):
        # still full: fails before evaluating
        resume_flow(str(store), ClusterConfig(workers=2), report=False)
    assert RunStore.open(store).committed_evaluations == survivor.committed_evaluations

    filled[0].unlink()
    resume_flow(str(store), ClusterConfig(workers=2), report=False)
    assert_same_run(store, reference)
    shutil.rmtree(store)
