"""Batches queued behind each other are written once per interval (agents/count.py)."""

from __future__ import annotations

import asyncio
import time
import zlib
from typing import Any

import orjson
import pytest
from faust.types import TP

from agents import count
from agents.topics import events_topic
from footfall.app import app
from footfall.events import kafka_key
from footfall.record_batches import RecordBatch
from tables.bucket_cache import BucketCache
from tables.counting import BatchCounter
from tables.definitions import sessions_by_visitor
from tests.unit.stream.conftest import TOPIC, Harness, Record
from tests.workload import workload

BATCH = 50


def written_batch_by_batch(raws: list[bytes]) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
    """Buckets and sessions as a worker writing after every batch leaves them."""
    buckets: dict[bytes, bytes] = {}
    sessions: dict[bytes, bytes] = {}
    cache = BucketCache()
    for start in range(0, len(raws), BATCH):
        chunk = raws[start : start + BATCH]
        pairs = [(start + i, orjson.loads(raw)) for i, raw in enumerate(chunk)]
        result = BatchCounter(count.RULES, sessions.get, buckets.get, cache).apply(0, pairs)
        for key, bucket in result.buckets.items():
            buckets[key] = encoded = bucket.encode()
            cache.keep(key, bucket, encoded)
        sessions.update((key, session.encode()) for key, session in result.sessions.items())
    return buckets, sessions


