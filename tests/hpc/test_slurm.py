"""UC1 on a real (single-node) SLURM: Dask workers are batch jobs that dask-jobqueue's
SLURMCluster submits with sbatch, all through a ClusterConfig and the real Prefect flows; the
result is the LocalCluster reference's, bit for bit. Then the job is cancelled mid-run."""

from __future__ import annotations

import re
import threading

import dask
import numpy as np
import pytest
import yaml
from hpc_runs import assert_same_run, committed, uc1_spec, wait_until

from neuroptimus.flows.run import run_flow
from neuroptimus.optimization.evaluation.individual import OK
from neuroptimus.optimization.execution.cluster import ClusterConfig
from tests.deployments.served import serving

pytestmark = pytest.mark.slow


def slurm_config(tmp_path, cores: int = 1, workers: int | None = 2) -> ClusterConfig:
    return ClusterConfig(
        cluster_class="dask_jobqueue.SLURMCluster",
        options={
            "cores": cores,
            "memory": f"{cores}GB",
            "walltime": "00:20:00",
            "job_name": "neuroptimus-test",
            "log_directory": str(tmp_path / "logs"),
            "local_directory": str(tmp_path / "scratch"),
            "job_script_prologue": ["export OMP_NUM_THREADS=1"],
        },
        workers=workers,
    )


def _jobs(rows) -> np.ndarray:
    """The SLURM job id in each row's worker label (host:pid/slurm-ID)."""
    labels = [re.fullmatch(r"[^/]+:\d+/slurm-(\d+)", name) for name in rows["worker"]]
    assert all(labels), rows["worker"]
    return np.array([label.group(1) for label in labels])


def test_uc1_runs_on_slurm_jobs(slurm, tmp_path, prefect_harness, reference):
    store = tmp_path / "slurm.zarr"
    run_flow(uc1_spec(), str(store), slurm_config(tmp_path), report=False)
    rows = assert_same_run(store, reference)
    assert np.all(rows["status"] == OK)
    # two jobs of one single-threaded worker each; the run does not wait for a job that starts
    # late (a queue may hold it for hours), and its 18 evaluations take about a second
    jobs = set(_jobs(rows))
    assert 1 <= len(jobs) <= 2, jobs
    for job in jobs:
        details = slurm.run("scontrol", "show", "job", job)
        assert "JobName=neuroptimus-test" in details and "NumCPUs=1" in details
        assert (tmp_path / "logs" / f"neuroptimus-test-{job}.err").exists()
    # closing the cluster ends its jobs
    wait_until(lambda: not slurm.run("squeue", "-h", "-t", "PD,R"), 60, "the jobs to end", 0.5)


def test_cancelled_job_is_replaced_and_the_run_completes(
    slurm, tmp_path, prefect_harness, reference
):
    """One job of two workers, cancelled with scancel after the first generation: adaptive
    scaling submits a replacement job, whose workers finish the run (``generation``, read
    once scancel has returned, is at least the one under way when the job was cancelled)."""
    store = tmp_path / "cancelled.zarr"
    cancelled: list[tuple[str, int]] = []

    def cancel_mid_run():
        wait_until(lambda: committed(store) >= 1, 300, "a committed generation")
        running = [job for job, state in slurm.jobs() if state == "RUNNING"]
        for job in running:
            slurm.run("scancel", job)
            cancelled.append((job, committed(store)))

    canceller = threading.Thread(target=cancel_mid_run, daemon=True)
    canceller.start()
    # a lost job is dropped from the cluster's books after this long, then adaptive scaling
    # replaces it (15 s by default)
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "1s"}):
        run_flow(
            uc1_spec(), str(store), slurm_config(tmp_path, cores=2, workers=None), report=False
        )
    canceller.join(timeout=10)
    assert len(cancelled) == 1, cancelled
    job, generation = cancelled[0]
    assert generation < 3, "the run ended before the job was cancelled"
    rows = assert_same_run(store, reference)
    jobs = _jobs(rows)
    assert job in jobs[rows["generation"] < generation]
    # what its workers finished in the generation under way when it was cancelled is kept
    # (handed over as it ended); after that generation, nothing of the cancelled job
    assert job not in jobs[rows["generation"] > generation]
    assert len(set(jobs)) == 2  # the replacement job did the rest
    assert "CANCELLED" in slurm.run("scontrol", "show", "job", job)


def test_deployment_run_from_the_form_runs_on_slurm_jobs(slurm, tmp_path, reference):
    """What docs/deployments.md has a user do on a login node: `neuroptimus serve`, then a
    run of the `run` deployment with the problem form and a cluster profile of the site's
    SLURM; the populations go to SLURM jobs and the result is the reference's."""
    profile = tmp_path / "site-slurm.yaml"
    profile.write_text(yaml.safe_dump(slurm_config(tmp_path).model_dump(exclude_defaults=True)))
    store = tmp_path / "deployed.zarr"
    home = tmp_path / "prefect-home"
    home.mkdir()
    with serving(home) as served:  # started after `slurm`: inherits its SLURM_CONF
        parameters = {
            "problem": uc1_spec().model_dump(mode="json"),
            "store": str(store),
            "cluster_profile": str(profile),
        }
        flow_run = served.trigger("neuroptimus-run/run", parameters)
        assert flow_run.state.is_completed(), f"{flow_run.state}\n{served.output()[-3000:]}"
    rows = assert_same_run(store, reference)
    assert len(set(_jobs(rows))) == 2


def test_job_cancelled_while_queued_is_replaced(slurm, tmp_path):
    """A job whose workers never started (held in the queue, then cancelled) is dropped once
    the queue no longer lists it, and adaptive scaling submits another."""
    from neuroptimus.optimization.execution.cluster import make_cluster

    config = slurm_config(tmp_path, workers=1)
    config.options["job_extra_directives"] = ["--begin=now+1hour"]  # stays pending
    cluster = make_cluster(config)
    try:
        wait_until(lambda: _submitted(cluster), 60, "a submitted job")
        (first,) = _submitted(cluster)
        assert dict(slurm.jobs())[first] == "PENDING"
        slurm.run("scancel", first)
        wait_until(
            lambda: _submitted(cluster) and first not in _submitted(cluster),
            60,
            "a replacement job",
            0.5,
        )
        (second,) = _submitted(cluster)
        assert dict(slurm.jobs())[second] == "PENDING"
    finally:
        cluster.close()


def _submitted(cluster) -> list[str]:
    return [job.job_id for job in list(cluster.workers.values()) if job.job_id]
