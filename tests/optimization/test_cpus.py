"""The default worker count follows the CPUs the process may use: its real affinity (set with
os.sched_setaffinity in a child process), a batch job's allocation, a cgroup CPU quota."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from neuroptimus.optimization.execution.cpus import _job_cpus, usable_cpus

ROOT = Path(__file__).resolve().parents[2]
NO_JOB: dict[str, str] = {}
affinity = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux only")
# a limit to one CPU shows only where the process has more
several = pytest.mark.skipif(
    usable_cpus(NO_JOB) < 2, reason="this process may use one CPU: a limit to one cannot show"
)


def _in_child(code: str, cpus: set[int]) -> str:
    """Run ``code`` in a fresh Python whose affinity is ``cpus`` (and no batch job)."""
    script = f"import os\nos.sched_setaffinity(0, {sorted(cpus)!r})\n" + textwrap.dedent(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PBS_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@affinity
@several
def test_affinity_of_one_cpu_gives_one_worker():
    mine = sorted(os.sched_getaffinity(0))
    code = (
        "from neuroptimus.optimization.execution.cpus import usable_cpus\n"
        "print(usable_cpus(membership=''))"
    )
    assert _in_child(code, {mine[0]}) == "1"
    assert _in_child(code, set(mine)) == str(len(mine))


@affinity
@several
def test_local_cluster_starts_one_worker_per_usable_cpu():
    """make_cluster's default, end to end: a process bound to one CPU of several starts one
    worker (os.cpu_count() would still say all of them)."""
    code = """
        from neuroptimus.optimization.execution.cluster import ClusterConfig, make_cluster
        if __name__ == "__main__":
            with make_cluster(ClusterConfig()) as cluster:
                print(len(cluster.workers), os.cpu_count())
    """
    workers, cores = map(int, _in_child(code, {sorted(os.sched_getaffinity(0))[0]}).split())
    assert workers == 1
    assert cores == os.cpu_count()


@several
def test_batch_job_allocation_limits_the_count():
    assert usable_cpus({"SLURM_CPUS_PER_TASK": "1", "SLURM_CPUS_ON_NODE": "64"}) == 1
    assert usable_cpus({"SLURM_JOB_CPUS_PER_NODE": "1(x4),2"}) == 1
    assert usable_cpus({"PBS_NUM_PPN": "1"}) == 1
    assert usable_cpus({"NCPUS": "1"}) == 1
    # an allocation larger than the affinity allows does not raise the count
    assert usable_cpus({"SLURM_CPUS_ON_NODE": "4096"}, membership="") == usable_cpus(
        NO_JOB, membership=""
    )


def test_job_variables_by_precedence():
    assert _job_cpus({"SLURM_CPUS_PER_TASK": "4", "SLURM_CPUS_ON_NODE": "16"}) == 4
    assert _job_cpus({"SLURM_CPUS_ON_NODE": "16", "SLURM_JOB_CPUS_PER_NODE": "8"}) == 16
    assert _job_cpus({"SLURM_JOB_CPUS_PER_NODE": "8(x2),4"}) == 8
    assert _job_cpus({"PBS_NUM_PPN": "12"}) == 12
    assert _job_cpus({"NSLOTS": "6", "LSB_DJOB_NUMPROC": "3"}) == 6
    assert _job_cpus({"SLURM_CPUS_PER_TASK": "", "NCPUS": "0"}) is None
    assert _job_cpus(NO_JOB) is None


@several
def test_cgroup_quota_limits_the_count(tmp_path):
    # cgroup v2: the tightest cpu.max from the process's cgroup up to the root
    (tmp_path / "job" / "step").mkdir(parents=True)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "job" / "cpu.max").write_text("50000 100000\n")  # half a CPU: one worker
    (tmp_path / "job" / "step" / "cpu.max").write_text("max 100000\n")
    assert usable_cpus(NO_JOB, tmp_path, "0::/job/step\n") == 1
    (tmp_path / "job" / "cpu.max").write_text("max 100000\n")
    assert usable_cpus(NO_JOB, tmp_path, "0::/job/step\n") == usable_cpus(NO_JOB, membership="")
    # cgroup v1: cpu.cfs_quota_us / cpu.cfs_period_us of the cpu controller
    v1 = tmp_path / "cpu" / "docker" / "abc"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert usable_cpus(NO_JOB, tmp_path, "4:cpu,cpuacct:/docker/abc\n") == 1
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert usable_cpus(NO_JOB, tmp_path, "4:cpu,cpuacct:/docker/abc\n") == usable_cpus(
        NO_JOB, membership=""
    )
