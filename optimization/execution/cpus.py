"""How many CPUs this process may use: the default number of local worker processes.

``os.cpu_count()`` is the node's core count; inside a batch job, a container or under
``taskset`` a process gets fewer, and a worker per core of the node would oversubscribe
the ones it has (NEURON simulations are CPU-bound, one per worker process)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

# CPUs a batch system gives the job on this node, most specific first: the task's own
# (SLURM -c), the job's on this node, and the other schedulers' equivalents.
_JOB_VARIABLES = (
    "SLURM_CPUS_PER_TASK",
    "SLURM_CPUS_ON_NODE",
    "SLURM_JOB_CPUS_PER_NODE",  # "8(x2),4" by node: the first is this one's in a 1-node job
    "PBS_NUM_PPN",  # Torque
    "NCPUS",  # PBS Pro
    "NSLOTS",  # SGE
    "LSB_DJOB_NUMPROC",  # LSF
)


def usable_cpus(
    environ: Mapping[str, str] | None = None,
    cgroup_root: Path = Path("/sys/fs/cgroup"),
    membership: str | None = None,
) -> int:
    """The fewest of: the CPUs this process's affinity allows, the CPUs its batch job was
    given on this node (``environ``, default ``os.environ``), and its cgroup's CPU quota (a
    container's ``--cpus``; ``membership`` is /proc/self/cgroup's text). At least 1."""
    if membership is None:
        try:
            membership = Path("/proc/self/cgroup").read_text()
        except OSError:
            membership = ""
    counts = [_affinity(), _job_cpus(os.environ if environ is None else environ)]
    counts.append(_cgroup_quota(cgroup_root, membership))
    return max(1, min(count for count in counts if count is not None))


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _job_cpus(environ: Mapping[str, str]) -> int | None:
    for variable in _JOB_VARIABLES:
        match = re.match(r"\s*(\d+)", environ.get(variable, ""))
        if match and int(match.group(1)) > 0:
            return int(match.group(1))
    return None


def _cgroup_quota(root: Path, membership: str) -> int | None:
    """CPUs the cgroup quota of this process allows (rounded up), or None without a quota:
    cgroup v2's ``cpu.max`` up the process's own hierarchy, or v1's ``cpu.cfs_quota_us``."""
    quotas = []
    for line in membership.splitlines():
        if line.count(":") < 2:
            continue
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2: every level up to the root may limit
            folder = root / path.lstrip("/")
            while True:
                quotas.append(_read_quota(folder / "cpu.max", None))
                if folder == root or root not in folder.parents:
                    break
                folder = folder.parent
        elif "cpu" in controllers.split(","):
            for folder in (root / "cpu" / path.lstrip("/"), root / "cpu"):
                quotas.append(
                    _read_quota(folder / "cpu.cfs_quota_us", folder / "cpu.cfs_period_us")
                )
    quotas = [quota for quota in quotas if quota is not None]
    return min(quotas) if quotas else None


def _read_quota(quota_file: Path, period_file: Path | None) -> int | None:
    try:
        text = quota_file.read_text().split()
        if period_file is not None:
            text = [text[0], period_file.read_text().strip()]
        quota, period = text[0], float(text[1])
    except (OSError, IndexError, ValueError):
        return None
    if quota in ("max", "-1") or period <= 0:
        return None
    return max(1, math.ceil(float(quota) / period))
