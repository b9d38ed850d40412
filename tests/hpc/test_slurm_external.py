"""A slow external program (the JSON-protocol example, seconds per evaluation) fitted on the
real single-node SLURM through a SLURMCluster profile. Its job is cancelled (scancel) in the
middle of an evaluation, just after one of its workers finished another: that result is kept,
only the evaluations in flight on that job are run again, on the replacement job, and the store
equals the LocalCluster run of the same problem bit for bit."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from pathlib import Path

import dask
import pytest
from hpc_runs import assert_same_run, wait_until
from test_slurm import _jobs, slurm_config

from neuroptimus.flows.run import run_flow
from neuroptimus.optimization.execution.cluster import ClusterConfig
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.storage.runs.run_store import RunStore
from tests.optimization.blackbox_models import slow_json_example

pytestmark = pytest.mark.slow

POPULATION, GENERATIONS = 4, 2
TRUE_POINT = (0.05, 20.0)

# Logs each invocation's start and end with its SLURM job and worker process (the parent of the
# program's leader), sleeps, runs the example unchanged.
WRAPPER = """
import json, os, runpy, sys, time

request = json.load(open(sys.argv[1]))
values = " ".join(repr(float(request["parameters"][n])) for n in ("g_leak_uS", "tau_ms"))
job = os.environ.get("SLURM_JOB_ID", "local")
# the worker process: the parent of this program's leader (its parent process)
with open(f"/proc/{os.getppid()}/stat") as stat:
    worker = stat.read().rsplit(")", 1)[1].split()[1]

def log(event):
    with open(os.environ["QUEUE_TEST_CALLS"], "a") as handle:
        handle.write(f"{event} {job} {worker} {values} {request['sweep']}\\n")

