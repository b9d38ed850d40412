"""Cluster profiles: the shipped ones load, mistakes are named with file and field, and every
dask-jobqueue class gets single-threaded workers run by this Python (no batch system needed:
only the job scripts are built)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neuroptimus.flows import cluster_profiles
from neuroptimus.flows.cluster_profiles import load_profile, profile_folders
from neuroptimus.optimization.execution.cluster import ClusterConfig, ClusterError, job_script

PROFILES = Path(__file__).resolve().parents[2] / "deployments" / "clusters"


@pytest.mark.parametrize("name", ["local", "slurm", "pbs", "slurm-long"])
def test_shipped_profiles_load(name):
    config = load_profile(name)
    assert config == ClusterConfig.from_file(PROFILES / f"{name}.yaml")
    if name == "local":
        assert config == ClusterConfig()  # the built-in default is the local profile
    else:
        assert config.options["cores"] and config.options["memory"]
        assert config.adapt_maximum


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return path


def test_unknown_setting_names_the_file_and_the_field(tmp_path):
    path = _write(tmp_path, "cluster_class: distributed.LocalCluster\nworkerz: 3\n")
    with pytest.raises(ClusterError, match=rf"{re.escape(str(path))}: workerz: unknown setting"):
        load_profile(path)


def test_unknown_option_of_the_cluster_class_is_named_with_a_suggestion(tmp_path):
    path = _write(
        tmp_path,
        "cluster_class: dask_jobqueue.SLURMCluster\n"
        "options: {cores: 4, memory: 8GB, walltme: '01:00:00'}\n",
    )
    with pytest.raises(ClusterError) as error:
        load_profile(path)
    message = str(error.value)
    assert str(path) in message and "options.walltme" in message and "walltime" in message


def test_wrong_values_and_multithreaded_workers_are_refused(tmp_path):
    path = _write(tmp_path, "workers: 0\n")
    with pytest.raises(ClusterError, match="workers: Input should be greater than or equal to 1"):
        load_profile(path)
    path = _write(
        tmp_path,
        "cluster_class: dask_jobqueue.PBSCluster\noptions: {cores: 8, memory: 8GB, processes: 2}\n",
    )
    with pytest.raises(ClusterError, match="options.processes: .*NEURON needs processes = cores"):
        load_profile(path)
    with pytest.raises(ClusterError, match="needs cores and memory"):
        ClusterConfig(cluster_class="dask_jobqueue.SLURMCluster").check()
    with pytest.raises(ClusterError, match="cannot import 'dask_jobqueue.SlurmCluster'"):
        ClusterConfig(cluster_class="dask_jobqueue.SlurmCluster").check()


def test_local_is_built_in_where_no_profile_files_are(tmp_path, monkeypatch):
    """An installation without the repository's profile folder still knows ``local``."""
    monkeypatch.setattr(cluster_profiles, "REPOSITORY_PROFILES", tmp_path / "none")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEUROPTIMUS_CLUSTER_PROFILES", raising=False)
    assert load_profile("local") == ClusterConfig()
    with pytest.raises(ClusterError, match="no cluster profile named 'slurm'"):
        load_profile("slurm")


def test_unknown_profile_name_lists_the_known_ones():
    with pytest.raises(ClusterError, match=r"no cluster profile named 'nowhere' \(known: .*slurm"):
        load_profile("nowhere")
    assert PROFILES in profile_folders()


@pytest.mark.parametrize(
    "cluster_class, extra",
    [
        ("SLURMCluster", {}),
        ("PBSCluster", {}),
        ("SGECluster", {}),
        ("LSFCluster", {}),
        ("HTCondorCluster", {"disk": "1GB"}),
    ],
)
def test_jobqueue_workers_are_single_threaded_and_use_this_python(cluster_class, extra):
    config = ClusterConfig(
        cluster_class=f"dask_jobqueue.{cluster_class}",
        options={"cores": 4, "memory": "8GB", "job_script_prologue": ["module load neuron"]}
        | extra,
    )
    script = job_script(config)
    command = next(line for line in script.splitlines() if "distributed.cli.dask_worker" in line)
    assert f"{sys.executable} -m distributed.cli.dask_worker" in command
    assert "--nthreads 1 " in command and "--nworkers 4 " in command
    assert "--memory-limit 1.86GiB" in command  # 8 GB shared by 4 workers
    assert "--nanny" in command  # the hang watchdog lives in the nanny
    if cluster_class != "HTCondorCluster":  # HTCondor has no shell prologue in the script
        assert "module load neuron" in script
        assert "export DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False" in script
        # neither spilling nor pausing: the nanny restarts a worker past 95 % of its limit
        for name, value in [("SPILL", False), ("PAUSE", False), ("TERMINATE", 0.95)]:
            assert f"export DASK_DISTRIBUTED__WORKER__MEMORY__{name}={value}\n" in script


