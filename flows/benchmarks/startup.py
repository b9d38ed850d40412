"""The fixed cost of ``neuroptimus run``: a run of 4 evaluations (population 2, 2 generations,
2 workers) started as a command, timed from the parent process (process start, exit) and from
the phase marks the command writes (see ``neuroptimus.flows.phases``).

- startup: process start → the first generation starts (imports, checks, cluster, model
  check on a worker, Prefect's server, setup flow);
- finish: the last generation ends → the process has exited (best trace, store, report,
  metadata, cluster stopped, interpreter exit);
- total: the whole command.

Each repeat times two runs: *cold*, the first command on the host (no Prefect server runs:
the command starts one, ~3 s of CPU), then *warm*, the next command (it finds that server).
A pause before each run lets the server finish the previous run's bookkeeping.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from neuroptimus.flows.benchmarks.overhead import write_rows
from neuroptimus.flows.phases import PHASE_LOG, read_marks
from neuroptimus.flows.server.shared import stop_unused_server

COMMAND = ["run", "--population", "2", "--generations", "2", "--workers", "2"]
FIRST, LAST = "generations-start", "generations-end"


def time_run(problem: str, folder: Path) -> dict[str, float]:
    """One timed run in ``folder``: seconds from process start to every phase and to exit."""
    log = folder / "phases.txt"
    env = {**os.environ, PHASE_LOG: str(log)}
    command = [
        sys.executable, "-m", "neuroptimus.flows.cli", *COMMAND, problem,
        "--store", str(folder / "run"),
    ]  # fmt: skip
    before = _children_cpu()
    started = time.time()
    finished = subprocess.run(command, env=env, capture_output=True, text=True)
    ended = time.time()
    if finished.returncode != 0:
        raise RuntimeError(f"{' '.join(command[1:])} failed:\n{finished.stderr[-2000:]}")
    marks = read_marks(log)
    times = {phase: wall - started for phase, (wall, _) in marks.items()}
    cpu = {f"cpu_{phase}": used for phase, (_, used) in marks.items()}
    # the command's processes (itself, its workers, the report's), all waited for; not a
    # Prefect server it started, which outlives it
    return {**times, "exited": ended - started, "cpu_all": _children_cpu() - before, **cpu}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def summary(times: dict[str, float]) -> dict[str, float]:
    """startup, finish and total of one run (seconds)."""
    startup = times[FIRST]
    finish = times["exited"] - times[LAST]
    return {"startup_s": startup, "finish_s": finish, "fixed_s": startup + finish}


def _timed_row(problem: str, server: str, index: int) -> dict[str, float | str]:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="neuroptimus-startup-") as folder:
        times = time_run(problem, Path(folder))
    cpu = {key: times.pop(key) for key in list(times) if key.startswith("cpu_")}
    row = {"repeat": index + 1, "server": server, **summary(times), "total_s": times["exited"]}
    row |= {"cpu_s": cpu.pop("cpu_all"), "load_before": load_before}
    row["load_after"] = os.getloadavg()[0]
    return {**row, **{f"at_{phase}": value for phase, value in times.items()}, **cpu}


def _describe(row: dict) -> str:
    phases = "  ".join(f"{k[3:]} {v:.2f}" for k, v in row.items() if k.startswith("at_"))
    own = "  ".join(
        f"{k[4:]} {v:.2f}" for k, v in row.items() if k.startswith("cpu_") and k != "cpu_s"
    )
    return (
        f"run {row['repeat']} ({row['server']} server): startup {row['startup_s']:.2f} s, "
        f"finish {row['finish_s']:.2f} s, fixed cost {row['fixed_s']:.2f} s, total "
        f"{row['total_s']:.2f} s, CPU of all its processes {row['cpu_s']:.2f} s (load "
        f"{row['load_before']:.1f} → {row['load_after']:.1f})\n  seconds from start: {phases}"
        f"\n  CPU seconds of the command's process: {own}"
    )


def startup_benchmark(
    problem: str,
    repeats: int,
    output: Path,
    say: Callable[[str], None] = print,
    pause_s: float = 5.0,
) -> list[dict]:
    """Time ``repeats`` pairs of runs (cold, then warm); print each run's phases and the
    medians; write one CSV row per run (with the load average, since wall times on a busy
    machine mean little)."""

    rows = []
    for index in range(repeats):
        for server in ("cold", "warm"):
            if server == "cold":
                stop_unused_server()
            time.sleep(pause_s)
            rows.append(_timed_row(problem, server, index))
            say(_describe(rows[-1]))
    keys = ("startup_s", "finish_s", "fixed_s", "cpu_s")
    for server in ("cold", "warm"):
        chosen = [row for row in rows if row["server"] == server]
        median = {key: statistics.median(row[key] for row in chosen) for key in keys}
        say(
            f"median of {repeats}, {server} server: process start → first generation "
            f"{median['startup_s']:.2f} s, last generation → exit {median['finish_s']:.2f} s, "
            f"fixed cost {median['fixed_s']:.2f} s (goal: at most 6 s on an idle machine; "
            f"{os.cpu_count()} cores); CPU of all processes {median['cpu_s']:.2f} s"
        )
    write_rows(output, rows)
    say(f"written: {output}")
    return rows
