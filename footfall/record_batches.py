"""Delivering a topic to Faust agents one fetched batch at a time, not one event at a time.

Faust hands every Kafka record to its agents on its own: the consumer's fetch loop waits
on two futures per record (`wait_first(callback, suspend_flow)`), the conductor takes a
lock, builds an Event and queues it per channel, and the stream's iterator runs its
bookkeeping per event. Measured on this machine that is ~150 µs a record, a ceiling of
4-7k events/s for a worker that does nothing, where a bare aiokafka loop reads the same
topic at 70-160k/s (bench/stream.py).

The counting and archive agents (agents/count.py, agents/archive.py) work in batches
anyway, so for the topics named in `batched_topics` the fetch loop hands over each
partition's fetched records as one `RecordBatch` event instead, to the same channels Faust
would have used (the actor of that partition under `isolated_partitions`). Everything else
is Faust's: the consumer group and its assignment, table recovery and standbys, flow
control during rebalances, and commits: when every agent has acked a batch event, every
offset of the batch counts as acked. Records of other topics (changelogs during recovery)
go through Faust's own per-record path unchanged.

A batch goes out only when every agent reading its topic has an actor subscribed to its
partition. Faust builds its partition -> channels index once per rebalance, and an actor
that subscribes later is missing from it; handing the batch to the others would let their
acks commit records the missing one never saw (an archive without them). Such a partition
is read again from the same offset a little later, with the index rebuilt once every actor
is there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, cast

import faust
import orjson
from faust.events import Event
from faust.transport.consumer import ConsumerMessage  # type: ignore[attr-defined]
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, TransportT
from mode import ServiceT

log = logging.getLogger(__name__)


class KafkaRecord(Protocol):
    """What the agents read of a record (aiokafka's ConsumerRecord has it all)."""

    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


class RecordBatch:
    """Records of one partition in offset order, decoded once for every agent that reads them."""

    __slots__ = ("_envelopes", "highwater", "partition", "records", "topic")

    def __init__(
        self,
        topic: str,
        partition: int,
        records: Sequence[KafkaRecord],
        highwater: int | None = None,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.records = records
        #: The partition's end offset when the records were fetched (None: not known).
        self.highwater = highwater
        self._envelopes: list[tuple[int, Any]] | None = None

    @property
    def first_offset(self) -> int:
        return self.records[0].offset

    @property
    def last_offset(self) -> int:
        return self.records[-1].offset

    def __len__(self) -> int:
        return len(self.records)

    @property
    def more_in_partition(self) -> bool:
        """Whether the partition held records past this batch when it was fetched (a backlog)."""
        return self.highwater is not None and self.last_offset + 1 < self.highwater

    def envelopes(self) -> list[tuple[int, Any]]:
        """(offset, JSON value) per record; None for a value that is not JSON."""
        if self._envelopes is None:
            decoded: list[tuple[int, Any]] = []
            for record in self.records:
                try:
                    value = orjson.loads(record.value) if record.value is not None else None
                except orjson.JSONDecodeError:
                    value = None
                decoded.append((record.offset, value))
            self._envelopes = decoded
        return self._envelopes

    def __repr__(self) -> str:
        return (
            f"<RecordBatch {self.topic}[{self.partition}] {self.first_offset}..{self.last_offset}>"
        )


class BatchMessage(ConsumerMessage):
    """The message behind a RecordBatch event: acking it acks every offset of the batch."""

    __slots__ = ("batch",)

    def __init__(self, batch: RecordBatch, generation_id: int) -> None:
        super().__init__(
            batch.topic,
            batch.partition,
            batch.last_offset,
            0.0,
            0,
            None,
            None,
            None,
            None,
            0,
            0,
            TP(batch.topic, batch.partition),
            generation_id=generation_id,
        )
        self.batch = batch


class BatchingConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with the per-partition batch delivery of the module docstring."""

    def ack(self, message: Any) -> bool:
        if not isinstance(message, BatchMessage):
            return bool(super().ack(message))
        if message.acked:
            return False
        message.acked = True
        tp = message.tp
        committed = self._committed_offset[tp]
        first = message.batch.first_offset
        if committed is not None:
            first = max(first, committed)
        offsets = range(first, message.batch.last_offset + 1)
        if offsets:
            index = self._acked_index[tp]
            self._acked[tp].extend(o for o in offsets if o not in index)
            index.update(offsets)
            self._n_acked += len(offsets)
        return True

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover - a loop
        app = self.app
        batched: frozenset[str] = getattr(app, "batched_topics", frozenset())
        callback = self.callback
        read_offset = self._read_offset
        try:
            while not (self._stopped.is_set() or fetcher.should_stop):
                records, active = await self._wait_next_records(1.0)
                await self.sleep(0)
                if records is None or self.should_stop or not self.flow_active:
                    continue
                generation = app.consumer_generation_id
                for tp, tp_records in records.items():
                    if not self.flow_active or app.consumer_generation_id != generation:
                        break
                    if active is not None and tp not in active | self._buffered_partitions:
                        continue
                    # The next offset expected (Faust's seeks set it too); anything below
                    # was delivered already.
                    expected = read_offset[tp]
                    fresh = [r for r in tp_records if expected is None or r.offset >= expected]
                    if not fresh:
                        continue
                    highwater = self.highwater(tp)
                    app.monitor.track_tp_end_offset(tp, highwater)
                    if tp.topic in batched:
                        if not await self._deliver_batch(tp, fresh, generation, highwater):
                            await self._read_again_later(tp, fresh[0].offset)
                            continue
                    else:
                        await self._deliver_each(tp, fresh, callback)
                    read_offset[tp] = fresh[-1].offset + 1
                    commit_every = self._commit_every
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            # The fetcher is cancelled when the worker stops (as in Faust's own loop).
            if self.transport.app.should_stop:
                return
            raise

    async def _deliver_batch(
        self, tp: TP, records: list[Any], generation: int, highwater: int | None
    ) -> bool:
        """Hand the records to every reader's channel; False (nothing done) if one is missing."""
        index = self.app.topics._tp_index  # type: ignore[attr-defined]
        channels = list(index.get(tp, ()))
        if len(channels) < readers_of(self.app.agents.values(), tp.topic):
            return False
        batch = RecordBatch(tp.topic, tp.partition, records, highwater)
        message = BatchMessage(batch, generation)
        message.incref(len(channels))
        event = Event(self.app, None, batch, None, message)
        # A full queue waits for its actor; a rebalance (flow suspended) must not wait.
        for channel in channels:
            await self.wait_first(channel.queue.put(event), self.suspend_flow.wait())
        return True

    async def _read_again_later(self, tp: TP, offset: int) -> None:
        """Seek back to `offset`; rebuild the index if every reader's actor is there now."""
        await self.seek(tp, offset)
        if subscribed(self.app.topics, tp) >= readers_of(self.app.agents.values(), tp.topic):
            log.info("%s: every actor has subscribed now; routing it to them", tp)
            await self.app.topics.on_partitions_assigned(self.assignment())
        else:
            await asyncio.sleep(0.1)

    async def _deliver_each(self, tp: TP, records: Iterable[Any], callback: Any) -> None:
        for record in records:
            message = self._to_message(tp, record)
            await self.wait_first(callback(message), self.suspend_flow.wait())


class BatchingTransport(faust_aiokafka.Transport):
    Consumer = BatchingConsumer


class BatchingApp(faust.App):
    """A Faust app whose consumer delivers `batched_topics` as RecordBatch events."""

    def __init__(self, *args: Any, batched_topics: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batched_topics = frozenset(batched_topics)

    def _new_transport(self) -> TransportT:
        return cast(TransportT, BatchingTransport(self.conf.broker_consumer, self))


def readers_of(agents: Iterable[Any], topic: str) -> int:
    """How many of the agents read `topic` (each has one actor per partition it owns)."""
    return sum(1 for agent in agents if topic in getattr(agent.channel, "topics", ()))


def subscribed(channels: Iterable[Any], tp: TP) -> int:
    """How many channels take partition `tp`, as Faust's index counts them.

    An isolated actor's channel takes its own partitions; any other channel every
    partition of its topics.
    """
    return sum(
        1
        for channel in channels
        if (
            tp in channel.active_partitions
            if channel.active_partitions is not None
            else tp.topic in getattr(channel, "topics", ())
        )
    )


def batch_of(value: object) -> RecordBatch:
    """The RecordBatch an agent of a batched topic received (a clear error otherwise)."""
    if not isinstance(value, RecordBatch):
        raise TypeError(f"expected a RecordBatch from a batched topic, got {type(value)!r}")
    return value
