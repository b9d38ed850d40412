"""`neuroptimus serve` as a subprocess of a test: a Prefect server (SQLite in its own
PREFECT_HOME), the deployments of deployments/prefect.yaml and a process worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Served:
    """A running `neuroptimus serve` subprocess and how to reach it."""

    def __init__(self, home: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/api"
        self.log = home / "serve.log"
        env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "1",  # the worker picks a run up within a second
        }
        env.pop("PREFECT_API_URL", None)
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "neuroptimus.flows.cli", "serve", "--port", str(self.port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def output(self) -> str:
        return self.log.read_text()

    def wait_ready(self, timeout_s: float = 240) -> None:
        deadline = time.monotonic() + timeout_s
        while "Prefect UI:" not in self.output():
            assert self.process.poll() is None, f"serve exited:\n{self.output()}"
            assert time.monotonic() < deadline, (
                f"serve not ready in {timeout_s} s:\n{self.output()}"
            )
            time.sleep(0.5)

    @contextmanager
    def api(self):
        """A Prefect client of this server (settings scoped to the block)."""
        with temporary_settings({PREFECT_API_URL: self.api_url}):
            with get_client(sync_client=True) as client:
                yield client

    def trigger(self, name: str, parameters: dict, timeout: float = 600):
        """A run of deployment ``name`` as the UI's form submits it; waits up to ``timeout``
        seconds for it to end (0: returns at once)."""
        with temporary_settings({PREFECT_API_URL: self.api_url}):
            return run_deployment(name, parameters=parameters, timeout=timeout, poll_interval=1)

    def interrupt(self, timeout_s: float = 60) -> int:
        """Ctrl-C to serve alone (its children must be stopped by serve itself)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=timeout_s)

    def kill_group(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)


@contextmanager
def serving(home: Path) -> Iterator[Served]:
    """`neuroptimus serve` running until the block ends (then Ctrl-C, or kill if stuck)."""
    served = Served(home)
    try:
        served.wait_ready()
        yield served
    finally:
        try:
            served.interrupt()
        except subprocess.TimeoutExpired:
            served.kill_group()  # only ever our own session's processes
