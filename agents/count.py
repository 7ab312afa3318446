"""The counting agent: batches of `events.raw` into sessions and minute buckets.

One actor per partition (isolated_partitions); each stream event is a RecordBatch, one
partition's fetched records in offset order (footfall.record_batches), so every table
write lands in that partition's changelog.

Batches are applied to the partition's open *interval* (tables.counting applies the
events, skipping what a record already holds, by offset); the interval is written when
nothing more of the partition is waiting (neither queued for the actor nor in Kafka past
the batch), or once it is `write_interval_ms` old or `write_interval_max_events` large.
A worker that keeps up thus writes every batch at once; one that is behind writes each
touched bucket and session once per interval instead of once per batch, as Kafka Streams'
record cache coalesces a key's updates between commits. Writing an interval:

1. every changed bucket is written once: to the changelog, and once Kafka has them all,
   to RocksDB (tables.io says why in that order);
2. only then every changed session is written, the same way: a session
   record in the changelog implies that the bucket contributions it led to are there too,
   which is what lets a replay skip an event for a session that already has it
   (docs/stream.md, "Crashes");
3. the changed buckets are marked dirty for the InfluxDB sink.

The interval's batches are acked (and later committed) only after all of that, so a
committed offset never runs ahead of the changelog; a crash loses an unwritten interval
and its batches are read again. A rebalance writes the intervals of the revoked
partitions before the worker rejoins the group, and a batch under way when an actor is
stopped is finished first, so that none of their changelog records is still in flight
when a partition's next owner (maybe this worker) recovers the tables. A failure while
counting or writing stops the worker, rather than let Faust restart the actor past
batches it never wrote.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import operator
import time
from collections import defaultdict, deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from faust.types import TP, EventT, StreamT
from opentelemetry.trace import SpanKind

from agents.metrics import METRICS
from agents.sink import InfluxSink, bucket_line
from agents.topics import events_topic
from footfall import tracing
from footfall.app import app
from footfall.events import MAX_REVENUE_AMOUNT
from footfall.influx import InfluxClient
from footfall.observability import observe_many
from footfall.record_batches import RecordBatch, batch_of
from footfall.settings import Settings, get_settings
from footfall.visitors import SketchConfig
from tables import io
from tables.bucket_cache import BucketCache
from tables.buckets import CountedBucket
from tables.core import Counter, core_name, new_counter
from tables.counting import BatchResult, CountingRules
from tables.definitions import minutes_by_site, sessions_by_visitor
from tables.sessions import CountedSession

log = logging.getLogger(__name__)
_tracer = tracing.tracer("agents.count")

HOUR_MS = 3_600_000


def counting_rules(settings: Settings) -> CountingRules:
    return CountingRules(
        session_timeout_s=settings.session_timeout_s,
        dedupe_window_ms=int(settings.dedupe_window_h * HOUR_MS),
        dedupe_max_ids=settings.dedupe_max_ids,
        retention_ms=int(settings.bucket_retention_h * HOUR_MS),
        sketch=SketchConfig(settings.hll_lg_k, settings.hll_type),
    )


_settings = get_settings()
RULES = counting_rules(_settings)
sink = InfluxSink(
    lambda: InfluxClient.from_settings(_settings),
    batch_points=_settings.influx_batch_points,
    interval_s=_settings.influx_flush_interval_s,
    backoff_max_s=_settings.influx_backoff_max_s,
)

# Fields an envelope must have for counting (the gateway always sets them).
_REQUIRED = ("site", "visitor", "id", "name", "event_time", "received_at", "bot", "sample_rate")
_required_values = operator.itemgetter(*_REQUIRED)  # one C call per event, not a generator


@dataclass
class CountStats:
    """What the worker counted, for /stream/stats/ and the benchmark."""

    #: Events taken up, each offset once: a batch read again (Faust seeking a partition
    #: back, or a partition coming back from another worker) adds only what is past the
    #: last offset written here.
    events_seen: int = 0
    events_applied: int = 0
    changelog_bytes: int = 0  # keys and values of the bucket and session records written
    malformed: int = 0
    batches: int = 0
    intervals: int = 0  # writes of the counted batches (several batches each when behind)
    first_batch_ms: int | None = None  # wall clock when the first batch was taken up
    last_write_ms: int | None = None  # wall clock when the last interval was written
    offsets: dict[int, int] = field(default_factory=dict)  # partition -> last offset done
    stream_time: dict[int, int] = field(default_factory=dict)  # partition -> newest received_at
    #: (received_at, counted_at - received_at) of recent events, ms: gateway receipt to
    #: durably counted (the bucket writes acknowledged by Kafka).
    freshness: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=500_000))

    def freshness_quantiles(self, since_ms: int = 0) -> dict[str, int | None]:
        """p50, p95 and count of the freshness of events received at or after `since_ms`."""
        ordered = sorted(lag for received, lag in self.freshness if received >= since_ms)

        def quantile(q: float) -> int | None:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None

        return {"p50": quantile(0.5), "p95": quantile(0.95), "n": len(ordered)}

    def as_dict(self, since_ms: int | None = None) -> dict[str, Any]:
        """The counters; freshness quantiles only when asked (they sort the recent events)."""
        freshness = self.freshness_quantiles(since_ms) if since_ms is not None else None
        return {
            "events_seen": self.events_seen,
            "events_applied": self.events_applied,
            "changelog_bytes": self.changelog_bytes,
            "malformed": self.malformed,
            "batches": self.batches,
            "intervals": self.intervals,
            "first_batch_ms": self.first_batch_ms,
            "last_write_ms": self.last_write_ms,
            "offsets": {str(p): o for p, o in sorted(self.offsets.items())},
            "freshness_ms": freshness,
            "influx_pending": sink.pending(),
            "influx_points_written": sink.points_written,
            "influx_failures": sink.failures,
            "counting_core": core_name(RULES.sketch),
        }


STATS = CountStats()
_PARTITION_LOCKS: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
#: Buckets as this worker last wrote them, decoded (tables/bucket_cache.py).
BUCKETS = BucketCache(_settings.bucket_cache_mb * 2**20)


def is_countable(envelope: Any) -> bool:
    """Whether a decoded `events.raw` value is an envelope counting can use.

    The gateway's envelopes all are; a record another producer wrote may not be, and is
    logged and left out rather than stop the worker at every restart.
    """
    if not isinstance(envelope, dict):
        return False
    try:
        if None in _required_values(envelope):
            return False
    except KeyError:
        return False
    revenue = envelope.get("revenue")
    return revenue is None or _countable_revenue(revenue)


def _countable_revenue(revenue: Any) -> bool:
    if not isinstance(revenue, dict) or not isinstance(revenue.get("currency"), str):
        return False
    amount = revenue.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return False
    return 0 <= amount <= MAX_REVENUE_AMOUNT


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch is counted and encoded (no await inside).

    A large batch allocates millions of objects that live until the batch ends (its
    events, sessions and rows); collections in the middle of it would scan them over and
    over, and promote them into the older generations whose collections then take seconds.
    Counting makes no reference cycles; whatever garbage the rest of the worker makes in
    the meantime is collected once the batch is done.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _has_queued(stream: StreamT[RecordBatch]) -> bool:
    """Whether the actor's channel holds further batches (its partition's, isolated)."""
    channel: Any = stream.channel
    return not channel.empty()


def _producer_running() -> bool:
    # Under agent.test_context() no producer runs and changelog sends never complete.
    return bool(app.producer.started)


@dataclass
class Interval:
    """One partition's batches counted since its records were last written (module docstring)."""

    counter: Counter
    buckets: dict[bytes, CountedBucket] = field(default_factory=dict)
    sessions: dict[bytes, CountedSession] = field(default_factory=dict)
    events: list[EventT[RecordBatch]] = field(default_factory=list)
    received: list[int] = field(default_factory=list)  # received_at of each countable event
    seen: int = 0  # events of its batches (what `due` limits)
    new: int = 0  # of them, those past what this worker has written of the partition
    applied: int = 0
    stream_time: int = 0
    last_offset: int = -1
    opened: float = field(default_factory=time.monotonic)
    added: float = field(default_factory=time.monotonic)  # when its last batch came

    def add(
        self,
        event: EventT[RecordBatch],
        batch: RecordBatch,
        pairs: list[tuple[int, Mapping[str, Any]]],
        result: BatchResult,
    ) -> None:
        """Take in a batch counted into this interval's counter: its countable `pairs`."""
        self.added = time.monotonic()
        done = max(STATS.offsets.get(batch.partition, -1), self.last_offset)
        if batch.first_offset > done:
            self.new += len(batch)
            self.received.extend(envelope["received_at"] for _, envelope in pairs)
        else:  # read again: its freshness and `events_seen` were taken the first time
            self.new += sum(1 for record in batch.records if record.offset > done)
            self.received.extend(e["received_at"] for offset, e in pairs if offset > done)
        self.buckets.update(result.buckets)
        self.sessions.update(result.sessions)
        self.events.append(event)
        self.seen += len(batch)
        self.applied += result.applied
        self.stream_time = max(self.stream_time, result.stream_time)
        self.last_offset = batch.last_offset

    def due(self, now: float) -> bool:
        """Whether the interval is as long or as large as `LIMITS` let one be."""
        return (now - self.opened) * 1000 >= LIMITS.max_ms or self.seen >= LIMITS.max_events

    def abandoned(self, now: float) -> bool:
        """Whether no batch came for much longer than an interval lasts (the timer's test)."""
        return (now - self.added) * 1000 >= LIMITS.abandoned_ms


