"""Workers leave before their job's walltime: the lifetime arguments a profile's walltime and
evaluation_margin give the job script, the refusal of a margin that leaves no time, and the
drain on a real LocalCluster (an evaluation in flight ends on its worker, nothing new starts)."""

from __future__ import annotations

import logging
import time

import pytest
from distributed import Client, LocalCluster

from neuroptimus.optimization.execution.cluster import ClusterConfig, ClusterError, job_script
from neuroptimus.optimization.execution.liveness import report_pauses
from neuroptimus.optimization.execution.walltime import WalltimeDrain, walltime_seconds


def _slurm(walltime: str | None = "02:00:00", margin=None, **options) -> ClusterConfig:
    options = {"cores": 2, "memory": "2GB", **options}
    if walltime is not None:
        options["walltime"] = walltime
    return ClusterConfig(
        cluster_class="dask_jobqueue.SLURMCluster", options=options, evaluation_margin=margin
    )


def _worker_command(config: ClusterConfig) -> str:
    script = job_script(config)
    return next(line for line in script.splitlines() if "distributed.cli.dask_worker" in line)


@pytest.mark.parametrize(
    "walltime, cluster_class, seconds",
    [
        ("04:00:00", "SLURMCluster", 14400),
        ("1-00:30:00", "SLURMCluster", 88200),
        ("30", "SLURMCluster", 1800),  # SLURM: minutes
        ("45:30", "SLURMCluster", 2730),  # SLURM: MM:SS
        ("01:30", "LSFCluster", 5400),  # LSF: HH:MM
        (600, "PBSCluster", 600),
    ],
)
def test_walltime_formats(walltime, cluster_class, seconds):
    assert walltime_seconds(walltime, f"dask_jobqueue.{cluster_class}") == seconds


@pytest.mark.parametrize(
    "walltime, margin, drain, lifetime",
    [
        ("02:00:00", "30 minutes", 5400, 7140),  # stops 1 min before the walltime
        ("02:00:00", None, 6900, 7140),  # default margin: 5 minutes
        ("00:20:00", None, 1080, 1140),  # … or a tenth of a short walltime
        ("00:10:00", 60, 540, 570),  # a small margin: the hard stop at half of it
    ],
)
def test_lifetime_follows_walltime_and_margin(walltime, margin, drain, lifetime):
    config = _slurm(walltime, margin)
    assert config.walltime_schedule() == (drain, lifetime)
    command = _worker_command(config)
    assert command.endswith(f"--lifetime {lifetime}s --no-lifetime-restart")
    assert "--lifetime-stagger" not in command


def test_an_explicit_lifetime_or_no_walltime_is_left_alone():
    mine = ["--lifetime", "50m", "--lifetime-stagger", "4m"]
    config = _slurm(worker_extra_args=mine, margin="10m")
    assert config.walltime_schedule() is None
    assert _worker_command(config).endswith("--lifetime 50m --lifetime-stagger 4m")
    config = _slurm(walltime=None)
    assert config.walltime_schedule() is None
    assert "--lifetime" not in _worker_command(config)
    assert ClusterConfig(evaluation_margin="1h").walltime_schedule() is None  # local


def test_the_shipped_long_profile_leaves_time_for_a_use_case_7_evaluation(tmp_path, monkeypatch):
    """slurm-long: workers stop taking evaluations 45 minutes before the 12 h walltime, more
    than use case 7's 20-minute timeout plus the hang grace."""
    from neuroptimus.flows.cluster_profiles import load_profile

    monkeypatch.chdir(tmp_path)  # the profile's log_directory is made where the run starts
    config = load_profile("slurm-long")
    drain, lifetime = config.walltime_schedule()
    assert (drain, lifetime) == (12 * 3600 - 45 * 60, 12 * 3600 - 60)
    assert 12 * 3600 - drain >= 1200 + config.hang_grace_s
    command = _worker_command(config)
    assert "--nworkers 16 " in command
    assert command.endswith(f"--lifetime {int(lifetime)}s --no-lifetime-restart")


def test_other_worker_arguments_are_kept():
    command = _worker_command(_slurm(worker_extra_args=["--resources", "model=1"], margin=600))
    assert command.endswith("--resources model=1 --lifetime 7140s --no-lifetime-restart")


@pytest.mark.parametrize(
    "margin, says",
    [
        ("2h", "leaves no time"),
        ("3h", "leaves no time"),
        ("-5m", "is not a duration"),
        ("0s", "is not a positive"),
    ],
)
def test_a_margin_that_leaves_no_time_is_refused_in_one_line(tmp_path, margin, says):
    path = tmp_path / "long.yaml"
    path.write_text(
        "cluster_class: dask_jobqueue.SLURMCluster\n"
        "options: {cores: 1, memory: 1GB, walltime: '02:00:00'}\n"
        f"evaluation_margin: {margin!r}\n"
    )
    with pytest.raises(ClusterError) as error:
        ClusterConfig.from_file(path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: evaluation_margin: {margin} {says}")


def test_a_bad_walltime_is_refused():
    with pytest.raises(ClusterError, match=r"walltime 'two hours': expected \[D-\]HH:MM:SS"):
        _slurm("two hours").check()


def _slow(seconds: float) -> int:
    import os

    time.sleep(seconds)
    return os.getpid()


def test_a_draining_worker_finishes_its_evaluation_starts_nothing_new_and_leaves(caplog):
    """WalltimeDrain on real workers: the evaluation in flight ends on its worker (it is not
    run again), a task submitted during the drain starts nowhere, and the workers leave. The
    drain's pause is no memory pause: nothing is reported."""
    caplog.set_level(logging.INFO, logger="neuroptimus.optimization")
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(2)
        first = sorted(client.scheduler_info()["workers"])[0]
        running = client.submit(_slow, 3.0, workers=[first], pure=False)
        deadline = time.monotonic() + 30
        while not client.processing()[first]:
            assert time.monotonic() < deadline, "the task did not start"
            time.sleep(0.05)
        pids = client.run(lambda: __import__("os").getpid())
        report_pauses(client)
        client.register_plugin(WalltimeDrain(0.0, poll_s=0.1))  # drain now
        time.sleep(0.5)
        late = client.submit(_slow, 0.0, pure=False)
        assert running.result(timeout=30) == pids[first]  # finished where it started
        del running
        deadline = time.monotonic() + 30
        while client.scheduler_info()["workers"]:
            assert time.monotonic() < deadline, "the drained workers did not leave"
            time.sleep(0.1)
        assert late.status == "pending"  # never started on a draining worker
        counts = client.run_on_scheduler(
            lambda dask_scheduler: dask_scheduler.tasks[late.key].suspicious
        )
        assert counts == 0
    assert not [r for r in caplog.records if "paused" in r.getMessage()]
