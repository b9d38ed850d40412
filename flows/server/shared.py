"""A Prefect server shared by one user's commands on one host, kept warm between them.

Prefect's server needs ~3 s of CPU to start (its imports and app). The first command starts
one in the background; the commands after it, also those running at once, use it; it leaves
by itself once no command has used it for ``NEUROPTIMUS_PREFECT_IDLE`` seconds (default 600;
0: it stops with the last command using it). One server per host, user, Prefect version,
Python and project, in the user's folder of the local temporary directory:

    server-HOST-KEY/lock            taken to start or retire a server
                                    (neuroptimus.optimization.locks)
    server-HOST-KEY/server.json     the live server: pid, port, home
    server-HOST-KEY/clients/PID/    a command using it: its holder line and its PREFECT_HOME
    server-HOST-KEY/home-TOKEN/     a server's PREFECT_HOME (database, log), gone with it

A database file is written by its server only, on a local disk: commands on nodes that share
a home directory never share one SQLite file. A fresh database costs Prefect its ~100
migrations; a migrated copy kept per Prefect version is copied instead.
"""

from __future__ import annotations

import atexit
import gc
import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from importlib.metadata import version
from pathlib import Path

import neuroptimus
from neuroptimus.optimization.locks import exclusive_lock, holder_gone, holder_token, process_alive

IDLE = "NEUROPTIMUS_PREFECT_IDLE"
DEFAULT_IDLE_S = 600.0
_FOLDER = "NEUROPTIMUS_PREFECT_FOLDER"  # in a server's environment: its server-… folder
# the folder holding the neuroptimus package (the project root in a clone, site-packages in a
# wheel): the server imports it from there
_ROOT = Path(neuroptimus.__file__).resolve().parents[1]
_PREFIX = "neuroptimus-prefect"


def idle_seconds() -> float:
    """Seconds a server stays without commands (``NEUROPTIMUS_PREFECT_IDLE``); a value that
    is no such number is reported and the default taken (the command has work to do)."""
    text = os.environ.get(IDLE, "").strip()
    try:
        value = float(text) if text else DEFAULT_IDLE_S
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        print(
            f"warning: {IDLE}={text!r} is not a number of seconds (0 or more); "
            f"the Prefect server stays {DEFAULT_IDLE_S:g} s after the last command",
            file=sys.stderr,
        )
        return DEFAULT_IDLE_S
    return value


def user_folder() -> Path:
    """This user's folder in the local temporary directory."""
    folder = Path(tempfile.gettempdir()) / f"{_PREFIX}-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def server_folder() -> Path:
    """The folder of this host's server for this Prefect, Python and project."""
    identity = f"{version('prefect')}\n{sys.prefix}\n{_ROOT}".encode()  # sys.prefix: the venv
    key = hashlib.sha256(identity).hexdigest()[:12]
    folder = user_folder() / f"server-{socket.gethostname()}-{key}"
    (folder / "clients").mkdir(parents=True, exist_ok=True)
    return folder


def _template() -> Path:
    return user_folder() / f"template-{version('prefect')}.db"


def _copy_database(source: Path, target: Path) -> None:
    """A consistent copy of an SQLite database, even while a server writes it."""
    origin, copy = sqlite3.connect(source), sqlite3.connect(target)
    try:
        origin.backup(copy)
    finally:
        origin.close()
        copy.close()


def _read_state(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "server.json").read_text())
    except (OSError, ValueError):
        return None


def _write_state(folder: Path, state: dict) -> None:
    partial = folder / f"server.json.{os.getpid()}"
    partial.write_text(json.dumps(state))
    os.replace(partial, folder / "server.json")


def _register(clients: Path) -> Path:
    """This command's marker, clients/PID with its holder line, appearing whole (built under
    a hidden name, then renamed): a command killed while registering leaves no marker that
    looks alive forever."""
    marker = clients / str(os.getpid())
    partial = clients / f".{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)  # a dead process's, whose pid this one reuses
    partial.mkdir()
    (partial / "holder").write_text(holder_token())
    shutil.rmtree(marker, ignore_errors=True)  # ditto
    partial.rename(marker)
    return marker


def _marker_gone(client: Path) -> bool:
    """Whether a marker's command has ended: the process its name gives has (also for a
    hidden partial one, or one a killed command left without a holder line), or its holder
    line says so (the pid taken since by another process)."""
    pid = client.name.strip(".").split(".")[0]
    if pid.isdigit() and not process_alive(int(pid)):
        return True
    try:
        return holder_gone((client / "holder").read_text())
    except OSError:  # being registered or removed right now
        return False


