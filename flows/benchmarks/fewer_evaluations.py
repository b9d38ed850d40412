"""Benchmark: how many evaluations do surrogate-assisted and model-based methods need to reach
the error a reference algorithm (CMA-ES) reaches with a given budget?

First the reference runs N seeds with the whole budget; the median over its seeds of the best
total within the first ``evaluations`` (and the first ``early``) evaluations are the two target
errors. Then every candidate runs the same seeds, stopping once it reaches the lower target
(nothing after that changes the count) or at its own budget (by default the reference's; a
third of it answers "in at most a third of the evaluations" at a third of the cost). The table
gives, per method, the median evaluations to each target as a share of the reference's, the
runs' wall time and the algorithm's own share of it, and projects the saving onto an expensive
model's budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroptimus.optimization.execution.cluster import ClusterConfig
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.scoring.scores import evaluations_to_reach
from neuroptimus.storage.runs.run_store import RunStore

TABLE, FIGURE = "fewer-evaluations.csv", "fewer-evaluations.png"


@dataclass(frozen=True)
class Projection:
    """An expensive model to project the saving onto: CPU per evaluation and its budget."""

    cpu_seconds: float = 121.6  # use case 7, one evaluation (docs/run-uc7/run.log)
    evaluations: int = 10_000  # the paper's CMA-ES budget, 100 × 100

    def cpu_hours(self, share: float) -> float:
        return share * self.evaluations * self.cpu_seconds / 3600


def best_within(store: Path, evaluations: int) -> float:
    """The lowest total among a run's first ``evaluations`` evaluations."""
    totals = RunStore.open(store).evaluations()["total"][:evaluations]
    return float(np.min(totals))


def target_errors(stores: list[Path], at: list[int]) -> dict[int, float]:
    """For each budget in ``at``: the median over the stores of the best within it."""
    return {n: float(np.median([best_within(store, n) for store in stores])) for n in at}


def method_row(
    method: str,
    stores: list[Path],
    totals: list[np.ndarray],
    targets: dict[int, float],
    projection: Projection,
) -> dict[str, object]:
    """One method's line of the table: per target, the runs that reached it and the median
    evaluations they needed (a run that never did counts as not reaching: the median is over
    all seeds, so it is empty when half of them or more did not), as a share of the budget
    that defines the target. ``totals``: each store's totals in evaluation order."""
    runs = [RunStore.open(store) for store in stores]
    row: dict[str, object] = {"method": method, "seeds": len(stores),
                              "budget": max(int(run.attrs["budget"]) for run in runs)}  # fmt: skip
    for budget, error in targets.items():
        needed = [evaluations_to_reach(t, error) for t in totals]
        counted = [math.inf if n is None else n for n in needed]
        median = float(np.median(counted))
        row[f"target_{budget}"] = error
        row[f"reached_{budget}"] = sum(n is not None for n in needed)
        row[f"evaluations_{budget}"] = ";".join("-" if n is None else str(n) for n in needed)
        row[f"median_{budget}"] = median if math.isfinite(median) else ""
        share = median / budget if math.isfinite(median) else ""
        row[f"share_{budget}"] = share
        # the expensive model's budget cut by the same share
        row[f"projected_cpu_hours_{budget}"] = projection.cpu_hours(share) if share != "" else ""
    generations = [run.generations() for run in runs]
    seconds = [float(g["seconds"].sum()) for g in generations]
    own = [float(g["algorithm_seconds"].sum()) for g in generations]
    # its slowest round: a model-based method's own time grows with the points it has seen
    worst = [float(np.max(g["algorithm_seconds"] / g["seconds"])) for g in generations]
    row["simulations"] = sum(len(t) for t in totals)
    row["wall_seconds_median"] = float(np.median(seconds))
    row["algorithm_share_median"] = float(np.median(np.divide(own, seconds)))
    row["algorithm_share_worst_round_median"] = float(np.median(worst))
    return row


def write_table(rows: list[dict[str, object]], folder: Path) -> Path:
    import pandas as pd  # noqa: PLC0415 (lazy: the command's --help stays fast)

    path = folder / TABLE
    pd.DataFrame(rows).to_csv(path, index=False, float_format="%.6g")
    return path


def fewer_evaluations(
    spec: ProblemSpec,
    reference: str,
    candidates: list[str],
    seeds: int,
    population: int,
    evaluations: int,
    early: int,
    folder: Path,
    cluster: ClusterConfig,
    projection: Projection = Projection(),  # noqa: B008 (frozen)
    concurrent_runs: int = 4,
    candidate_evaluations: int | None = None,
) -> dict[str, str]:
    """Run the reference, then the candidates stopping at its target; write the benchmark
    flow's tables over all runs and ``fewer-evaluations.csv``. Finished runs in ``folder``
    are reused, so an interrupted benchmark continues and a finished one is only re-scored."""
    from prefect.task_runners import ThreadPoolTaskRunner  # noqa: PLC0415 (lazy: --help stays fast)

    from neuroptimus.analysis.comparison import write_comparison  # noqa: PLC0415 (lazy: --help stays fast)
    from neuroptimus.flows.benchmarks.fewer_evaluations_figure import save_figure  # noqa: PLC0415 (lazy: --help stays fast)
    from neuroptimus.flows.compare import benchmark_flow, run_store_path  # noqa: PLC0415 (lazy: --help stays fast)

    if not 0 < early < evaluations:
        raise ValueError(f"early ({early}) must lie between 0 and the evaluations ({evaluations})")
    flow = benchmark_flow.with_options(task_runner=ThreadPoolTaskRunner(concurrent_runs))
    shared = {"population": population, "folder": str(folder)}
    generations = math.ceil(evaluations / population)
    flow(spec, [reference], seeds, cluster=cluster, progress=True, generations=generations,
         **shared)  # fmt: skip
    seeds_range = range(1, seeds + 1)
    targets = target_errors([run_store_path(folder, reference, s) for s in seeds_range],
                            [evaluations, early])  # fmt: skip
    print(f"{reference}'s median best: {targets[evaluations]:.6g} within {evaluations} "
          f"evaluations, {targets[early]:.6g} within {early}", flush=True)  # fmt: skip
    generations = math.ceil((candidate_evaluations or evaluations) / population)
    flow(spec, candidates, seeds, cluster=cluster, progress=True, generations=generations,
         error_target=targets[evaluations], **shared)  # fmt: skip
    methods = [reference, *candidates]
    stores = {m: [run_store_path(folder, m, s) for s in seeds_range] for m in methods}
    title = (f"{spec.name}: evaluations to reach {reference}'s median best at {evaluations} "
             f"and {early} evaluations, {seeds} seeds")  # fmt: skip
    paths = write_comparison([str(p) for m in methods for p in stores[m]], folder, title,
                             sorted(targets.values(), reverse=True))  # fmt: skip
    totals = {m: [RunStore.open(p).evaluations()["total"] for p in stores[m]] for m in methods}
    rows = [method_row(m, stores[m], totals[m], targets, projection) for m in methods]
    figure = save_figure(totals, targets, f"{spec.name}: best total error, median over "
                         f"{seeds} seeds (dashed: the targets)", folder / FIGURE)  # fmt: skip
    return {**paths, "table": str(write_table(rows, folder)), "figure": str(figure)}
