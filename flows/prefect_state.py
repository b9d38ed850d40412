"""Prefect's state for one command-line run.

Without a configured Prefect (no ``PREFECT_API_URL`` or ``PREFECT_HOME``, in the environment
or the active Prefect profile), every flow run would go to the SQLite file under
``~/.prefect`` — one file shared by all the runs started on nodes that share a home directory
(NFS), which SQLite does not survive. So each command gets its own ``PREFECT_HOME`` in a
local temporary folder (per host and process), its own temporary server, started in the
background while the command does its own setup, and removed at the end.

A fresh database costs Prefect its ~100 migrations at every start; a migrated copy kept per
host, user and Prefect version in the temporary folder is copied instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import tempfile
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

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
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(home, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PrivateServer:
    """A temporary Prefect server on a private home, started in a background thread."""

    def __init__(self, home: Path, seeded: bool) -> None:
        self.home, self.seeded = home, seeded
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._start, name="prefect-server", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            from prefect.server.api.server import SubprocessASGIServer

            SubprocessASGIServer().start()
            if not self.seeded:
                self._save_template()
        except BaseException as error:  # reported by wait(), in the caller's thread
            self._error = error

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
        """Block until the server answers (Prefect's client must not see it half started)."""
        self._thread.join()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        self._thread.join()
        from prefect.server.api.server import SubprocessASGIServer

        SubprocessASGIServer().stop()


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
    saved = {name: os.environ.get(name) for name in ("PREFECT_HOME", "PREFECT_PROFILES_PATH")}
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_PROFILES_PATH"] = str(profiles.expanduser())  # the user's other settings
    if seeded:  # the copied database has Prefect's blocks registered already
        os.environ.setdefault("PREFECT_API_BLOCKS_REGISTER_ON_START", "false")
    server = PrivateServer(home, seeded)
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
