"""Prefect's state for one command-line run.

Without a configured Prefect (no ``PREFECT_API_URL`` or ``PREFECT_HOME``, in the environment
or the active Prefect profile), every flow run would go to the SQLite file under
``~/.prefect`` — one file shared by all the runs started on nodes that share a home directory
(NFS), which SQLite does not survive. So each command gets its own ``PREFECT_HOME`` in a
local temporary folder (per host and process) and its own temporary server, started in the
background while the command does its own setup; both are removed at the end.

A fresh database costs Prefect its ~100 migrations at every start; a migrated copy kept per
host, user and Prefect version in the temporary folder is copied instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from importlib.metadata import version
from pathlib import Path

from optimization.locks import process_alive

# Settings that say the user chose where Prefect keeps its state.
USER_SETTINGS = ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_API_DATABASE_CONNECTION_URL")
_PREFIX = "neuroptimus-prefect"


def _profile_settings() -> dict[str, str]:
    """The settings of the active Prefect profile (read without importing Prefect, whose
    settings are fixed at import)."""
    home = Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH", home / "profiles.toml")).expanduser()
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    settings = profiles.get("profiles", {}).get(active, {})
    return {str(k): str(v) for k, v in settings.items()} if isinstance(settings, dict) else {}


def user_configured() -> bool:
    """True when the environment or the active profile says where Prefect's state lives."""
    configured = {**_profile_settings(), **os.environ}
    return any(configured.get(name) for name in USER_SETTINGS)


def _folder() -> Path:
    """This user's folder in the local temporary directory."""
    folder = Path(tempfile.gettempdir()) / f"{_PREFIX}-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _template() -> Path:
    return _folder() / f"template-{version('prefect')}.db"


def _copy_database(source: Path, target: Path) -> None:
    """A consistent copy of an SQLite database, even while a server writes it."""
    origin, copy = sqlite3.connect(source), sqlite3.connect(target)
    try:
        origin.backup(copy)
    finally:
        origin.close()
        copy.close()