async def test_queued_batches_are_written_together_with_the_same_bytes(harness: Harness) -> None:
    events = workload(2000, seed=17)
    raws = [orjson.dumps(e) for e in events]
    batches, intervals = count.STATS.batches, count.STATS.intervals
    await harness.feed_values(
        [(kafka_key(e["site"], e["visitor"]), raw) for e, raw in zip(events, raws, strict=True)],
        batch_size=BATCH,
    )
    batches = count.STATS.batches - batches
    intervals = count.STATS.intervals - intervals
    assert batches == -(-len(events) // BATCH)
    # The batches were all queued before the actor ran: far fewer writes than batches.
    assert intervals < batches / 4, (intervals, batches)
    assert not count.INTERVALS  # nothing left unwritten once the queue is empty

    buckets, sessions = written_batch_by_batch(raws)
    assert harness.raw_buckets() == buckets
    assert dict(sessions_by_visitor.data.items()) == sessions


async def test_an_interval_is_written_when_due_even_with_more_queued(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(count, "LIMITS", count.IntervalLimits(60_000, 2 * BATCH))
    batches, intervals = count.STATS.batches, count.STATS.intervals
    events = workload(1000, seed=2)
    await harness.feed(events, batch_size=BATCH)
    batches = count.STATS.batches - batches
    intervals = count.STATS.intervals - intervals
    assert batches == -(-len(events) // BATCH)
    assert intervals >= batches / 2  # at most two batches per interval


def counted_interval(visitor: str, n_events: int) -> tuple[int, count.Interval, FakeEvent]:
    """(partition, interval, its one batch's event) of one visitor's events on site "one"."""
    events = workload(n_events, seed=4, sites=("one",))
    for event in events:
        event["visitor"] = visitor  # one partition: the key's
    partition = zlib.crc32(kafka_key("one", visitor)) % 8
    counter = BatchCounter(count.RULES, lambda key: None, lambda key: None, count.BUCKETS)
    interval = count.Interval(counter)
    result = counter.apply(partition, list(enumerate(events)))
    interval.buckets.update(result.buckets)
    interval.sessions.update(result.sessions)
    interval.seen = interval.applied = len(events)
    interval.last_offset = len(events) - 1
    held = FakeEvent()
    interval.events.append(held)  # type: ignore[arg-type]
    return partition, interval, held


async def test_the_timer_writes_an_interval_left_behind(harness: Harness) -> None:
    # An interval whose actor found more queued, and then nothing came (the queue was
    # cleared by a rebalance's resume): the timer writes it once no batch came for long.
    partition, interval, held = counted_interval("v", n_events=300)
    count.INTERVALS[partition] = interval
    interval.opened = 0.0  # long due: its actor would write it at its next batch
    await count.write_abandoned_intervals()
    assert count.INTERVALS[partition] is interval  # a batch came just now: left to its actor
    assert not held.acked
    interval.added = time.monotonic() - count.LIMITS.abandoned_ms / 1000
    await count.write_abandoned_intervals()
    assert partition not in count.INTERVALS
    assert held.acked
    assert count.STATS.offsets[partition] == interval.last_offset
    assert harness.session("one", "v") is not None


class FakeEvent:
    """What writing an interval uses of an event: ack, and being the current event."""

    def __init__(self) -> None:
        self.acked = False

    def ack(self) -> bool:
        self.acked = True
        return True


async def test_no_batch_is_acked_before_its_interval_is_written(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An acked batch may be committed: one acked while its interval is only in memory
    # would be lost by a crash.
    acked_before_write: list[bool] = []
    write = count._write

    async def watched(partition: int, interval: count.Interval) -> None:
        acked_before_write.extend(event.message.acked for event in interval.events)
        await write(partition, interval)

    monkeypatch.setattr(count, "_write", watched)
    count_batch = count.count_batch

    async def delivered(event: Any, *, more_queued: bool = False) -> None:
        # The worker's consumer holds a reference per reading agent until that agent's
        # stream acks (footfall.record_batches); agent.put() under test_context does not.
        event.message.incref()
        await count_batch(event, more_queued=more_queued)

    monkeypatch.setattr(count, "count_batch", delivered)
    events = workload(1000, seed=8)
    await harness.feed(events, batch_size=BATCH)
    assert len(acked_before_write) == -(-len(events) // BATCH)
    assert not any(acked_before_write)


async def test_a_revoked_partition_has_its_interval_written(harness: Harness) -> None:
    # Before the worker rejoins the group: a partition assigned back keeps its read
    # position, so a dropped interval's events would never be read again.
    partition, interval, held = counted_interval("w", n_events=200)
    kept = count.Interval(interval.counter)
    other = (partition + 1) % 8
    count.INTERVALS.update({partition: interval, other: kept})
    topic = events_topic.get_topic_name()
    try:
        revoked = {TP(topic, partition), TP("other", other)}
        await count.write_revoked_intervals(None, revoked, signal=None)
        assert dict(count.INTERVALS) == {other: kept}
        assert held.acked
        assert harness.session("one", "w") is not None
    finally:
        count.INTERVALS.clear()


async def test_a_counting_failure_stops_the_worker(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Faust would restart the actor on the same stream, past the batches it never wrote.
    crashed: list[BaseException] = []

    async def crash(reason: BaseException) -> None:
        crashed.append(reason)

    async def failing(event: Any, *, more_queued: bool = False) -> None:
        raise ValueError("counting bug")

    monkeypatch.setattr(app, "crash", crash)
    monkeypatch.setattr(count, "count_batch", failing)
    event = workload(1, seed=1)[0]
    record = Record(0, kafka_key(event["site"], event["visitor"]), orjson.dumps(event))
    await harness.agent.put(value=RecordBatch(TOPIC, 0, [record]), partition=0, wait=False)
    async with asyncio.timeout(5):
        while not crashed:  # noqa: ASYNC110 - polls the agent
            await asyncio.sleep(0.01)
    assert isinstance(crashed[0], ValueError)


async def test_a_batch_read_again_adds_nothing_to_events_seen_or_freshness(
    harness: Harness,
) -> None:
    # Faust seeking a partition back, or the partition coming back from another worker,
    # has the worker read batches it already wrote: counting skips their events by offset,
    # and so must the stats (tests and the benchmark wait on `events_seen`).
    events = workload(600, seed=23)
    seen, fresh = count.STATS.events_seen, len(count.STATS.freshness)
    await harness.feed(events[:400], batch_size=BATCH)
    assert count.STATS.events_seen - seen == 400
    harness.replay_from(250)  # offsets 250-399 again, then the rest for the first time
    await harness.feed(events[250:], batch_size=BATCH)
    assert count.STATS.events_seen - seen == len(events)  # about 600
    assert len(count.STATS.freshness) - fresh == len(events)