def live_clients(folder: Path) -> list[Path]:
    """The commands using the server; those that ended without saying so are removed."""
    live = []
    for client in (folder / "clients").iterdir():
        if _marker_gone(client):
            shutil.rmtree(client, ignore_errors=True)
        elif not client.name.startswith("."):
            live.append(client)
    return live


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _kill(pid: int, child: subprocess.Popen | None) -> None:
    """End a server at once (its database goes with it): this command's child or another's."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if child is not None:
        child.wait()
        return
    deadline = time.monotonic() + 10
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _retire(folder: Path, state: dict, child: subprocess.Popen | None) -> None:
    """End the server ``state`` names and remove its state and home (with the lock held);
    ``child``: the process, if this command started it."""
    _kill(state["pid"], child if child is not None and child.pid == state["pid"] else None)
    (folder / "server.json").unlink(missing_ok=True)
    shutil.rmtree(state["home"], ignore_errors=True)


def _remove_abandoned_homes(folder: Path) -> None:
    """Homes of servers killed without leaving (their pid file names a dead process)."""
    for home in folder.glob("home-*"):
        try:
            holder = (home / "holder").read_text()
        except OSError:  # a server that died before it started: after a while
            if time.time() - home.stat().st_mtime > 600:
                shutil.rmtree(home, ignore_errors=True)
            continue
        if holder_gone(holder):
            shutil.rmtree(home, ignore_errors=True)


class SharedServer:
    """This command's use of the shared server. Created: the command is registered and a
    server found or launched (milliseconds); the server's answer is awaited in a background
    thread, so the command goes on with its own setup meanwhile."""

    def __init__(self, timeout_s: float, idle_s: float) -> None:
        self.timeout_s, self.idle_s = timeout_s, idle_s
        self.folder = server_folder()
        self.client_home = _register(self.folder / "clients")
        self._child: subprocess.Popen | None = None  # a server this command launched
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self.state = self._find_or_launch()
        self.warm = not self._launched(self.state)  # found running: its imports are done
        self._thread = threading.Thread(target=self._await, name="prefect-server", daemon=True)
        self._thread.start()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.state['port']}/api"

    def _find_or_launch(self, broken: dict | None = None) -> dict:
        with exclusive_lock(self.folder / "lock", wait=True, timeout_s=self.timeout_s):
            state = _read_state(self.folder)
            if state is not None and state == broken:  # died or never answered
                _retire(self.folder, state, self._child)
                state = None
            if state is None or not process_alive(state["pid"]):
                state = self._launch()
            return state

    def _launch(self) -> dict:
        """Start a server on a fresh home (a copy of the migrated template if there is one)
        in a session of its own, so that the terminal's Ctrl-C leaves it to its users."""
        home = self.folder / f"home-{uuid.uuid4().hex[:12]}"
        _remove_abandoned_homes(self.folder)
        home.mkdir()
        seeded = _template().is_file()
        if seeded:
            try:
                _copy_database(_template(), home / "prefect.db")
            except (OSError, sqlite3.Error):
                seeded = False
        env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_UI_ENABLED": "0",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "0",  # a server of one user's commands
            # nothing reads its events back (no UI, no automations): neither stored, vacuumed
            # nor streamed out, nor turned into task-run rows (whose batched writes held
            # SQLite's lock for ~2 s, stalling the next subflow's start)
            "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "0",
            "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED": "0",
            "PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED": "0",
            "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "0",
            "PREFECT_SERVER_EVENTS_STREAM_OUT_ENABLED": "0",
            _FOLDER: str(self.folder),
            IDLE: str(self.idle_s),
        }
        env.pop("PREFECT_API_URL", None)  # a client's setting, not the server's
        if seeded:  # migrated and its blocks registered: no Alembic scripts to load
            env["PREFECT_API_DATABASE_MIGRATE_ON_START"] = "0"
            env["PREFECT_API_BLOCKS_REGISTER_ON_START"] = "0"
        port = _free_port()
        command = [
            sys.executable, "-m", "uvicorn", "--app-dir", str(_ROOT), "--factory",
            "neuroptimus.flows.server.shared:server_app", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "error", "--lifespan", "on",
        ]  # fmt: skip
        with open(home / "server.log", "ab") as log:  # shown if it fails
            self._child = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
            )  # fmt: skip
        state = {"pid": self._child.pid, "port": port, "home": str(home), "seeded": seeded}
        _write_state(self.folder, state)
        return state

    def _launched(self, state: dict) -> bool:
        return self._child is not None and self._child.pid == state["pid"]

    def _await(self) -> None:
        """Wait for the server's answer; one that dies or never answers (its port taken
        meanwhile, say) is replaced once."""
        try:
            for attempt in range(2):
                if self._answers(self.state):
                    if self._launched(self.state) and not self.state["seeded"]:
                        self._save_template()
                    return
                if self._stopping.is_set():
                    return
                if attempt == 0:
                    self.state = self._find_or_launch(broken=self.state)
            raise RuntimeError(f"the Prefect server did not start:{self._tail()}")
        except BaseException as error:  # reported by wait(), in the caller's thread
            self._error = error

    def _answers(self, state: dict) -> bool:
        deadline = time.monotonic() + self.timeout_s
        api_url = f"http://127.0.0.1:{state['port']}/api"
        while not self._stopping.is_set():
            if _healthy(api_url):
                return True
            if self._launched(state) and self._child.poll() is not None:
                return False  # exited (uvicorn: 3 if its port was taken meanwhile)
            if not process_alive(state["pid"]):
                return False
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the Prefect server did not start in {self.timeout_s:g} s:{self._tail()}"
                )
            time.sleep(0.05)
        return False

    def _tail(self, lines: int = 20) -> str:
        try:
            log = Path(self.state["home"]) / "server.log"
            return "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _save_template(self) -> None:
        """Keep the freshly migrated database for the next servers (atomically)."""
        template = _template()
        partial = template.with_name(f"{template.name}.{os.getpid()}.partial")
        try:
            _copy_database(Path(self.state["home"]) / "prefect.db", partial)
            os.replace(partial, template)
        except (OSError, sqlite3.Error):
            partial.unlink(missing_ok=True)  # only a missed speed-up

    def wait(self) -> str:
        """Block until the server answers; its API address."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.api_url

    def release(self) -> None:
        """This command is done with the server: unregistered; the last command stops it
        when it is not to stay idle (``NEUROPTIMUS_PREFECT_IDLE=0``)."""
        self._stopping.set()
        self._thread.join(timeout=5)
        shutil.rmtree(self.client_home, ignore_errors=True)
        if self.idle_s == 0:
            stop_unused_server(self._child)


def stop_unused_server(child: subprocess.Popen | None = None, timeout_s: float = 60) -> bool:
    """Stop this host's server if no command uses it (``child``: the server, if this process
    started it); whether one was stopped."""
    folder = server_folder()
    with exclusive_lock(folder / "lock", wait=True, timeout_s=timeout_s):
        state = _read_state(folder)
        if state is None or live_clients(folder):
            return False
        _retire(folder, state, child)
        return True


def server_app():
    """The app of a shared server (a uvicorn factory): the API with the reduced set of
    background services Prefect runs for its own temporary servers, no UI; it leaves when
    idle."""
    from prefect.server.api.server import create_app  # noqa: PLC0415 (lazy: Prefect's server app loads only in the server's process)

    folder = os.environ.get(_FOLDER)
    if folder:
        home = Path(os.environ["PREFECT_HOME"])
        (home / "holder").write_text(holder_token())
        atexit.register(shutil.rmtree, home, True)
        args = (Path(folder), idle_seconds())  # as the command that launched it read it
        threading.Thread(target=_leave_when_idle, args=args, name="idle", daemon=True).start()
    app = create_app(ephemeral=True, final=True)
    gc.freeze()  # Prefect's schemas and routes live as long as the server: never collected
    return app


def _leave_when_idle(folder: Path, idle_s: float) -> None:
    """In the server: shut down (as on Ctrl-C) once no command has used it for ``idle_s``.
    The check that no command uses it and the removal of server.json happen under the lock
    a command takes to find the server, so no command is left with a leaving server. With
    ``idle_s`` 0 the last command stops the server itself as it ends; this leaves only after
    commands killed without ending (a grace of 2 s, so as not to race an ending command)."""
    idle_s = max(idle_s, 2.0)
    last_used, pause = time.monotonic(), min(2.0, idle_s / 4)
    while True:
        time.sleep(pause)
        if live_clients(folder):
            last_used = time.monotonic()
            continue
        if time.monotonic() - last_used < idle_s:
            continue
        with exclusive_lock(folder / "lock", wait=True):
            if live_clients(folder):
                last_used = time.monotonic()
                continue
            state = _read_state(folder)
            if state is not None and state["pid"] == os.getpid():
                (folder / "server.json").unlink(missing_ok=True)
        os.kill(os.getpid(), signal.SIGINT)  # uvicorn's graceful shutdown
        return
