"""Prefect artifacts of an optimize run: a progress bar over the evaluation budget and a
best-so-far table, shown on the flow run's Artifacts tab in the Prefect UI.

They are a window, not the record (the run store is): the calls are made beside the run, the
progress bar moves at most every few seconds (and at the end), the table every few
generations, and a failure to report never stops an optimization.
"""

from __future__ import annotations

import contextvars
import queue
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)

from neuroptimus.optimization.problem.emodel_spec import component_weights
from neuroptimus.optimization.problem.spec import ProblemSpec

Best = dict[str, Any]


def artifact_key(*parts: str) -> str:
    """An artifact key (lowercase letters, digits and dashes) made of ``parts``."""
    text = "-".join(parts).lower()
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text)).strip("-")


def best_markdown(spec: ProblemSpec, label: str, best: Best, evaluations: int, status: str) -> str:
    """The best individual so far as a markdown table: parameters with bounds, then the
    error components and their weighted total."""
    lines = [
        f"### {spec.name} · {label}",
        f"{status}: **{evaluations}** of {spec.budget} evaluations, "
        f"best total error **{best['total']:.6g}** (generation {best['generation']})",
        "",
        "| parameter | best | lower | upper | unit |",
        "|---|---:|---:|---:|---|",
    ]
    for parameter in spec.parameters:
        value = best["parameters"].get(parameter.name, float("nan"))
        lines.append(
            f"| {parameter.name} | {value:.6g} | {parameter.lower:g} | {parameter.upper:g} "
            f"| {parameter.unit} |"
        )
    if spec.costs is None:  # an emodel problem: weights per protocol.recording.feature
        weights = component_weights(spec.protocols)
    else:
        terms = spec.costs.functions or spec.costs.features  # features: eFEL statistics
        weights = {term.name: term.weight for term in terms}
    lines += ["", "| error component | value | weight |", "|---|---:|---:|"]
    for name, value in best["errors"].items():
        weight = weights.get(name.split(" [")[0])  # per sweep: "… [sweep 2]", "… [0.1 nA]"
        weight_text = "" if weight is None else f"{weight:g}"
        lines.append(f"| {name} | {value:.6g} | {weight_text} |")
    lines.append(f"| **total** | **{best['total']:.6g}** | |")
    return "\n".join(lines)


class RunArtifacts:
    """Progress (percent of the evaluation budget, at most every ``interval_s`` seconds) and
    the best-so-far table (every ``every`` generations, at most every ``interval_s``, and at
    the end) of one optimize flow run.

    The API calls are made by a thread of their own (in the flow run's context, so the
    artifacts belong to it): a slow server never holds up the next generation. ``finish``
    waits for them, at most ``finish_timeout_s``."""

    def __init__(
        self,
        spec: ProblemSpec,
        label: str,
        evaluations: int,
        every: int = 10,
        interval_s: float = 5.0,
        finish_timeout_s: float = 30.0,
    ) -> None:
        self.spec, self.label, self.every, self.interval_s = spec, label, every, interval_s
        self.finish_timeout_s = finish_timeout_s
        self.key = artifact_key(spec.name, spec.algorithm.name)
        self.seconds = 0.0  # the run waited for artifacts (handing calls over, the end)
        self.api_seconds = 0.0  # spent in API calls, by the thread
        self.calls = 0
        self._progress_id = None
        self._enabled = True
        self._last = {"progress": time.monotonic(), "table": -float("inf")}
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        context = contextvars.copy_context()  # the flow run's: who the artifacts belong to
        self._thread = threading.Thread(
            target=context.run, args=(self._send,), name="artifacts", daemon=True
        )
        self._thread.start()
        self._call(self._start, evaluations)

    def percent(self, evaluations: int) -> float:
        return min(100.0, 100.0 * evaluations / max(self.spec.budget, 1))

    def _call(self, action: Callable[..., Any], *args: Any) -> None:
        if self._enabled:
            self._calls.put((action, args))

    def _send(self) -> None:
        while (call := self._calls.get()) is not None:
            if not self._enabled:
                continue
            action, args = call
            started = time.perf_counter()
            try:
                action(*args)
            except Exception as error:  # a side channel: report once, then stay quiet
                self._enabled = False
                get_run_logger().warning("progress artifacts disabled: %s", error)
            self.api_seconds += time.perf_counter() - started
            self.calls += 1

    def _due(self, kind: str) -> bool:
        now = time.monotonic()
        if now - self._last[kind] < self.interval_s:
            return False
        self._last[kind] = now
        return True

    def _start(self, evaluations: int) -> None:
        self._progress_id = create_progress_artifact(
            self.percent(evaluations),
            key=f"{self.key}-progress",
            description=f"{self.spec.name} · {self.label}: evaluations used of {self.spec.budget}",
        )

    def _progress(self, percent: float, description: str | None = None) -> None:
        update_progress_artifact(self._progress_id, percent, description)

    def _table(self, best: Best | None, evaluations: int, status: str) -> None:
        if best is None:
            return
        create_markdown_artifact(
            best_markdown(self.spec, self.label, best, evaluations, status),
            key=f"{self.key}-best",
            description=f"Best individual of {self.spec.name} · {self.label}",
        )

    def generation(self, generation: int, evaluations: int, best: Callable[[], Best | None]):
        """After a generation: move the progress bar; every few generations, the table
        (``best`` is called only then: reading the store is the costly part)."""
        started = time.perf_counter()
        if self._due("progress"):
            self._call(self._progress, self.percent(evaluations))
        if self.every and generation % self.every == 0 and self._due("table"):
            self._call(self._table, best(), evaluations, f"generation {generation}")
        self.seconds += time.perf_counter() - started

    def finish(self, best: Best | None, evaluations: int, reason: str) -> None:
        """The final table, and the progress bar full (the run is over, whatever stopped it)."""
        started = time.perf_counter()
        self._call(self._progress, 100.0, f"finished: {reason}")
        self._call(self._table, best, evaluations, f"finished ({reason})")
        self._calls.put(None)
        self._thread.join(self.finish_timeout_s)
        self.seconds += time.perf_counter() - started
