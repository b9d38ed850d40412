"""Prefect's state for one command-line run.

Without a configured Prefect (no ``PREFECT_API_URL`` or ``PREFECT_HOME``, in the environment
or the active Prefect profile), every flow run would go to the SQLite file under
``~/.prefect`` — one file shared by all the runs started on nodes that share a home directory
(NFS), which SQLite does not survive. So each command uses a Prefect server of its host kept in
a local temporary folder (``neuroptimus.flows.server.shared``: started by the first command, in the
background while it does its own setup, and kept warm for the next ones) and a home of its
own there, removed at the end.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from neuroptimus.flows.phases import mark
from neuroptimus.flows.server.shared import SharedServer, idle_seconds

# Settings that say the user chose where Prefect keeps its state.
USER_SETTINGS = ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_API_DATABASE_CONNECTION_URL")


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


class CommandState:
    """This command's Prefect: the shared server (``neuroptimus.flows.server.shared``) and a
    home of its own for what Prefect keeps on the command's side."""

    def __init__(self) -> None:
        timeout_s = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", 180))
        self.server = SharedServer(timeout_s, idle_seconds())
        self.home = self.server.client_home
        self.warm = self.server.warm  # the server runs already (no start to wait for)
        mark("prefect-server-found" if self.warm else "prefect-server-launched")
        self._settings: AbstractContextManager | None = None  # see wait()

    def wait(self) -> None:
        """Block until the server answers, then give this thread's Prefect the settings of a
        private server (``private_settings``) until ``stop``. An address is in
        ``PREFECT_API_URL`` from the start, so Prefect (whose settings are read at import) may
        be imported meanwhile; a server replaced meanwhile has another."""
        api_url = self.server.wait()
        os.environ["PREFECT_API_URL"] = api_url
        if self._settings is None:
            self._settings = private_settings(api_url)
            self._settings.__enter__()

    def stop(self) -> None:
        """Done with the server (also one still starting: a command that failed its checks)."""
        drain_prefect()
        if self._settings is not None:
            self._settings.__exit__(None, None, None)
            self._settings = None
        self.server.release()


def private_settings(api_url: str) -> AbstractContextManager:
    """Prefect's settings for flows on the host's shared server: its address (a Prefect
    imported before the server was replaced has the old one), no flow-run heartbeats and no
    copies of the log lines or version checks sent to it. Heartbeats let a server find
    crashed runs later, which nobody asks of this one (no UI; its database goes when it
    leaves), and each flow waited up to a second for its heartbeat thread as it finished; the
    log lines are on the terminal; the server runs this very Prefect."""
    from prefect.settings import (  # noqa: PLC0415 (lazy: commands that run no flow start without Prefect (seconds))
        PREFECT_API_URL,
        PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_LOGGING_TO_API_ENABLED,
        temporary_settings,
    )

    return temporary_settings(
        updates={
            PREFECT_API_URL: api_url,
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
            PREFECT_LOGGING_TO_API_ENABLED: False,
            PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED: False,
        }
    )


def drain_prefect(timeout_s: float = 5) -> None:
    """Send Prefect's queued logs and events while the server still listens: at exit, with
    the server gone, Prefect would retry them for seconds."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker  # noqa: PLC0415 (lazy: commands that run no flow start without Prefect (seconds))
    from prefect.logging.handlers import APILogWorker  # noqa: PLC0415 (lazy: commands that run no flow start without Prefect (seconds))

    for service in (APILogWorker, EventsWorker):
        service.drain_all(timeout=timeout_s)


class _Configured:
    """Stands for the user's own Prefect: nothing to start or wait for."""

    home = None
    warm = True

    def wait(self) -> None:
        pass


@contextmanager
def private_prefect_state() -> Iterator[CommandState | _Configured]:
    """Give this command a Prefect state of its own unless the user configured one: the
    shared server of this host (started if none runs) and a home removed on exit. Call
    ``wait()`` on the result before the first flow runs."""
    if user_configured():
        yield _Configured()
        return
    profiles = Path(os.environ.get("PREFECT_PROFILES_PATH", "~/.prefect/profiles.toml"))
    names = ("PREFECT_HOME", "PREFECT_PROFILES_PATH", "PREFECT_API_URL")
    saved = {name: os.environ.get(name) for name in names}
    state = CommandState()
    os.environ["PREFECT_HOME"] = str(state.home)
    os.environ["PREFECT_PROFILES_PATH"] = str(profiles.expanduser())  # the user's other settings
    os.environ["PREFECT_API_URL"] = state.server.api_url
    try:
        yield state
    finally:
        try:
            state.stop()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
