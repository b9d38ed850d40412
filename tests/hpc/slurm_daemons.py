"""A throw-away single-node SLURM (munged, slurmctld, slurmd) for tests.

Needs Debian's ``slurm-wlm`` and ``munge`` packages and root (the daemons run as root, munged
as the ``munge`` user). Everything lives in one temporary folder: its own slurm.conf, spool,
state, logs and munge socket, on free ports, so it neither needs nor disturbs a system SLURM.
Client commands (sbatch, squeue, scancel) find it through the ``SLURM_CONF`` variable.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo")


def missing_programs() -> list[str]:
    """The programs this SLURM needs that are not installed."""
    return [name for name in (*DAEMONS, *CLIENTS) if _which(name) is None]


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def _memory_mb() -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


@dataclass
class Slurm:
    """A running single-node SLURM; ``env`` is what a client process needs to reach it."""

    folder: Path
    node: str
    cpus: int
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def run(self, *command: str, check: bool = True) -> str:
        result = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=60, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")
        return result.stdout

    def node_state(self) -> str:
        return self.run("sinfo", "-h", "-N", "-o", "%T", check=False).strip()

    def jobs(self) -> list[tuple[str, str]]:
        """(job id, state) of every job in the queue."""
        out = self.run("squeue", "-h", "-o", "%i %T")
        return [tuple(line.split()) for line in out.splitlines() if line.strip()]

    def logs(self) -> str:
        parts = []
        for name in DAEMONS:
            path = self.folder / "log" / f"{name}.log"
            if path.exists():
                parts.append(f"--- {name} ---\n" + path.read_text()[-3000:])
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel the remaining jobs, then stop the daemons this object started."""
        if "slurmctld" in self.processes:
            self.run("scancel", "--full", "--user", "root", check=False)
        for name in reversed(DAEMONS):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start(folder: Path, timeout: float = 60.0) -> Slurm:
    """Write the configuration into ``folder`` and start munged, slurmctld and slurmd in the
    foreground of child processes; return once the node is idle."""
    if os.geteuid() != 0:
        raise RuntimeError("the test SLURM needs root (slurmd starts jobs as any user)")
    folder = Path(folder)
    for sub in ("munge", "log", "state", "spool", "run"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    munge = pwd.getpwnam("munge")
    # munged refuses a socket folder others could write and runs as its own user
    os.chmod(folder, 0o755)
    os.chown(folder / "munge", munge.pw_uid, munge.pw_gid)
    os.chmod(folder / "munge", 0o700)
    socket_path = folder / "munge" / "munge.socket"
    node = socket.gethostname().split(".")[0]  # what slurmd calls itself (hostname -s)
    cpus = os.cpu_count() or 1
    config = folder / "slurm.conf"
    config.write_text(
        f"""\
ClusterName=neuroptimus-test
SlurmctldHost={node}
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={socket_path}
CredType=cred/munge
StateSaveLocation={folder / "state"}
SlurmdSpoolDir={folder / "spool"}
SlurmctldPidFile={folder / "run" / "slurmctld.pid"}
SlurmdPidFile={folder / "run" / "slurmd.pid"}
SlurmctldLogFile={folder / "log" / "slurmctld.log"}
SlurmdLogFile={folder / "log" / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
KillWait=5
InactiveLimit=0
MinJobAge=60
NodeName={node} CPUs={cpus} RealMemory={_memory_mb()} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
    )
    env = {**os.environ, "SLURM_CONF": str(config)}
    slurm = Slurm(folder, node, cpus, env)
    logs = folder / "log"
    commands = {
        "munged": [
            _which("munged"), "--foreground",
            f"--socket={socket_path}", f"--pid-file={folder / 'munge' / 'munged.pid'}",
            f"--log-file={folder / 'munge' / 'munged.log'}",
            f"--seed-file={folder / 'munge' / 'munged.seed'}", "--force",
        ],
        "slurmctld": [_which("slurmctld"), "-D", "-i", "-f", str(config)],
        "slurmd": [_which("slurmd"), "-D", "-f", str(config)],
    }  # fmt: skip
    try:
        for name in DAEMONS:
            with open(logs / f"{name}.stderr", "w") as stderr:
                as_munge = {"user": munge.pw_uid, "group": munge.pw_gid, "extra_groups": []}
                slurm.processes[name] = subprocess.Popen(
                    commands[name], env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                    start_new_session=True, **(as_munge if name == "munged" else {}),
                )  # fmt: skip
            if name == "munged":
                _wait_for(lambda: socket_path.exists(), timeout, "munged's socket", slurm)
            if name == "slurmctld":
                _wait_for(lambda: slurm.node_state() != "", timeout, "slurmctld", slurm)
        _wait_for(lambda: slurm.node_state() == "idle", timeout, "an idle node", slurm)
    except BaseException:
        slurm.stop()
        raise
    return slurm


def _wait_for(condition, timeout: float, what: str, slurm: Slurm) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in slurm.processes.items():
            if process.poll() is not None:
                stderr = (slurm.folder / "log" / f"{name}.stderr").read_text()[-2000:]
                raise RuntimeError(f"{name} exited ({process.returncode}): {stderr}")
        if condition():
            return
        time.sleep(0.25)
    raise RuntimeError(f"timed out waiting for {what}\n{slurm.logs()}")
