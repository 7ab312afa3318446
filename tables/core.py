"""The counting core: footfall._core's when it is built, else tables.counting's and tables.buckets'.

footfall._core (native/, Rust) keeps the counter's sessions and minute buckets in native
memory and applies the same rules to them as tables/counting.py, several times as fast;
both leave the same bytes (tests/unit/stream/test_native.py counts a workload both ways,
test_core.py checks the buckets and session records). It makes HLL_8 sketches only: with another
register width (`hll_type`) the Python core counts. The rules' one home stays
footfall.metrics: what the Rust core needs of them it is given here, once.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from footfall import native
from footfall.metrics import COMBINATION_SEP, COMBINATION_SEP_STANDIN, COUNTERS, PAGEVIEW
from footfall.visitors import SketchConfig
from tables.bucket_cache import BucketCache
from tables.buckets import EVENT_ROWS, SESSION_ROWS
from tables.counting import (
    EVENT_COMBINATION_MEMBERS,
    EVENT_FIELDS,
    EXIT_FIELD,
    SESSION_COMBINATION_MEMBERS,
    START_FIELDS,
    BatchCounter,
    BatchResult,
    CountingRules,
    Loader,
)


def layout() -> dict[str, Any]:
    """What the Rust core takes from footfall.metrics (its `configure`'s keywords)."""
    return dict(
        event_rows=list(EVENT_ROWS),
        session_rows=list(SESSION_ROWS),
        start_fields=list(START_FIELDS),
        exit_field=EXIT_FIELD,
        event_fields=list(EVENT_FIELDS),
        event_combinations=[
            [(field, None if i < 0 else i) for field, i in members]
            for members in EVENT_COMBINATION_MEMBERS
        ],
        session_combinations=[list(positions) for _, positions in SESSION_COMBINATION_MEMBERS],
        pageview=PAGEVIEW,
        sep=COMBINATION_SEP,
        standin=COMBINATION_SEP_STANDIN,
    )


def _configured_core() -> ModuleType | None:
    core = native.core()
    if core is not None:
        core.configure(list(COUNTERS), **layout())
    return core


_CORE = _configured_core()


def _native(config: SketchConfig) -> ModuleType | None:
    return _CORE if config.hll_type == "HLL_8" else None


class NativeBatchCounter:
    """footfall._core's counter behind tables.counting.BatchCounter's interface."""

    def __init__(
        self,
        core: ModuleType,
        rules: CountingRules,
        load_session: Loader,
        load_bucket: Loader,
        cache: BucketCache | None = None,
    ) -> None:
        self.rules = rules
        self._counter = core.BatchCounter(
            rules.session_timeout_s,
            rules.dedupe_window_ms,
            rules.dedupe_max_ids,
            rules.retention_ms,
            rules.sketch.lg_k,
            load_session,
            load_bucket,
            cache,
        )

    def apply(self, partition: int, batch: list[tuple[int, Any]]) -> BatchResult:
        buckets, sessions, applied, stream_time = self._counter.apply(partition, batch)
        return BatchResult(buckets, sessions, applied, stream_time)


Counter = BatchCounter | NativeBatchCounter


def core_name(config: SketchConfig) -> str:
    """Which core counts with this configuration: "rust", "compiled" (mypyc) or "sources"."""
    if _native(config) is not None:
        return "rust"
    return "compiled" if native.compiled() else "sources"


def new_counter(
    rules: CountingRules,
    load_session: Loader,
    load_bucket: Loader,
    cache: BucketCache | None = None,
) -> Counter:
    """A counter of one partition's batches: the Rust one when built (module docstring)."""
    core = _native(rules.sketch)
    if core is None:
        return BatchCounter(rules, load_session, load_bucket, cache)
    return NativeBatchCounter(core, rules, load_session, load_bucket, cache)
