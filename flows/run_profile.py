"""Where an optimize flow's time and memory go: the figures `benchmark overhead` prints.

The flow marks a few moments and samples its own memory; the store and the artifacts count
their own seconds. The result is kept in the store's ``profile`` attribute, so a run made by
the command line can be measured from outside.
"""

from __future__ import annotations

import os
import time
from typing import Any

import psutil

RSS_GENERATION = 10  # memory is compared from this generation to the end of the run


_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss(process: psutil.Process) -> int:
    """This process's resident memory in bytes: from /proc directly where there is one
    (microseconds, every generation), else as psutil reads it."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except OSError:
        return process.memory_info().rss


class FlowProfile:
    def __init__(self) -> None:
        self._process = psutil.Process()
        self.marks: dict[str, float] = {
            "process_started": self._process.create_time(),
            "flow_started": time.time(),
        }
        self.rss_per_generation: list[int] = []  # one per generation: grows or levels off?

    def mark(self, name: str) -> None:
        self.marks[name] = time.time()

    def generation(self, generation: int) -> None:
        """After each generation: the first is marked; memory is sampled."""
        self.rss_per_generation.append(_rss(self._process))
        self.mark("last_generation_done")
        if len(self.rss_per_generation) == 1:
            self.mark("first_generation_done")

    def figures(self, store: dict[str, float], artifacts: dict[str, float]) -> dict[str, Any]:
        self.mark("flow_finished")
        rss = {"end": _rss(self._process)}
        if len(self.rss_per_generation) >= RSS_GENERATION:
            rss["generation_10"] = self.rss_per_generation[RSS_GENERATION - 1]
        return {
            **self.marks,
            **{f"rss_{name}": value for name, value in rss.items()},
            **{f"store_{name}": value for name, value in store.items()},
            **{f"artifacts_{name}": value for name, value in artifacts.items()},
            "generations": len(self.rss_per_generation),
            "rss_per_generation": self.rss_per_generation,
        }