def _remove_abandoned(folder: Path) -> None:
    """Homes of killed commands of this host (the process is gone)."""
    host = socket.gethostname()
    for home in folder.glob(f"home-{host}-*"):
        pid = home.name.removeprefix(f"home-{host}-").split("-")[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(home, ignore_errors=True)
    return True


def server_app():
    """The app of a private server (a uvicorn factory): the API with the reduced set of
    background services Prefect runs for its own temporary servers, no UI."""
    from prefect.server.api.server import create_app

    return create_app(ephemeral=True, final=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateServer:
    """A temporary Prefect server on a private home: a uvicorn subprocess started (and
    awaited) by a background thread, so the command goes on with its own setup meanwhile."""

    def __init__(self, home: Path, seeded: bool, timeout_s: float) -> None:
        self.home, self.seeded, self.timeout_s = home, seeded, timeout_s
        self.port = _free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.process: subprocess.Popen | None = None
        self.log = home / "server.log"
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._settings: AbstractContextManager | None = None  # see wait()
        self._thread = threading.Thread(target=self._start, name="prefect-server", daemon=True)
        self._thread.start()

    def _launch(self) -> None:
        env = {**os.environ, "PREFECT_HOME": str(self.home), "PREFECT_UI_ENABLED": "0"}
        env.pop("PREFECT_API_URL", None)  # this process's client setting, not the server's
        root = Path(__file__).resolve().parents[1]
        command = [
            sys.executable, "-m", "uvicorn", "--app-dir", str(root), "--factory",
            "flows.prefect_state:server_app", "--host", "127.0.0.1", "--port", str(self.port),
            "--log-level", "error", "--lifespan", "on",
        ]  # fmt: skip
        with self._lock:
            if not self._stopping.is_set():  # its output goes to the log, shown if it fails
                with open(self.log, "ab") as log:
                    self.process = subprocess.Popen(
                        command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
                    )

    def _start(self) -> None:
        try:
            self._launch()
            deadline = time.monotonic() + self.timeout_s
            while not self._healthy():
                if self._stopping.is_set():
                    return
                if self.process.poll() == 3:  # uvicorn: the port was taken meanwhile
                    self.port = _free_port()
                    self.api_url = f"http://127.0.0.1:{self.port}/api"
                    self._launch()
                elif self.process.poll() is not None:
                    code = self.process.returncode
                    raise RuntimeError(f"the Prefect server exited (code {code}):{self._tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the Prefect server did not start in {self.timeout_s:g} s:{self._tail()}"
                    )
                time.sleep(0.1)
            if not self.seeded:
                self._save_template()
        except BaseException as error:  # reported by wait(), in the caller's thread
            self._error = error

    def _tail(self, lines: int = 20) -> str:
        try:
            return "\n" + "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    def _save_template(self) -> None:
        """Keep the freshly migrated database for the next commands (atomically)."""
        template = _template()
        partial = template.with_name(f"{template.name}.{os.getpid()}.partial")
        try:
            _copy_database(self.home / "prefect.db", partial)
            os.replace(partial, template)
        except (OSError, sqlite3.Error):
            partial.unlink(missing_ok=True)  # only a missed speed-up

    def wait(self) -> None:
        """Block until the server answers, then give this thread's Prefect the settings of a
        private server (``private_settings``) until ``stop``. The address is in
        ``PREFECT_API_URL`` from the start, so Prefect (whose settings are read at import) may
        be imported meanwhile."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        os.environ["PREFECT_API_URL"] = self.api_url  # the port may have changed meanwhile
        if self._settings is None:
            self._settings = private_settings(self.api_url)
            self._settings.__enter__()

    def stop(self) -> None:
        """Stop the server, also one still starting (a command that failed its checks)."""
        drain_prefect()
        if self._settings is not None:
            self._settings.__exit__(None, None, None)
            self._settings = None
        with self._lock:
            self._stopping.set()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._thread.join(timeout=5)


def private_settings(api_url: str) -> AbstractContextManager:
    """Prefect's settings for flows on a private server: its address (a Prefect imported
    before the port changed has the old one) and no flow-run heartbeats. Heartbeats let a
    lasting server find crashed runs later, which a server ending with the command never
    does, and each flow waited up to a second for its heartbeat thread as it finished."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    return temporary_settings(
        updates={PREFECT_API_URL: api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    )


def drain_prefect(timeout_s: float = 5) -> None:
    """Send Prefect's queued logs and events while the server still listens: at exit, with
    the server gone, Prefect would retry them for seconds."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (APILogWorker, EventsWorker):
        service.drain_all(timeout=timeout_s)


class _Configured:
    """Stands for the user's own Prefect: nothing to start or wait for."""

    home = None

    def wait(self) -> None:
        pass


@contextmanager
def private_prefect_state() -> Iterator[PrivateServer | _Configured]:
    """Give this command its own Prefect state unless the user configured one. Call
    ``wait()`` on the result before the first flow runs; the state is removed on exit."""
    if user_configured():
        yield _Configured()
        return
    folder = _folder()
    _remove_abandoned(folder)
    home = Path(tempfile.mkdtemp(prefix=f"home-{socket.gethostname()}-{os.getpid()}-", dir=folder))
    template = _template()
    seeded = template.is_file()
    if seeded:
        try:
            _copy_database(template, home / "prefect.db")
        except (OSError, sqlite3.Error):
            seeded = False
    profiles = Path(os.environ.get("PREFECT_PROFILES_PATH", "~/.prefect/profiles.toml"))
    names = ("PREFECT_HOME", "PREFECT_PROFILES_PATH", "PREFECT_API_URL")
    saved = {name: os.environ.get(name) for name in names}
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_PROFILES_PATH"] = str(profiles.expanduser())  # the user's other settings
    if seeded:  # the copied database has Prefect's blocks registered already
        saved["PREFECT_API_BLOCKS_REGISTER_ON_START"] = os.environ.get(
            "PREFECT_API_BLOCKS_REGISTER_ON_START"
        )
        os.environ.setdefault("PREFECT_API_BLOCKS_REGISTER_ON_START", "false")
    timeout_s = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", 180))
    server = PrivateServer(home, seeded, timeout_s)
    # known before the server answers: the command may import Prefect while it starts
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(home, ignore_errors=True)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
