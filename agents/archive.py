"""The archive agent: every event (bots included) into hour-partitioned Parquet files.

Events are buffered per partition and written (footfall.archive) when the buffer holds
`archive_flush_events` events or its oldest is `archive_flush_s` old. After a write the
partition's progress record (the last archived offset) is stored. Every write covers the
offsets from the progress on without a hole: offsets missing from the buffer (events
committed by the counting agent before a crash, a rebalance that dropped a buffer, events
Faust cleared from its queues in a rebalance) are read back from Kafka first. So the
archive does not depend on when Faust acks or commits: it is idempotent by offsets, like
counting. Events at or below the progress, or already buffered, are skipped. The buffer of
a partition that a rebalance gives to another worker is dropped (agents/upkeep.py); the
new owner reads from that partition's progress on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from faust.types import EventT, StreamT

from agents.metrics import METRICS
from agents.topics import events_topic
from footfall.app import app
from footfall.archive import ArchiveRow, ArchiveWriter, archive_row, load_conversions
from footfall.record_batches import RecordBatch, batch_of
from footfall.settings import get_settings
from tables import io
from tables.definitions import archive_progress_by_partition

log = logging.getLogger(__name__)
_settings = get_settings()


def _progress_key(partition: int) -> bytes:
    return str(partition).encode()


@dataclass
class _Buffer:
    last_event: EventT[RecordBatch] | None = None  # to address the partition's table writes
    # Each event as its record's JSON (and its props): the decoded envelopes, shared with
    # the counting agent, are let go with their batch (footfall.archive).
    rows: list[ArchiveRow] = field(default_factory=list)
    since: float = field(default_factory=time.monotonic)

    @property
    def last_offset(self) -> int:
        return self.rows[-1][0] if self.rows else -1


def _is_envelope(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("event_time"), int)


def _envelope(value: bytes | None) -> Mapping[str, Any] | None:
    try:
        envelope = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        return None
    return envelope if _is_envelope(envelope) else None


class Archiver:
    """Per-partition buffers of events awaiting their archive file."""

    def __init__(self, url: str, flush_events: int, flush_s: float) -> None:
        self.writer = ArchiveWriter(url)
        self.flush_events = flush_events
        self.flush_s = flush_s
        self.buffers: dict[int, _Buffer] = {}
        self.lock = asyncio.Lock()
        self.files_written = 0
        self.events_archived = 0
        self.events_read_back = 0
        self.skipped = 0

    def progress(self, partition: int) -> int:
        raw = io.get(archive_progress_by_partition, _progress_key(partition))
        return int(raw) if raw is not None else -1

    def add(self, event: EventT[RecordBatch]) -> bool:
        """Buffer a batch's events not archived yet; True when the buffer is due for writing."""
        batch = batch_of(event.value)
        partition = batch.partition
        buffer = self.buffers.setdefault(partition, _Buffer())
        done = max(self.progress(partition), buffer.last_offset)
        rows = buffer.rows
        for record, (offset, envelope) in zip(batch.records, batch.envelopes(), strict=True):
            if offset <= done:
                continue  # archived, or buffered already (Faust delivered it again)
            if not _is_envelope(envelope):
                self.skipped += 1
                log.warning("events.raw p%d o%d: not an envelope, not archived", partition, offset)
                continue
            rows.append(archive_row(offset, envelope, record.value))
            done = offset
        buffer.last_event = event
        return len(rows) >= self.flush_events

    def due(self) -> list[int]:
        now = time.monotonic()
        return [p for p, b in self.buffers.items() if b.rows and now - b.since >= self.flush_s]

    async def flush(self, partition: int) -> None:
        async with self.lock:
            buffer = self.buffers.pop(partition, None)
            if buffer is None or not buffer.rows or buffer.last_event is None:
                return
            rows = await self._without_holes(partition, self.progress(partition), buffer.rows)
            started = time.perf_counter()
            try:
                paths = await asyncio.to_thread(self.writer.write, partition, rows)
            except Exception:
                METRICS.sink_write_errors.labels("archive").inc()
                raise
            METRICS.sink_write_seconds.labels("archive").observe(time.perf_counter() - started)
            with io.in_partition(buffer.last_event):
                io.put(
                    archive_progress_by_partition,
                    partition,
                    _progress_key(partition),
                    str(rows[-1][0]).encode(),
                )
            self.files_written += len(paths)
            self.events_archived += len(rows)
            METRICS.events_processed.labels("archive_events").inc(len(rows))

    async def _without_holes(
        self, partition: int, progress: int, rows: list[ArchiveRow]
    ) -> list[ArchiveRow]:
        """`rows` with the offsets missing since `progress` read back from Kafka."""
        complete: list[ArchiveRow] = []
        expected = progress + 1
        for row in rows:
            offset = row[0]
            if offset > expected:
                complete.extend(await self._read_back(partition, expected, offset))
            complete.append(row)
            expected = offset + 1
        return complete

    async def _read_back(self, partition: int, start: int, end: int) -> list[ArchiveRow]:
        """Events of offsets [start, end) of a partition, straight from Kafka."""
        tp = TopicPartition(events_topic.get_topic_name(), partition)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=_settings.kafka_bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        rows: list[ArchiveRow] = []
        try:
            consumer.assign([tp])
            consumer.seek(tp, start)
            while await consumer.position(tp) < end:
                batches = await consumer.getmany(tp, timeout_ms=1000)
                for record in batches.get(tp, []):
                    if record.offset >= end:
                        break
                    envelope = _envelope(record.value)
                    if envelope is None:
                        self.skipped += 1
                        continue
                    rows.append(archive_row(record.offset, envelope, record.value))
        finally:
            await consumer.stop()
        self.events_read_back += len(rows)
        log.info("Archive p%d: read back offsets %d..%d from Kafka", partition, start, end - 1)
        return rows

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the buffers of partitions now owned elsewhere (archived there)."""
        for partition in partitions:
            self.buffers.pop(partition, None)


archiver = Archiver(
    _settings.archive_url, _settings.archive_flush_events, _settings.archive_flush_s
)
load_conversions()  # at the worker's start, not in the middle of its first write


@app.agent(events_topic, isolated_partitions=True)
async def archive_events(stream: StreamT[RecordBatch]) -> None:
    """Write every event, bots included, to the hour-partitioned Parquet archive.

    Each stream event is one partition's fetched records (footfall.record_batches).
    """
    async for event in stream.events():
        if archiver.add(event):
            await archiver.flush(batch_of(event.value).partition)


async def flush_archive() -> None:
    """Write archive buffers whose oldest event waited `archive_flush_s`."""
    for partition in archiver.due():
        await archiver.flush(partition)


app.timer(interval=1.0)(flush_archive)