log("start")
time.sleep(float(os.environ["QUEUE_TEST_SLEEP_S"]))
runpy.run_path("lif_model.py", run_name="__main__")
log("end")
"""


@pytest.fixture(scope="module")
def problem_path(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("slow-external")
    return slow_json_example(folder, WRAPPER, POPULATION, GENERATIONS, seed=7)


def _calls(path: Path) -> list[tuple[str, str, int, tuple[float, float], int]]:
    """(event, job, worker pid, vector, sweep) of every logged line but the set-up's run at
    the true values."""
    rows = []
    for line in path.read_text().splitlines() if path.exists() else []:
        event, job, pid, g, tau, sweep = line.split()
        if (float(g), float(tau)) != TRUE_POINT:
            rows.append((event, job, int(pid), (float(g), float(tau)), int(sweep)))
    return rows


def _finished_then_followed(lines, job: str, sweeps: int) -> dict[tuple, int]:
    """The evaluations a worker process of ``job`` finished and then started another one:
    their results existed (each is handed over before its worker goes on). By worker pid."""
    ended: dict[int, list[tuple]] = {}
    followed: dict[tuple, int] = {}
    for event, where, pid, vector, sweep in lines:
        if where != job:
            continue
        if event == "end" and sweep == sweeps - 1:
            ended.setdefault(pid, []).append(vector)
        elif event == "start" and sweep == 0:
            followed.update((done, pid) for done in ended.pop(pid, []))
    return followed


def _in_flight(lines, job: str, sweeps: int) -> set[tuple]:
    started = {v for e, j, _, v, s in lines if e == "start" and s == 0 and j == job}
    return started - {v for e, j, _, v, s in lines if e == "end" and s == sweeps - 1 and j == job}


def test_cancelled_job_loses_only_its_evaluations_in_flight(
    slurm, tmp_path, prefect_harness, problem_path, monkeypatch
):
    spec = load_problem(problem_path)
    sweeps = len(spec.protocol.stimulus.amplitudes)
    reference = tmp_path / "reference.zarr"
    monkeypatch.setenv("QUEUE_TEST_CALLS", str(tmp_path / "reference-calls.txt"))
    monkeypatch.setenv("QUEUE_TEST_SLEEP_S", "0")  # the same results, without the wait
    run_flow(spec, str(reference), ClusterConfig(workers=2), report=False)

    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("QUEUE_TEST_CALLS", str(calls))  # inherited by sbatch's jobs
    monkeypatch.setenv("QUEUE_TEST_SLEEP_S", "1.5")  # about 4 s per evaluation (2 sweeps)
    store = tmp_path / "slurm.zarr"
    cancelled: dict = {}

    def cancel_mid_evaluation():
        """Once a worker of the job has finished an evaluation and has just started another
        one (not at the end of an evaluation's program: its result is made after that)."""

        def ready():
            lines = _calls(calls)
            for job in dict.fromkeys(j for _, j, *_ in lines if j != "local"):
                if _finished_then_followed(lines, job, sweeps) and _in_flight(lines, job, sweeps):
                    return job
            return None

        job = wait_until(ready, 300, "an evaluation in flight on a SLURM job", 0.05)
        slurm.run("scancel", job)
        # what was in flight is read once the job has gone: an evaluation may end (or the
        # job start another) between the moment chosen and the one its processes die
        wait_until(
            lambda: job not in dict(slurm.jobs()), 60, "the cancelled job to leave the queue", 0.1
        )
        lines = _calls(calls)
        started = {v for e, j, _, v, s in lines if e == "start" and s == 0 and j == job}
        finished = _finished_then_followed(lines, job, sweeps)
        cancelled.update(
            job=job, in_flight=_in_flight(lines, job, sweeps), started=started, finished=finished
        )

    canceller = threading.Thread(target=cancel_mid_evaluation, daemon=True)
    canceller.start()
    # a lost job is dropped after this long, then adaptive scaling replaces it
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "1s"}):
        run_flow(spec, str(store), slurm_config(tmp_path, cores=2, workers=None), report=False)
    canceller.join(timeout=10)
    assert cancelled, "the run ended before a job could be cancelled"

    rows = assert_same_run(store, reference)
    job, in_flight = cancelled["job"], cancelled["in_flight"]
    assert in_flight, "no evaluation was in flight when the job was cancelled"
    stored_from = dict(zip(map(tuple, rows["parameters"].tolist()), _jobs(rows), strict=True))
    stored_by = dict(zip(map(tuple, rows["parameters"].tolist()), rows["worker"], strict=True))
    # evaluations (sweep 0 started), less the best individual's re-simulation for its trace
    # (none when its traces were kept from its evaluation)
    runs: defaultdict[tuple, list[str]] = defaultdict(list)
    for event, where, _, vector, sweep in _calls(calls):
        if event == "start" and sweep == 0:
            runs[vector].append(where)
    run = RunStore.open(store)
    best = tuple(float(v) for v in run.arrays("best")["parameters"])
    if run.attrs["best_traces"] == "simulated again":
        runs[best].pop()
    assert set(runs) == set(stored_from) and len(runs) == POPULATION * GENERATIONS
    repeated = {vector for vector, jobs in runs.items() if len(jobs) > 1}
    assert in_flight <= repeated <= cancelled["started"]
    for vector in repeated:  # once on the cancelled job, once on its replacement
        assert len(runs[vector]) == 2 and runs[vector][0] == job != stored_from[vector]
    # what its workers had finished before the job died is kept, from the worker that made it
    assert cancelled["finished"], "no evaluation was finished when the job was cancelled"
    for vector, pid in cancelled["finished"].items():
        assert runs[vector] == [job] and stored_by[vector].endswith(f":{pid}/slurm-{job}")
    assert Counter(len(jobs) for vector, jobs in runs.items() if vector not in repeated) == {
        1: POPULATION * GENERATIONS - len(repeated)
    }
    assert "CANCELLED" in slurm.run("scontrol", "show", "job", job)
    assert len(set(stored_from.values())) == 2  # the replacement job did the rest
