"""When the cyclic garbage collector runs in a worker: not inside a batch, not over its survivors.

A large batch allocates millions of objects that live until the batch ends (its events,
sessions and rows) and leaves many of them alive (sessions, rows, buckets kept for the
next batch). Collections inside the batch would scan them over and over (`paused`), and
the first one after it would scan all of its survivors once more: 7 % of a backlog's time
on bench/stream.py. So what a batch leaves is frozen (`gc.freeze` moves every tracked
object out of the generations, without scanning any). Frozen objects are still freed when
their last reference goes, as counting's objects are (it makes no reference cycles); only
cycles among them wait for a thaw, which hands everything back to the collector and
collects it all once.

A full collection costs ~0.4 µs per live object here (0.9 s for 2.4 million), so thaws
follow CPython's own rule for full collections: when the live objects have grown by a
quarter since the last one, and at least every `max_interval_s` so that cycles made in a
steady state are not kept for long. Live objects are counted as the interpreter's
allocated memory blocks (`sys.getallocatedblocks`, which walks the allocator's arenas):
`gc.get_freeze_count` walks every frozen object, millions of them.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """No collection inside the block (no await in it); what it leaves alive is then frozen."""
    if not gc.isenabled():
        yield  # someone else disabled the collector: theirs to decide
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


class Thaws:
    """Decides when the frozen objects go back to the collector (module docstring)."""

    def __init__(self, growth: float = 0.25, max_interval_s: float = 600.0) -> None:
        self.growth = growth
        self.max_interval_s = max_interval_s
        self.last_at = time.monotonic()
        self.live_after_last = 0  # allocated blocks right after the last thaw
        self.thaws = 0
        self.seconds = 0.0

    def due(self, now: float) -> bool:
        if not self.live_after_last:  # the first check: what the process holds is the base
            self.live_after_last = sys.getallocatedblocks()
            self.last_at = now
            return False
        grown = sys.getallocatedblocks() > self.live_after_last * (1 + self.growth)
        return grown or now - self.last_at >= self.max_interval_s

    def thaw(self, now: float) -> None:
        """Unfreeze, collect every generation, and freeze again what is still alive."""
        began = time.perf_counter()
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.live_after_last = sys.getallocatedblocks()
        self.last_at = now
        self.thaws += 1
        self.seconds += time.perf_counter() - began

    def maybe_thaw(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if not self.due(now):
            return False
        self.thaw(now)
        return True

    def as_dict(self) -> dict[str, float | int]:
        return {
            "thaws": self.thaws,
            "thaw_seconds": round(self.seconds, 4),
        }


#: The process's policy (the counting agent's timer runs it).
THAWS = Thaws()
