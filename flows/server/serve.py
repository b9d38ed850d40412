"""`neuroptimus serve`: supervise a local Prefect server, the deployments and a process
worker for a workstation (the command line itself is in ``neuroptimus.flows.cli``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.workers.process import ProcessWorker

import neuroptimus
from neuroptimus.optimization.errors import InfrastructureError

WORK_POOL = "neuroptimus"  # the process work pool named in deployments/prefect.yaml


class ServeError(InfrastructureError, RuntimeError):
    """serve cannot start or goes down; ``code`` is the exit code to give (2: a mistake in
    how it was called, 1: a part failed)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def wait_healthy(api_url: str, server: subprocess.Popen, timeout_s: float = 180) -> None:
    """Block until the server answers /health; fail if it exits or takes too long."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ServeError(f"the Prefect server exited (code {server.returncode}); see above")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise ServeError(f"the Prefect server did not answer at {api_url} within {timeout_s:.0f} s")


def ensure_work_pool(api_url: str) -> None:
    pool = WorkPoolCreate(
        name=WORK_POOL,
        type="process",
        base_job_template=ProcessWorker.get_default_base_job_template(),
        description="Neuroptimus flow runs, each a subprocess of the worker",
    )
    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        try:
            client.create_work_pool(pool)
        except ObjectAlreadyExists:
            pass


def stop(process: subprocess.Popen, name: str, say: Callable[[str], None]) -> None:
    """Let a child stop on the terminal's Ctrl-C, else ask it to (SIGTERM), then insist."""
    for send, wait_s in ((None, 3), (signal.SIGTERM, 20), (signal.SIGKILL, None)):
        if process.poll() is not None:
            return
        if send == signal.SIGKILL:
            say(f"{name} did not stop; killing it")
        if send is not None:
            process.send_signal(send)
        try:
            process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            pass


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def serve(host: str, port: int, limit: int, say: Callable[[str], None] = print) -> None:
    """Run a Prefect server (SQLite in PREFECT_HOME), deploy deployments/prefect.yaml and run
    a process worker until Ctrl-C or SIGTERM (or until one of them exits: ServeError)."""
    root = Path(neuroptimus.__file__).resolve().parents[1]  # the checkout (or the wheel's site)
    prefect_file = root / "deployments" / "prefect.yaml"
    if not prefect_file.is_file():
        raise ServeError(
            f"{prefect_file} not found: serve runs from a source checkout of neuroptimus", 2
        )
    if port_in_use(host, port):
        raise ServeError(
            f"port {port} on {host} is in use (another server?); choose one with --port", 2
        )
    api_url = f"http://{host}:{port}/api"
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    # the entrypoints are module paths: deploy and the flow runs import this checkout's package
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    prefect = [sys.executable, "-m", "prefect"]
    # Ctrl-C (even when started in the background) and SIGTERM stop everything.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    children: list[tuple[str, subprocess.Popen]] = []
    try:
        say(f"starting a Prefect server on {host}:{port} …")
        server = subprocess.Popen(
            [*prefect, "server", "start", "--host", host, "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        children.append(("the server", server))
        wait_healthy(api_url, server)
        ensure_work_pool(api_url)
        deploy = subprocess.run(
            [*prefect, "--no-prompt", "deploy", "--all", "--prefect-file", str(prefect_file)],
            cwd=root, env=env, capture_output=True, text=True,
        )  # fmt: skip
        if deploy.returncode:
            say(deploy.stdout + deploy.stderr)
            raise ServeError("prefect deploy failed (its output is above)")
        # Flow runs log INFO to the UI; the worker looks for new runs every few seconds.
        worker_env = {**env, "PREFECT_LOGGING_LEVEL": "INFO"}
        worker_env.setdefault("PREFECT_WORKER_QUERY_SECONDS", "5")
        worker = subprocess.Popen(
            [*prefect, "worker", "start", "--pool", WORK_POOL, "--type", "process",
             "--limit", str(limit)],
            cwd=root, env=worker_env,
        )  # fmt: skip
        children.append(("the worker", worker))
        say(f"\nPrefect UI: http://{host}:{port}")
        say(
            "deployments: neuroptimus-run/run, neuroptimus-resume/resume, "
            "benchmark-algorithms/benchmark "
            f"(work pool {WORK_POOL}; runs write into {root / 'runs'})\n"
            "Ctrl-C stops the worker and the server."
        )
        while all(process.poll() is None for _, process in children):
            time.sleep(1)
        name, process = next((n, p) for n, p in children if p.poll() is not None)
        raise ServeError(f"{name} exited (code {process.returncode}); stopping")
    except KeyboardInterrupt:
        say("\nstopping …")
    finally:
        for name, process in reversed(children):
            stop(process, name, say)
