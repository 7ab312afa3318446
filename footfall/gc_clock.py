"""Time the cyclic garbage collector takes, per generation: what the GC thresholds cost.

A worker's counting allocates many short-lived objects while its tables keep many long-
lived ones, and the share of time the collector takes is the first thing to look at when
its throughput drops (`/stream/stats/` reports it; bench/stream.py prints it).
"""

from __future__ import annotations

import gc
import time
from typing import Any


class GcClock:
    """Seconds and collections of each generation since `install`."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self._began = 0.0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        generation = info["generation"]
        self.seconds[generation] += time.perf_counter() - self._began
        self.collections[generation] += 1

    def install(self) -> GcClock:
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)
        return self

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": [round(s, 4) for s in self.seconds],
            "collections": list(self.collections),
            "thresholds": list(gc.get_threshold()),
        }


#: The process's clock (installed by the worker at start).
GC_CLOCK = GcClock()