@dataclass(frozen=True)
class IntervalLimits:
    """How long and how large an interval may grow while batches are queued behind it."""

    max_ms: int
    max_events: int

    @property
    def abandoned_ms(self) -> int:
        # Longer than an actor takes to come back to its partition while the worker is
        # behind (its other partitions' batches in between), so the timer never cuts an
        # interval its actor is still growing.
        return max(4 * self.max_ms, 10_000)


LIMITS = IntervalLimits(_settings.write_interval_ms, _settings.write_interval_max_events)


#: Per partition, the interval counted and not written yet (at most one; under its lock).
INTERVALS: dict[int, Interval] = {}


async def count_batch(event: EventT[RecordBatch], *, more_queued: bool = False) -> None:
    """Apply one partition's RecordBatch; write the partition's interval unless more is queued.

    `more_queued`: the actor has further batches of the partition waiting, so the writes
    can wait for them, within the interval's limits (module docstring).
    """
    batch = batch_of(event.value)
    partition = batch.partition
    if STATS.first_batch_ms is None:
        STATS.first_batch_ms = int(time.time() * 1000)
    pairs: list[tuple[int, Mapping[str, Any]]] = []
    for offset, envelope in batch.envelopes():
        if not is_countable(envelope):
            STATS.malformed += 1
            METRICS.events_malformed.labels("count_events").inc()
            log.warning("%s p%d o%d: not a countable envelope", batch.topic, partition, offset)
            continue
        pairs.append((offset, envelope))
    # One batch of a partition at a time, reads to writes: should two actors ever hold
    # the same partition (an actor restarted while its old channel still gets records),
    # the second continues the first one's interval and skips what it counted, instead of
    # both reading the same records and the slower one writing an older session over a
    # newer one.
    async with _PARTITION_LOCKS[partition]:
        interval = INTERVALS.get(partition)
        if interval is None:
            interval = INTERVALS[partition] = Interval(
                new_counter(
                    RULES,
                    load_session=io.partition_getter(sessions_by_visitor, partition),
                    load_bucket=io.partition_getter(minutes_by_site, partition),
                    cache=BUCKETS,
                )
            )
        try:
            with io.in_partition(event), _collector_paused():
                result = interval.counter.apply(partition, pairs)
        except BaseException:
            # Half applied: nothing of the interval may be written, nor its batches acked;
            # count_events stops the worker, which reads them again when it restarts.
            del INTERVALS[partition]
            raise
        interval.add(event, batch, pairs, result)
        if not more_queued or interval.due(time.monotonic()):
            await _write(partition, interval)