def test_job_script_of_the_shipped_slurm_profile(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the profile's log_directory is made where the run starts
    script = job_script(load_profile("slurm"))
    for line in ("#SBATCH -p normal", "#SBATCH -A my-project", "#SBATCH --cpus-per-task=32",
                 "#SBATCH -t 04:00:00", "module load neuron"):  # fmt: skip
        assert line in script
    assert "--nthreads 1 --memory-limit 1.86GiB --nworkers 32" in script
    assert (tmp_path / "dask-logs").is_dir()
    with pytest.raises(ClusterError, match="only a batch-queue cluster"):
        job_script(ClusterConfig())


def test_cli_refuses_a_bad_profile_before_starting_anything(tmp_path):
    from neuroptimus.flows.cli import app

    path = _write(tmp_path, "cluster_class: distributed.LocalCluster\nqueue: normal\n")
    result = CliRunner().invoke(app, ["run", "hh", "--cluster", str(path)])
    assert result.exit_code == 2
    assert f"{path}: queue: unknown setting" in result.output.replace("\n", "")
    result = CliRunner().invoke(app, ["resume", str(tmp_path / "x.zarr"), "--cluster", "nowhere"])
    assert result.exit_code == 2 and "no cluster profile named 'nowhere'" in result.output


def test_cli_help_shows_the_cluster_option():
    out = subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", "resume", "--help"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "--cluster" in out


class _Client:
    """Just what DaskEvaluator asks of a client when it sizes the chunks."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def nthreads(self) -> dict[str, int]:
        return {f"w{i}": 1 for i in range(self.workers)}

    def register_plugin(self, plugin) -> None:
        pass

    def subscribe_topic(self, topic, handler) -> None:
        pass

    def run_on_scheduler(self, function) -> None:
        pass

    def get_events(self, topic) -> tuple:
        return ()

    def scheduler_info(self) -> dict:
        return {"workers": self.nthreads()}


@pytest.mark.parametrize(
    "workers, n, seconds, chunks",
    [
        (16, 1000, None, 64),  # first generation: chunks_per_worker per worker
        (16, 1000, 0.0002, 15),  # a cheap model (0.2 s in all): √(0.2 s / 1 ms) chunks
        (16, 1000, 0.03, 64),  # UC1: 30 s of work, 64 chunks of 0.47 s
        (16, 50, 0.03, 16),  # a small population: one chunk per worker
        (16, 6, 0.03, 6),  # never more chunks than individuals
        (1024, 1000, 0.03, 174),  # 1,024 workers, 30 s of work: √(30 s / 1 ms) chunks
        (1024, 4000, 5.0, 1954),  # 20,000 s of work: chunks of ≥ 10 ms × 1,024 workers
    ],
)
def test_chunks_follow_the_work_and_spare_the_scheduler(workers, n, seconds, chunks):
    from types import SimpleNamespace

    from neuroptimus.optimization.execution.dask_evaluator import DaskEvaluator

    problem = SimpleNamespace(
        key="0123456789abcdef",
        identity="fedcba9876543210",
        spec=SimpleNamespace(evaluation=SimpleNamespace(timeout_s=600.0)),
    )
    evaluator = DaskEvaluator(_Client(workers), problem, config=ClusterConfig())
    evaluator._seconds = seconds
    assert evaluator._chunks(n) == chunks


def test_a_local_cluster_takes_no_fixed_port(tmp_path):
    """The scheduler's HTTP server gets a free port: with port 8787 taken (another cluster, a
    notebook's dashboard) a run prints no "port in use" warning into its one-line errors."""
    script = tmp_path / "cluster.py"
    script.write_text(
        "import socket, warnings\n"
        "from neuroptimus.optimization.execution.cluster import ClusterConfig, make_cluster\n"
        "if __name__ == '__main__':\n"
        "    taken = socket.socket()\n"
        "    try:\n"
        "        taken.bind(('127.0.0.1', 8787)); taken.listen()\n"
        "    except OSError:\n"
        "        pass  # already taken by someone else: the same situation\n"
        "    warnings.simplefilter('error')\n"
        "    cluster = make_cluster(ClusterConfig(workers=1))\n"
        "    print(cluster.scheduler.http_server.port)\n"
        "    cluster.close()\n"
        "    taken.close()\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "8787" not in result.stderr and int(result.stdout) != 8787
