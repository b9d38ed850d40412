"""A throw-away PostgreSQL server for tests (Debian's ``postgresql`` package).

initdb and the server run as an unprivileged user (PostgreSQL refuses root: as root the
``postgres`` user, else ``nobody``; as anyone else that user itself), in a temporary folder of
their own, on a free port of 127.0.0.1, without fsync (nothing here must survive a crash).
Each test gets a fresh database of it.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

PROGRAMS = ("initdb", "pg_ctl", "postgres")


def binaries() -> Path | None:
    """The folder of PostgreSQL's server programs (Debian keeps them off PATH), newest first."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True,
                         key=lambda f: int(Path(f).parent.name)):  # fmt: skip
        if all((Path(folder) / p).is_file() for p in PROGRAMS):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: not root. None: this process's own user (not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and no postgres or nobody user to run PostgreSQL as")


@dataclass
class PostgresServer:
    folder: Path
    port: int
    bin: Path
    user: pwd.struct_passwd | None
    _numbers: itertools.count = field(default_factory=lambda: itertools.count(1))

    def _run(self, *command: str) -> None:
        kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid} if self.user else {}
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=120, check=False, cwd=self.folder,
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8"}, **kwargs,
        )  # fmt: skip
        if result.returncode:
            log = self.folder / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}\n{tail}")

    def start(self) -> None:
        data = self.folder / "data"
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", "test", "--auth=trust",
                  "-E", "UTF8", "--no-sync")  # fmt: skip
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-t", "60",
                  "-l", str(self.folder / "server.log"), "start")  # fmt: skip

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast",
                  "-w", "stop")  # fmt: skip

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://test@127.0.0.1:{self.port}/{database}"

    def fresh_database(self) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"test_{os.getpid()}_{next(self._numbers)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def start() -> PostgresServer:
    """A running server in a new temporary folder (``stop`` it, then remove the folder)."""
    folder_bin = binaries()
    if folder_bin is None:
        raise FileNotFoundError("PostgreSQL's initdb/pg_ctl not found")
    user = _server_user()
    # not under pytest's 0700 folders: the server's user must reach its files
    folder = Path(tempfile.mkdtemp(prefix="neuroptimus-postgres-"))
    if user is not None:
        os.chown(folder, user.pw_uid, user.pw_gid)
    server = PostgresServer(folder, _free_port(), folder_bin, user)
    try:
        server.start()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return server