async def write_interval_if_abandoned(partition: int, interval: Interval) -> None:
    """Write `interval` if it is still the partition's and still abandoned (the timer)."""
    async with _PARTITION_LOCKS[partition]:
        if INTERVALS.get(partition) is interval and interval.abandoned(time.monotonic()):
            await _write(partition, interval)


async def write_revoked_intervals(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Write the intervals of revoked partitions (on_partitions_revoked).

    Faust sends this signal after it has stopped the flow and cleared the actors' queues,
    and before the worker rejoins the group: no partition's next owner (maybe this worker)
    recovers it before these writes are in Kafka. Dropping the intervals instead would
    lose their events: a partition assigned back keeps its actor and its read position.
    """
    revoked: set[TP] = args[0]
    topic = events_topic.get_topic_name()
    for partition in sorted({tp.partition for tp in revoked if tp.topic == topic}):
        await io.uninterrupted(write_interval(partition))


async def write_interval(partition: int) -> None:
    """Write the partition's interval, if it has one."""
    async with _PARTITION_LOCKS[partition]:
        interval = INTERVALS.get(partition)
        if interval is not None:
            await _write(partition, interval)


app.on_partitions_revoked.connect(cast(Any, write_revoked_intervals))


async def _write(partition: int, interval: Interval) -> None:
    """Write what the interval changed, then ack its batches (module docstring). Under the lock."""
    del INTERVALS[partition]
    send = _producer_running()
    with io.in_partition(interval.events[-1]):
        with _collector_paused():
            buckets = [(key, bucket.encode()) for key, bucket in interval.buckets.items()]
        await io.put_many(minutes_by_site, partition, buckets, send=send)
        for (key, encoded), bucket in zip(buckets, interval.buckets.values(), strict=True):
            BUCKETS.keep(key, bucket, encoded)
        # Only now, with every bucket of the interval in Kafka, the sessions.
        with _collector_paused():
            sessions = [(key, session.encode()) for key, session in interval.sessions.items()]
        await io.put_many(sessions_by_visitor, partition, sessions, send=send)
    for key, bucket in interval.buckets.items():
        sink.mark(key, bucket_line(key, bucket))

    counted_at = STATS.last_write_ms = int(time.time() * 1000)
    STATS.batches += len(interval.events)
    STATS.intervals += 1
    STATS.events_seen += interval.new
    METRICS.events_processed.labels("count_events").inc(interval.new)
    STATS.events_applied += interval.applied
    STATS.changelog_bytes += sum(len(k) + len(v) for k, v in buckets) + sum(
        len(k) + len(v) for k, v in sessions
    )
    STATS.offsets[partition] = max(interval.last_offset, STATS.offsets.get(partition, -1))
    if interval.stream_time > STATS.stream_time.get(partition, 0):
        STATS.stream_time[partition] = interval.stream_time
    STATS.freshness.extend((received, counted_at - received) for received in interval.received)
    observe_many(
        METRICS.freshness, [(counted_at - received) / 1000 for received in interval.received]
    )
    for event in interval.events:
        event.ack()


@app.agent(events_topic, isolated_partitions=True)
async def count_events(stream: StreamT[RecordBatch]) -> None:
    """Sessionize events and count them into per-minute buckets (docs/stream.md).

    Each stream event is one partition's fetched records (footfall.record_batches).
    """
    # The worker's log setup leaves aiokafka at DEBUG, and its producer builds a log
    # record for every message sent: thousands per batch here.
    logging.getLogger("aiokafka").setLevel(max(logging.INFO, logging.getLogger().level))
    async for event in stream.events():
        # The stream acks an event when the next one is asked for, and also when the
        # actor is stopped in the middle of it (a rebalance, a shutdown). Our own
        # reference, released by _write only once the batch's interval is in Kafka, keeps
        # a batch counted but not written from being committed.
        event.message.incref()
        batch = batch_of(event.value)
        more_queued = batch.more_in_partition or _has_queued(stream)
        try:
            if tracing.enabled():
                # One span per batch, linked to the gateway requests whose events it holds
                # (their `traceparent` Kafka headers).
                links = tracing.links_from_headers(record.headers for record in batch.records)
                with _tracer.start_as_current_span(
                    "count_events batch",
                    kind=SpanKind.CONSUMER,
                    links=links,
                    attributes={"messaging.batch.message_count": len(batch)},
                ):
                    await io.uninterrupted(count_batch(event, more_queued=more_queued))
            else:
                await io.uninterrupted(count_batch(event, more_queued=more_queued))
        except Exception as exc:
            # Faust would restart the actor on the same stream, past batches counted but
            # never written: the worker stops instead, and its next start reads them again
            # from the committed offset (and rebuilds its tables: no clean stop).
            log.exception("p%d: counting failed; stopping the worker", batch.partition)
            await app.crash(exc)
            raise


async def write_abandoned_intervals() -> None:
    """Write intervals no batch was added to for `LIMITS.abandoned_ms` (app timer).

    An actor writes its interval when nothing more of its partition waits after a batch,
    or when the interval is due at its next batch. This covers a next batch that never
    comes: Faust clears an actor's queue when it resumes after a rebalance, and a batch
    counted as "more in Kafka" may not be fetched for a while.
    """
    if app.should_stop:
        return  # stopping: unwritten intervals are read again at the next start
    now = time.monotonic()
    for partition, interval in list(INTERVALS.items()):
        if interval.abandoned(now):
            await io.uninterrupted(write_interval_if_abandoned(partition, interval))


app.timer(interval=max(1.0, LIMITS.abandoned_ms / 4000))(write_abandoned_intervals)
