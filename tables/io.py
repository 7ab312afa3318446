"""Reading and writing Faust tables from a batch, with the changelog sends in hand.

`table[key] = value` finds the partition of the write (local RocksDB and changelog) from
the event being processed, a context variable that Faust sets while a stream yields an
event. Writes made elsewhere (the archive's timer flush) or after the stream has moved on
need it set explicitly: `in_partition` sets it from a batch's event (one partition per
batch: agents run with isolated_partitions).

`put_many` hands a batch's records straight to the Kafka producer as record batches, waits
until Kafka has acknowledged them all, and only then writes them to the local store.
(Faust's own path, `table[key] = v`, queues each message in a buffer of 100 and stalls the
stream whenever it is full, which at thousands of session records per batch is most of the
time.) The order keeps the local store from ever holding a record the changelog lacks: a
batch cut short (an error, a rebalance, a kill) leaves the changelog ahead of the store at
most, and the persisted changelog offset, advanced only after the local writes, makes the
next recovery read those records back. The other order could leave a record only in
RocksDB, where a replay would find it and skip its events, and the changelog (what every
other worker recovers from) would never get it.

`uninterrupted` lets such a batch finish when its actor is stopped in the middle of it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from faust.streams import _current_event
from faust.types import TP, EventT

T = TypeVar("T")


@contextmanager
def in_partition(event: EventT[Any]) -> Iterator[None]:
    """Make table reads and writes address the partition of `event`."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def get(table: Any, key: bytes) -> bytes | None:
    """The stored value, or None."""
    value: bytes | None = table.data.get(key)
    return value


def put(table: Any, partition: int, key: bytes, value: bytes) -> Any:
    """Write one record locally and to the changelog (Faust's own, buffered path)."""
    table.data[key] = value
    return table.send_changelog(partition, key, value)


async def delete_many(table: Any, keys: Sequence[tuple[int, bytes]]) -> None:
    """Delete (partition, key) records locally and send their changelog tombstones."""
    store = table.data
    producer = table.app.producer
    topic = table.changelog_topic.get_topic_name()
    send = bool(producer.started)
    for partition, key in keys:
        store.pop(key, None)
        if send:
            await producer.send(topic, key, None, partition, None, None)


def partition_getter(table: Any, partition: int) -> Callable[[bytes], bytes | None]:
    """A fast `get` of one partition of a table's local store.

    With RocksDB, the partition's database itself: Faust's own path looks up the current
    event, a key index and its serializer layers on every read, which at one session read
    per event is a good part of the counting. Other stores (memory:// in unit tests) go
    through `get`.
    """
    db_for_partition = getattr(table.data, "_db_for_partition", None)
    if db_for_partition is None:
        return lambda key: get(table, key)
    getter: Callable[[bytes], bytes | None] = db_for_partition(partition).get
    return getter


async def put_many(
    table: Any, partition: int, items: Sequence[tuple[bytes, bytes]], *, send: bool = True
) -> None:
    """Send records to the changelog, wait for Kafka to have them all, then store them.

    In that order (module docstring). With `send=False` (no producer runs under
    agent.test_context()) the records are only stored. With RocksDB the records go straight
    to the partition's database (`partition_getter` says why); other stores need
    `in_partition`.
    """
    if not items:
        return
    store = table.data
    # The partition's database, taken now and held through the wait: a worker stopping
    # meanwhile drops Faust's references to its databases (and would reopen one, locked
    # by this handle, on the next lookup), but a batch being finished still writes here.
    db_for_partition = getattr(store, "_db_for_partition", None)
    db = db_for_partition(partition) if db_for_partition is not None else None
    last_offset = await _send_changelog(table, partition, items) if send else None
    if db is not None:
        db_put = db.put
        for key, value in items:
            db_put(key, value)
        if last_offset is not None:
            # What Faust's set_persisted_offset writes, into this same database.
            db_put(store.offset_key, str(last_offset).encode())
    else:
        for key, value in items:
            store[key] = value
        if last_offset is not None:
            tp = TP(table.changelog_topic.get_topic_name(), partition)
            store.set_persisted_offset(tp, last_offset)


async def _send_changelog(table: Any, partition: int, items: Sequence[tuple[bytes, bytes]]) -> int:
    """Send `items` to the table's changelog partition; the offset of the last, once acked."""
    # aiokafka's own producer: a record batch costs one call, where a send per record
    # (Faust's producer.send) costs a coroutine, a future and a signal each.
    producer = table.app.producer._ensure_producer()
    topic = table.changelog_topic.get_topic_name()
    futures: list[asyncio.Future[Any]] = []
    batch = producer.create_batch()
    for key, value in items:
        if batch.append(key=key, value=value, timestamp=None) is None:  # full
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            # A batch always takes its first record, whatever its size.
            batch.append(key=key, value=value, timestamp=None)
    last_count = batch.record_count()
    futures.append(await producer.send_batch(batch, topic, partition=partition))
    delivered = await asyncio.gather(*futures)
    # The metadata of a record batch has the offset of its first record.
    last: int = delivered[-1].offset + last_count - 1
    return last


async def uninterrupted(work: Awaitable[T]) -> T:
    """Await `work`; if the awaiting task is cancelled, let `work` finish first, then stop.

    Faust stops an actor (rebalance, shutdown) by cancelling its task and waiting for it.
    A batch's writes cut in the middle would leave some records written and others not;
    finishing them costs the stop a few milliseconds.
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with suppress(asyncio.CancelledError):
                await asyncio.shield(task)
        raise
