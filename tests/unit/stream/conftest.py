"""The counting agent under `agent.test_context()`, with the memory:// store (no broker)."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import orjson
import pytest
from faust.exceptions import AlreadyConfiguredWarning
from yarl import URL

from agents import count
from footfall.app import app
from footfall.events import kafka_key
from footfall.record_batches import RecordBatch
from footfall.settings import get_settings
from tables.buckets import Bucket, parse_bucket_key
from tables.definitions import minutes_by_site, sessions_by_visitor
from tables.sessions import Session

TOPIC = get_settings().events_topic


class Record:
    """A Kafka record as the agents read it (footfall.record_batches.KafkaRecord)."""

    def __init__(self, offset: int, key: bytes, value: bytes) -> None:
        self.offset = offset
        self.key = key
        self.value = value
        self.headers: tuple[tuple[str, bytes], ...] = ()


class Harness:
    """Feeds envelopes to the agent, as the worker's consumer would, and reads its tables."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.next_offset: dict[int, int] = {}

    async def feed(
        self, events: Iterable[Mapping[str, Any]], *, partition: int = 0, batch_size: int = 300
    ) -> None:
        """Put events in RecordBatches (offsets continue from the last put); wait until counted."""
        values = [(kafka_key(e["site"], e["visitor"]), orjson.dumps(e)) for e in events]
        await self.feed_values(values, partition=partition, batch_size=batch_size)

    async def feed_values(
        self, values: Iterable[tuple[bytes, bytes]], *, partition: int = 0, batch_size: int = 300
    ) -> None:
        """Put (key, raw value) records in RecordBatches; wait until counted."""
        offset = self.next_offset.get(partition, 0)
        records = []
        for key, value in values:
            records.append(Record(offset, key, value))
            offset += 1
        self.next_offset[partition] = offset
        for start in range(0, len(records), batch_size):
            # Every record of the call is in the partition already, as a fetch reports it
            # (its high watermark): a backlog, whatever the worker's read-ahead.
            batch = RecordBatch(
                TOPIC, partition, records[start : start + batch_size], highwater=offset
            )
            await self.agent.put(value=batch, partition=partition, wait=False)
        async with asyncio.timeout(10):
            while count.STATS.offsets.get(partition, -1) < offset - 1:  # noqa: ASYNC110 - polls the agent
                await asyncio.sleep(0.01)

    def replay_from(self, offset: int, partition: int = 0) -> None:
        """Make the next puts reuse offsets from `offset` on, as a restart would."""
        self.next_offset[partition] = offset

    def buckets(self) -> dict[tuple[str, int, int], Bucket]:
        return {
            parse_bucket_key(key): Bucket.decode(value, count.RULES.sketch)
            for key, value in minutes_by_site.data.items()
        }

    def raw_buckets(self) -> dict[bytes, bytes]:
        return dict(minutes_by_site.data.items())

    def session(self, site: str, visitor: str) -> Session | None:
        raw = sessions_by_visitor.data.get(kafka_key(site, visitor))
        return Session.decode(raw) if raw is not None else None


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    app.finalize()
    if app.conf.store.scheme != "memory":
        # Tables open their store on first use, which has not happened in this process.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AlreadyConfiguredWarning)
            app.conf.store = URL("memory://")
    app.flow_control.resume()
    minutes_by_site.data.clear()
    sessions_by_visitor.data.clear()
    count.STATS.offsets.clear()
    count.sink.forget(list(count.sink._dirty))
    async with count.count_events.test_context() as agent:
        yield Harness(agent)
