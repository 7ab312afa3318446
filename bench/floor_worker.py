"""`footfall worker` with counting made a no-op: the floor under bench/stream.py's worker.

What one worker process costs before it counts anything: Faust's consumer thread, the
batches handed to the agents, the JSON decoded, the archive written, the batches acked
and committed. Its events/s against the bare aiokafka loop is the best ratio any counting
could reach in this framework; `bench/stream.py --floor` runs it. Bench-only: it replaces
the counting core's class before the worker starts (agents/count.py makes its counters
from that name).
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import agents.count
from tables.counting import BatchResult


class NothingCounted:
    """Takes a partition's events like a counter and changes no record."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def apply(self, partition: int, batch: Iterable[tuple[int, Mapping[str, Any]]]) -> BatchResult:
        result = BatchResult()
        for _offset, event in batch:
            result.stream_time = max(result.stream_time, event["received_at"])
        return result


agents.count.new_counter = NothingCounted  # type: ignore[assignment]

if __name__ == "__main__":
    sys.argv = ["agents.commands", *sys.argv[1:]]
    runpy.run_module("agents.commands", run_name="__main__")
