"""The archive agent: every event (bots included) into hour-partitioned Parquet files.

Events are buffered per partition and written (footfall.archive) when the buffer holds
`archive_flush_events` events or its oldest is `archive_flush_s` old. Until its file is
written an event stays unacked (the agent holds a reference on its message), so the
consumer cannot commit past it and a crash replays it. After a write the partition's
progress record (the last archived offset) is stored, and replayed events at or below it
are skipped. A buffer of a partition that is revoked is dropped unwritten: its events are
not committed, so the partition's next owner archives them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from faust import Stream
from faust.types import EventT, StreamT

from agents.topics import events_topic
from footfall.app import app
from footfall.archive import ArchiveWriter
from footfall.settings import get_settings
from tables import io
from tables.definitions import archive_progress_by_partition

log = logging.getLogger(__name__)
_settings = get_settings()


def _progress_key(partition: int) -> bytes:
    return str(partition).encode()


@dataclass
class _Buffer:
    events: list[EventT[bytes]] = field(default_factory=list)
    rows: list[tuple[int, int, Mapping[str, Any]]] = field(default_factory=list)
    since: float = field(default_factory=time.monotonic)


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
        self.skipped = 0

    def progress(self, partition: int) -> int:
        raw = io.get(archive_progress_by_partition, _progress_key(partition))
        return int(raw) if raw is not None else -1

    def add(self, partition: int, events: Sequence[EventT[bytes]]) -> bool:
        """Buffer events not archived yet; True when the buffer is due for writing."""
        done = self.progress(partition)
        buffer = self.buffers.setdefault(partition, _Buffer())
        for event in events:
            offset = event.message.offset
            if offset <= done:
                continue
            try:
                envelope = orjson.loads(event.value)
            except orjson.JSONDecodeError:
                envelope = None
            if not isinstance(envelope, dict) or not isinstance(envelope.get("event_time"), int):
                self.skipped += 1
                log.warning("events.raw p%d o%d: not an envelope, not archived", partition, offset)
                continue
            event.message.incref()  # released in flush(), once the file is written
            buffer.events.append(event)
            buffer.rows.append((partition, offset, envelope))
        return len(buffer.rows) >= self.flush_events

    def due(self) -> list[int]:
        now = time.monotonic()
        return [p for p, b in self.buffers.items() if b.rows and now - b.since >= self.flush_s]

    async def flush(self, partition: int) -> None:
        async with self.lock:
            buffer = self.buffers.pop(partition, None)
            if buffer is None or not buffer.rows:
                return
            paths = await asyncio.to_thread(self.writer.write, partition, buffer.rows)
            last = buffer.events[-1]
            with io.in_partition(last):
                io.put(
                    archive_progress_by_partition,
                    partition,
                    _progress_key(partition),
                    str(last.message.offset).encode(),
                )
            for event in buffer.events:
                event.ack()
            self.files_written += len(paths)
            self.events_archived += len(buffer.rows)

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the buffers of revoked partitions (their events are replayed elsewhere)."""
        for partition in partitions:
            self.buffers.pop(partition, None)


archiver = Archiver(
    _settings.archive_url, _settings.archive_flush_events, _settings.archive_flush_s
)


@app.agent(events_topic, isolated_partitions=True)
async def archive_events(stream: StreamT[bytes]) -> None:
    """Write every event, bots included, to the hour-partitioned Parquet archive."""
    assert isinstance(stream, Stream)  # take_events is not on StreamT
    async for batch in stream.take_events(
        _settings.batch_max_events, within=_settings.batch_within_s
    ):
        by_partition: dict[int, list[EventT[bytes]]] = {}
        for event in batch:
            by_partition.setdefault(event.message.partition, []).append(event)
        for partition, events in by_partition.items():
            if archiver.add(partition, events):
                await archiver.flush(partition)


async def flush_archive() -> None:
    """Write archive buffers whose oldest event waited `archive_flush_s`."""
    for partition in archiver.due():
        await archiver.flush(partition)


app.timer(interval=1.0)(flush_archive)
