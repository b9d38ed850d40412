"""The nanny's death records on a real LocalCluster: each death is filed under the key the
evaluator derives from the scheduler's record of the lost worker (its nanny and pid), whenever
the nanny looks: late, once the replacement has joined, or while the nanny has not yet learnt
the dead process's address.

The recorder's looks are driven by hand (its own timer set far off), so that the test decides
when a look comes."""

from __future__ import annotations

import os
import signal

from distributed import Client, LocalCluster
from hpc_runs import wait_until

from neuroptimus.optimization.execution.worker_deaths import DEATHS, DeathRecorder, death_key


def _scheduler_keys(client: Client) -> dict[str, str]:
    """Worker address → the death key of the worker, from the scheduler's WorkerState (as the
    evaluator gets it with a KilledWorker)."""
    return client.run_on_scheduler(
        lambda dask_scheduler: {
            address: death_key(state.nanny, state.pid)
            for address, state in dask_scheduler.workers.items()
        }
    )


def test_each_death_is_filed_under_the_key_the_scheduler_gives_the_dead_worker():
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        client.register_plugin(DeathRecorder(interval_s=3600))
        (nanny,) = cluster.workers.values()
        recorder = nanny.plugins[DeathRecorder.name]

        def look() -> None:
            cluster.sync(recorder._check, nanny)

        def deaths() -> dict:
            return client.get_metadata([DEATHS], default={})

        def joined(before: set[str]) -> dict[str, str]:
            """The scheduler's keys once a worker other than ``before`` has joined."""
            return wait_until(
                lambda: (keys := _scheduler_keys(client)) and set(keys) - before and keys,
                120, "the replacement worker",
            )  # fmt: skip

        ((first, first_key),) = _scheduler_keys(client).items()
        look()  # watches the running process
        os.kill(nanny.process.process.pid, signal.SIGKILL)
        ((second, second_key),) = joined({first}).items()
        look()  # late: the nanny's worker is the replacement by now
        assert deaths() == {first_key: deaths()[first_key]}
        assert deaths()[first_key]["exitcode"] == -signal.SIGKILL
        assert first_key != second_key

        # killed as soon as the scheduler has it: the nanny may not know its address yet
        look()  # watches the replacement
        process = nanny.process.process
        os.kill(process.pid, signal.SIGABRT)
        wait_until(lambda: process.exitcode is not None, 60, "the worker's exit")
        look()
        assert set(deaths()) == {first_key, second_key}
        assert deaths()[second_key]["exitcode"] == -signal.SIGABRT
        joined({first, second})
