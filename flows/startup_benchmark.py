"""The fixed cost of ``neuroptimus run``: a run of 4 evaluations (population 2, 2 generations,
2 workers) started as a command, timed from the parent process (process start, exit) and from
the phase marks the command writes (see ``flows.phases``).

- startup: process start → the first generation starts (imports, checks, cluster, model
  check on a worker, Prefect's private server, setup flow);
- finish: the last generation ends → the process has exited (best trace, store, report,
  metadata, cluster and server stopped, interpreter exit);
- total: the whole command.
"""

from __future__ import annotations

import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from flows.phases import PHASE_LOG, read_marks

COMMAND = ["run", "--population", "2", "--generations", "2", "--workers", "2"]
FIRST, LAST = "generations-start", "generations-end"


def time_run(problem: str, folder: Path) -> dict[str, float]:
    """One timed run in ``folder``: seconds from process start to every phase and to exit."""
    log = folder / "phases.txt"
    env = {**os.environ, PHASE_LOG: str(log)}
    command = [sys.executable, "-m", "flows.cli", *COMMAND, problem, "--store", str(folder / "run")]
    started = time.time()
    finished = subprocess.run(command, env=env, capture_output=True, text=True)
    ended = time.time()
    if finished.returncode != 0:
        raise RuntimeError(f"{' '.join(command[1:])} failed:\n{finished.stderr[-2000:]}")
    marks = {phase: stamp - started for phase, stamp in read_marks(log).items()}
    return {**marks, "exited": ended - started}


def summary(times: dict[str, float]) -> dict[str, float]:
    """startup, finish and total of one run (seconds)."""
    startup = times[FIRST]
    finish = times["exited"] - times[LAST]
    return {"startup_s": startup, "finish_s": finish, "fixed_s": startup + finish}


def startup_benchmark(
    problem: str, repeats: int, output: Path, say: Callable[[str], None] = print
) -> list[dict[str, float]]:
    """Time ``repeats`` runs; print each run's phases and the medians; write one CSV row per
    run (with the load average, since wall times on a busy machine mean little)."""
    rows = []
    for index in range(repeats):
        load_before = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="neuroptimus-startup-") as folder:
            times = time_run(problem, Path(folder))
        row = {"repeat": index + 1, **summary(times), "total_s": times["exited"]}
        row |= {"load_before": load_before, "load_after": os.getloadavg()[0]}
        rows.append({**row, **{f"at_{phase}": value for phase, value in times.items()}})
        phases = "  ".join(f"{phase} {value:.2f}" for phase, value in times.items())
        say(
            f"run {index + 1}: startup {row['startup_s']:.2f} s, finish {row['finish_s']:.2f} s, "
            f"fixed cost {row['fixed_s']:.2f} s, total {row['total_s']:.2f} s "
            f"(load {load_before:.1f} → {row['load_after']:.1f})\n  seconds from start: {phases}"
        )
    medians = {key: statistics.median(r[key] for r in rows) for key in ("startup_s", "finish_s")}
    fixed = statistics.median(r["fixed_s"] for r in rows)
    say(
        f"median of {repeats}: process start → first generation {medians['startup_s']:.2f} s, "
        f"last generation → exit {medians['finish_s']:.2f} s, fixed cost {fixed:.2f} s "
        f"(goal: at most 6 s on an idle machine; {os.cpu_count()} cores)"
    )
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(output, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    say(f"written: {output}")
    return rows
