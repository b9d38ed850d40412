"""`neuroptimus benchmark objectives`: does a many-objective run cost more per evaluation than
its simulations explain?

Two cases, each a whole ``neuroptimus run`` (its own process, a LocalCluster of ``workers``),
the same population and number of generations, only the evaluation budget stopping them:

- *many*: UC1 (``hh``) with three stimulus amplitudes × its four cost functions = 12
  objectives, fitted by pygmo's NSGA-II
  (``neuroptimus.flows.benchmarks.fronts.many_objective_spec``);
- *single*: UC1 as bundled (one sweep, four costs summed), fitted by CMA-ES.

The *marginal cost* of a run is its wall time per evaluation once it runs: from the end of
its first generation to the end of its last, divided by the evaluations in between. It holds
everything that grows with the number of evaluations (simulations, the flow's work per
generation and per result, store writes, Pareto fronts and hypervolumes) and leaves out the
fixed cost of starting the run and writing its report. An evaluation of the many-objective
case simulates three sweeps where the single one simulates one, so the ratio compared with
the goal (at most 1.5) is

    marginal(many) / (sweeps × marginal(single))

Each figure is the median over ``repeats`` pairs of runs, the two cases interleaved (the order
alternating), because the machine's other work changes the wall time of one run to the next.
The CPU seconds of each command's processes per evaluation (flow, workers, helpers, report)
are printed beside, as they depend much less on that other work.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from neuroptimus.flows.benchmarks.fronts import AMPLITUDES_NA, many_objective_spec
from neuroptimus.flows.benchmarks.overhead import machine, run_command_line, write_rows
from neuroptimus.optimization.problem.problem_file import with_overrides
from neuroptimus.optimization.problem.spec import ProblemSpec, StoppingSpec

GOAL = 1.5
COLUMNS = (
    "measured", "case", "repeat", "algorithm", "sweeps", "error_components", "evaluations",
    "generations", "marginal_ms_per_evaluation", "wall_ms_per_evaluation", "command_seconds",
    "cpu_ms_per_evaluation", "flow_cpu_ms_per_evaluation", "mean_evaluation_ms", "load_before",
    "load_after", "machine", "ratio",
)  # fmt: skip


def cases(spec: ProblemSpec, population: int, generations: int) -> dict[str, ProblemSpec]:
    """The many-objective and the single-sweep spec, stopped by the same budget alone."""
    budget = StoppingSpec(max_evaluations=population * generations)
    many = many_objective_spec(spec, population, generations)
    single = with_overrides(spec, algorithm="cmaes", population=population, generations=generations)
    return {
        "many": many.model_copy(update={"stopping": budget}),
        "single": single.model_copy(update={"stopping": budget}),
    }


def marginal_ms(figures: dict) -> float:
    """Wall time per evaluation from the end of the first generation to the end of the last
    (``run_command_line``'s figures)."""
    return figures["marginal_seconds"] / figures["marginal_evaluations"] * 1000


class TreeCpu:
    """CPU seconds of this process's descendants while it runs (sampled every ``every_s``:
    the workers of a LocalCluster are never waited for, so the OS's count of children's
    time misses them); those of the run command's own process apart from the others
    (workers, nannies, helpers, report). Processes already there (a Prefect server) are left
    out."""

    def __init__(self, every_s: float = 0.5) -> None:
        self.every_s = every_s
        self._last: dict[int, tuple[bool, float]] = {}  # pid → (the command's?, CPU seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-cpu", daemon=True)

    def __enter__(self) -> TreeCpu:
        self._before = {process.pid for process in psutil.Process().children(recursive=True)}
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(self.every_s):
                return

    def _sample(self) -> None:
        for process in psutil.Process().children(recursive=True):
            if process.pid in self._before:
                continue
            try:
                command = "neuroptimus.flows.cli" in " ".join(process.cmdline())
                times = process.cpu_times()
            except psutil.Error:
                continue
            self._last[process.pid] = (command, times.user + times.system)

    def seconds(self) -> tuple[float, float]:
        """(the run command's process, all the others)."""
        own = sum(cpu for command, cpu in self._last.values() if command)
        return own, sum(cpu for _, cpu in self._last.values()) - own


def timed_run(name: str, spec: ProblemSpec, workers: int, repeat: int) -> dict:
    """One run of one case as a command; its row of figures."""
    load_before = os.getloadavg()[0]
    started = time.time()
    with TreeCpu() as cpu, tempfile.TemporaryDirectory(prefix="neuroptimus-objectives-") as folder:
        figures = run_command_line(spec, workers, Path(folder))
    command_s = time.time() - started
    flow_cpu, other_cpu = cpu.seconds()
    n = figures["evaluations"]
    return {
        "measured": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "case": name,
        "repeat": repeat,
        "algorithm": spec.algorithm.name,
        "sweeps": spec.protocol.sweeps,
        "error_components": spec.protocol.sweeps * len(spec.costs.functions),
        "evaluations": n,
        "generations": figures["generations"],
        "marginal_ms_per_evaluation": round(marginal_ms(figures), 3),
        "wall_ms_per_evaluation": round(command_s / n * 1000, 3),
        "command_seconds": round(command_s, 2),
        "cpu_ms_per_evaluation": round((flow_cpu + other_cpu) / n * 1000, 3),
        "flow_cpu_ms_per_evaluation": round(flow_cpu / n * 1000, 3),
        "mean_evaluation_ms": round(figures["mean_evaluation_ms"], 3),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "machine": machine(),
    }


def medians(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Per case, the median of each figure over its repeats."""
    figures = ("marginal_ms_per_evaluation", "wall_ms_per_evaluation", "cpu_ms_per_evaluation",
               "flow_cpu_ms_per_evaluation", "mean_evaluation_ms", "command_seconds")  # fmt: skip
    return {
        case: {f: statistics.median(r[f] for r in rows if r["case"] == case) for f in figures}
        for case in dict.fromkeys(r["case"] for r in rows)
    }


def ratios(rows: list[dict]) -> dict[str, float]:
    """Many-objective ÷ (sweeps × single-sweep), of the medians: marginal (the goal's), whole
    command and CPU per evaluation."""
    sweeps = next(r["sweeps"] for r in rows if r["case"] == "many")
    m = medians(rows)
    return {
        f"{figure}_ratio": m["many"][figure] / (sweeps * m["single"][figure])
        for figure in (
            "marginal_ms_per_evaluation",
            "wall_ms_per_evaluation",
            "cpu_ms_per_evaluation",
        )  # fmt: skip
    }


def objectives_benchmark(
    spec: ProblemSpec,
    population: int = 100,
    generations: int = 10,
    workers: int = 2,
    repeats: int = 3,
    output: str | Path | None = "objectives-benchmark.csv",
    say=print,
) -> list[dict]:
    """Run the pairs, print each run and the medians and ratios, write the rows to ``output``
    (a CSV, one row per run, then one row per ratio)."""
    specs = cases(spec, population, generations)
    say(f"{machine()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {repeats} pairs of "
        f"runs interleaved, population {population}, {generations} generations, {workers} "
        f"workers; many = {len(AMPLITUDES_NA)} sweeps × {len(spec.costs.functions)} costs with "
        "pygmo-nsga2, single = 1 sweep with cmaes")  # fmt: skip
    rows = []
    for repeat in range(1, repeats + 1):
        order = ["single", "many"] if repeat % 2 else ["many", "single"]
        for name in order:
            row = timed_run(name, specs[name], workers, repeat)
            rows.append(row)
            say(f"  {name:<6} #{repeat}: marginal {row['marginal_ms_per_evaluation']:8.2f} "
                f"ms/eval, command {row['command_seconds']:7.1f} s for {row['evaluations']} "
                f"evaluations, CPU {row['cpu_ms_per_evaluation']:8.2f} ms/eval (of which the "
                f"command's process {row['flow_cpu_ms_per_evaluation']:.2f}; load "
                f"{row['load_before']:.1f} → {row['load_after']:.1f})")  # fmt: skip
    m, r = medians(rows), ratios(rows)
    for name, figures in m.items():
        say(f"median {name:<6}: marginal {figures['marginal_ms_per_evaluation']:.2f} ms/eval, "
            f"whole command {figures['wall_ms_per_evaluation']:.2f} ms/eval, CPU "
            f"{figures['cpu_ms_per_evaluation']:.2f} ms/eval (command's process "
            f"{figures['flow_cpu_ms_per_evaluation']:.2f})")  # fmt: skip
    verdict = "within" if r["marginal_ms_per_evaluation_ratio"] <= GOAL else "OVER"
    say(f"marginal cost ratio many / (3 × single): {r['marginal_ms_per_evaluation_ratio']:.3f} "
        f"({verdict} the goal of {GOAL}); whole command {r['wall_ms_per_evaluation_ratio']:.3f}; "
        f"CPU {r['cpu_ms_per_evaluation_ratio']:.3f}")  # fmt: skip
    if output:
        # then one row per ratio of the medians (case: which figure)
        summary = [{"measured": rows[-1]["measured"], "case": name, "ratio": round(value, 4),
                    "machine": machine()} for name, value in r.items()]  # fmt: skip
        write_rows(output, rows + summary, list(COLUMNS))
        say(f"written: {output}")
    return rows
