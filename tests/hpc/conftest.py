"""Fixtures for the cluster tests: a real single-node SLURM (skipped without Debian's slurm-wlm
and munge packages) and the fault-free UC1 run every fault test is compared with."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import slurm_daemons
from hpc_runs import uc1_spec


@pytest.fixture(scope="session")
def slurm():
    """A single-node SLURM of its own (munged, slurmctld, slurmd) for the whole session;
    ``SLURM_CONF`` points this process's sbatch/squeue/scancel at it."""
    missing = slurm_daemons.missing_programs()
    if missing:
        pytest.skip(
            f"SLURM tests need Debian's slurm-wlm and munge packages ({', '.join(missing)} "
            "not found): apt-get install slurm-wlm munge"
        )
    if os.geteuid() != 0:
        pytest.skip("the test SLURM's daemons need root")
    # not under pytest's 0700 tmp folders: munged runs as the munge user and must reach it
    folder = Path(tempfile.mkdtemp(prefix="neuroptimus-slurm-"))
    cluster = slurm_daemons.start(folder)
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = cluster.env["SLURM_CONF"]
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


@pytest.fixture(scope="session")
def reference(tmp_path_factory, prefect_harness):
    """The fault-free UC1 run on a LocalCluster: what every faulty run must reproduce."""
    from neuroptimus.flows.run import run_flow
    from neuroptimus.optimization.execution.cluster import ClusterConfig

    path = tmp_path_factory.mktemp("reference") / "reference.zarr"
    run_flow(uc1_spec(), str(path), ClusterConfig(workers=2), report=False)
    return path
