"""Where counting's buckets come from: footfall._core's when it is built, else tables.buckets'.

footfall._core (native/, Rust) keeps a bucket's rows, counters and sketches in native
memory, and counts and encodes them several times as fast as the Python classes; both
encode to the same bytes (tests/unit/stream/test_core.py). It makes HLL_8 sketches only:
with another register width (`hll_type`), the Python buckets count.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from footfall import native
from footfall.metrics import COUNTERS
from footfall.visitors import SketchConfig
from tables.buckets import EVENT_ROWS, SESSION_ROWS, Bucket, CountedBucket


def _configured_core() -> ModuleType | None:
    core = native.core()
    if core is not None:
        core.configure(list(COUNTERS), list(EVENT_ROWS), list(SESSION_ROWS))
    return core


_CORE = _configured_core()


class BucketMaker:
    """New and decoded buckets of one sketch configuration, for counting."""

    def __init__(self, config: SketchConfig) -> None:
        self.config = config
        self._native: Any = (
            _CORE.Bucket if _CORE is not None and config.hll_type == "HLL_8" else None
        )

    @property
    def native(self) -> bool:
        return self._native is not None

    def new(self) -> CountedBucket:
        if self._native is not None:
            bucket: CountedBucket = self._native(self.config.lg_k)
            return bucket
        return Bucket(self.config)

    def decode(self, raw: bytes) -> CountedBucket:
        if self._native is not None:
            bucket: CountedBucket = self._native.decode(raw, self.config.lg_k)
            return bucket
        return Bucket.decode(raw, self.config)
