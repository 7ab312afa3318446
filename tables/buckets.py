"""Per-minute metric buckets: one per site, UTC minute and source partition.

A bucket is the partial of one `events.raw` partition for one site and minute: its events
come from that partition only, in offset order, so `offset` (the last event applied) tells
a replay what the bucket already holds. The partials of a minute add up across partitions
(visitors too: a visitor's events all live on one partition, so the partitions' visitor
sets are disjoint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Protocol

from footfall.metrics import (
    COUNTERS,
    EVENT_COMBINATIONS,
    EVENT_DIMENSIONS,
    SESSION_COMBINATIONS,
    SESSION_DIMENSIONS,
)
from footfall.visitors import SketchConfig, Visitors
from tables.codec import CodecError, Reader, Writer

# Positions of the counters in `Stats.counts` (the order of footfall.metrics.COUNTERS).
EVENTS: Final = COUNTERS.index("events")
PAGEVIEWS: Final = COUNTERS.index("pageviews")
TRANSACTIONS: Final = COUNTERS.index("transactions")
SESSIONS: Final = COUNTERS.index("sessions")
BOUNCES: Final = COUNTERS.index("bounces")
DURATION_SUM: Final = COUNTERS.index("duration_sum")
N_COUNTERS: Final = len(COUNTERS)

_VERSION: Final = 1
_SEP: Final = "|"

# The event-scoped rows of a bucket an event counts in (besides the total), in the order
# of the values counting gives.
EVENT_ROWS: Final = (*EVENT_DIMENSIONS, *EVENT_COMBINATIONS)
# Session dimensions fixed by a session's first event, in SESSION_DIMENSIONS order.
START_DIMENSIONS: Final = tuple(d for d in SESSION_DIMENSIONS if d != "exit_page")
# The session-scoped rows of a bucket, in the order of a Contribution's values (exit_page
# last: the one that can change).
SESSION_ROWS: Final = (*START_DIMENSIONS, *SESSION_COMBINATIONS, "exit_page")

# What a session adds to each session-scoped row of its start bucket: sessions, bounces,
# duration_sum (each already multiplied by the sample rate), and the SESSION_ROWS values.
Contribution = tuple[int, int, int, tuple[str, ...]]
# The point a bucket makes in InfluxDB (agents/sink.py): the total's counters in COUNTERS
# order, its visitors estimate, revenue by currency, and the highest sample rate.
Point = tuple[list[int], float, dict[str, int], int]


class CountedBucket(Protocol):
    """What counting does to a bucket: this module's Bucket or footfall._core's.

    footfall._core (native/, built by `footfall native build`) keeps the same rows in
    native memory and encodes them to the same bytes; tests/unit/stream/test_core.py
    checks that against this module's Bucket, which reports read and which counts when
    the native one is not built.
    """

    offset: int

    def add_event(
        self,
        values: tuple[str, ...],
        visitor: str,
        rate: int,
        is_pageview: bool,
        is_transaction: bool,
    ) -> None: ...

    def add_revenue(self, currency: str, units: int) -> None: ...

    def move_session(
        self, before: Contribution | None, after: Contribution, visitor: str
    ) -> None: ...

    def encode(self) -> bytes: ...

    def point(self) -> Point: ...

    def row_count(self) -> int: ...


def bucket_key(site: str, minute: int, partition: int) -> bytes:
    """`site|minute_epoch_ms|partition`: unique per partition whatever the store."""
    return f"{site}{_SEP}{minute}{_SEP}{partition}".encode()


def parse_bucket_key(key: bytes) -> tuple[str, int, int]:
    """(site, minute, partition) of a bucket key. Site ids never contain '|'."""
    site, minute, partition = key.decode().split(_SEP)
    return site, int(minute), int(partition)


@dataclass(slots=True)
class Stats:
    """Counters (sums of sample rates; duration in ms) and visitors of a bucket or row."""

    counts: list[int]
    visitors: Visitors
    #: The row as last encoded, kept while the row is unchanged (Bucket.row clears it).
    encoded: bytes | None = None

    @classmethod
    def empty(cls, config: SketchConfig) -> Stats:
        return cls([0] * N_COUNTERS, Visitors(config))

    def as_dict(self) -> dict[str, int]:
        return dict(zip(COUNTERS, self.counts, strict=True))


@dataclass(slots=True)
class Bucket:
    """All metrics of one site, minute and partition, with breakdowns per dimension value.

    Breakdown rows stay encoded until used, and a decoded row keeps its encoding until it
    changes: a batch touches few of a bucket's rows, and decoding and re-encoding all of
    them (with their sketches) at every write would cost more than the counting itself.
    Likewise each dimension's rows keep their joint encoding (`blocks`) until one of them
    changes: a session going on touches its start bucket's session rows only, so the
    bucket's largest dimensions (pages and their combinations) are copied, not walked.
    """

    config: SketchConfig
    offset: int = -1
    total: Stats = field(init=False)
    revenue: dict[str, int] = field(default_factory=dict)  # currency -> millionths
    # dimension -> value -> row, decoded (Stats) or as stored (bytes)
    rows: dict[str, dict[str, Stats | bytes]] = field(default_factory=dict)
    # dimension -> its rows as last encoded (count, then value and row of each), while
    # none of them has changed
    blocks: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.total = Stats.empty(self.config)

    def row(self, dimension: str, value: str) -> Stats:
        """The breakdown row of a dimension value, created empty on first use."""
        rows = self.rows.get(dimension)
        if rows is None:
            rows = self.rows[dimension] = {}
        else:
            self.blocks.pop(dimension, None)  # the caller may change the row
        stats = rows.get(value)
        if stats is None:
            stats = rows[value] = Stats.empty(self.config)
        elif isinstance(stats, bytes):
            stats = rows[value] = _read_stats(Reader(stats), self.config)
        else:
            stats.encoded = None  # the caller is about to change it
        return stats

    # --- counting (CountedBucket) -------------------------------------------------------
    def add_event(
        self,
        values: tuple[str, ...],
        visitor: str,
        rate: int,
        is_pageview: bool,
        is_transaction: bool,
    ) -> None:
        """Count an event in the total and in its EVENT_ROWS (`values` in that order)."""
        stats_of = [self.total]
        stats_of.extend(self.row(dim, value) for dim, value in zip(EVENT_ROWS, values, strict=True))
        for stats in stats_of:
            counts = stats.counts
            counts[EVENTS] += rate
            if is_pageview:
                counts[PAGEVIEWS] += rate
            if is_transaction:
                counts[TRANSACTIONS] += rate
            stats.visitors.add(visitor, rate)

    def add_revenue(self, currency: str, units: int) -> None:
        self.revenue[currency] = self.revenue.get(currency, 0) + units

    def move_session(self, before: Contribution | None, after: Contribution, visitor: str) -> None:
        """Replace a session's contribution to this, its start bucket (`before` None: new).

        Every session-scoped row the session stays in gets `after - before`; a row it
        leaves (the old exit page) loses `before`; a row it enters gains `after` and the
        visitor. The total's visitors are event-scoped and were counted with the event.
        """
        sessions, bounces, duration, values = after
        rate = sessions
        if before is None:
            counts = self.total.counts
            counts[SESSIONS] += sessions
            counts[BOUNCES] += bounces
            counts[DURATION_SUM] += duration
            for dim, value in zip(SESSION_ROWS, values, strict=True):
                row = self.row(dim, value)
                counts = row.counts
                counts[SESSIONS] += sessions
                counts[BOUNCES] += bounces
                counts[DURATION_SUM] += duration
                row.visitors.add(visitor, rate)
            return
        old_sessions, old_bounces, old_duration, old_values = before
        d_sessions = sessions - old_sessions
        d_bounces = bounces - old_bounces
        d_duration = duration - old_duration
        changed = d_sessions or d_bounces or d_duration
        if changed:
            counts = self.total.counts
            counts[SESSIONS] += d_sessions
            counts[BOUNCES] += d_bounces
            counts[DURATION_SUM] += d_duration
        for dim, value, old_value in zip(SESSION_ROWS, values, old_values, strict=True):
            if value == old_value:
                if changed:
                    counts = self.row(dim, value).counts
                    counts[SESSIONS] += d_sessions
                    counts[BOUNCES] += d_bounces
                    counts[DURATION_SUM] += d_duration
                continue
            counts = self.row(dim, old_value).counts
            counts[SESSIONS] -= old_sessions
            counts[BOUNCES] -= old_bounces
            counts[DURATION_SUM] -= old_duration
            row = self.row(dim, value)
            counts = row.counts
            counts[SESSIONS] += sessions
            counts[BOUNCES] += bounces
            counts[DURATION_SUM] += duration
            row.visitors.add(visitor, rate)

    def point(self) -> Point:
        visitors = self.total.visitors
        return list(self.total.counts), visitors.estimate(), dict(self.revenue), visitors.max_rate()

    def row_count(self) -> int:
        return sum(len(values) for values in self.rows.values())

    @property
    def breakdowns(self) -> dict[str, dict[str, Stats]]:
        """Every row, decoded: dimension -> value -> Stats."""
        return {
            dim: {value: self.row(dim, value) for value in rows} for dim, rows in self.rows.items()
        }

    # --- codec ----------------------------------------------------------------------
    def encode(self) -> bytes:
        w = Writer()
        w.uint(_VERSION)
        w.sint(self.offset)
        _write_stats(w, self.total)
        w.uint(len(self.revenue))
        for currency in sorted(self.revenue):
            w.text(currency)
            w.sint(self.revenue[currency])
        w.uint(len(self.rows))
        blocks = self.blocks
        for dimension in sorted(self.rows):
            w.text(dimension)
            block = blocks.get(dimension)
            if block is None:
                block = blocks[dimension] = _encode_block(self.rows[dimension])
            w.raw(block)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes, config: SketchConfig) -> Bucket:
        r = Reader(data)
        version = r.uint()
        if version != _VERSION:
            raise CodecError(f"bucket value version {version}, expected {_VERSION}")
        bucket = cls(config, offset=r.sint())
        bucket.total = _read_stats(r, config)
        for _ in range(r.uint()):
            currency = r.text()
            bucket.revenue[currency] = r.sint()
        for _ in range(r.uint()):
            dimension = r.text()
            rows: dict[str, Stats | bytes] = {}
            bucket.rows[dimension] = rows
            block_start = r.position
            for _ in range(r.uint()):
                value = r.text()
                rows[value] = r.blob()
            bucket.blocks[dimension] = r.since(block_start)
        if not r.at_end():
            raise CodecError("trailing bytes after bucket value")
        return bucket


def _encode_block(rows: dict[str, Stats | bytes]) -> bytes:
    """A dimension's rows: their number, then each value and row (insertion order)."""
    w = Writer()
    w.uint(len(rows))
    for value, stats in rows.items():
        w.text(value)
        if isinstance(stats, bytes):
            w.blob(stats)
        else:
            encoded = stats.encoded
            if encoded is None:
                row = Writer()
                _write_stats(row, stats)
                encoded = stats.encoded = row.getvalue()
            w.blob(encoded)
    return w.getvalue()


def _write_stats(w: Writer, stats: Stats) -> None:
    w.sints(stats.counts)
    sketches = list(stats.visitors.items())
    w.uint(len(sketches))
    for rate, raw in sketches:
        w.uint(rate)
        w.blob(raw)


def _read_stats(r: Reader, config: SketchConfig) -> Stats:
    counts = [r.sint() for _ in range(N_COUNTERS)]
    n = r.uint()
    visitors = Visitors.from_items(config, iter([(r.uint(), r.blob()) for _ in range(n)]))
    return Stats(counts, visitors)
