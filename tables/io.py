"""Reading and writing Faust tables from a batch, with the changelog sends in hand.

`table[key] = value` finds the partition of the write (local RocksDB and changelog) from
the event being processed, a context variable that Faust sets while a stream yields an
event. Writes made elsewhere (the archive's timer flush) or after the stream has moved on
need it set explicitly: `in_partition` sets it from a batch's event (one partition per
batch: agents run with isolated_partitions).

`put_many` writes a batch's records locally and hands their changelog messages straight to
the Kafka producer, returning the delivery futures: a caller can wait until Kafka has some
writes before it makes others that depend on them. (Faust's own path, `table[key] = v`,
queues each message in a buffer of 100 and stalls the stream whenever it is full, which
at thousands of session records per batch is most of the time.) When the deliveries are
acknowledged the store's persisted changelog offset advances, as Faust's own sends do, so
a clean restart reads only the changelog tail.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event
from faust.types import TP, EventT


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
) -> list[asyncio.Future[Any]]:
    """Write records locally and send their changelog messages, in Kafka record batches.

    Returns the delivery futures, one per record batch (empty with `send=False`: no
    producer runs under agent.test_context()). The last one also advances the store's
    persisted offset. With RocksDB the records go straight to the partition's database
    (`partition_getter` says why); other stores need `in_partition`.
    """
    store = table.data
    db_for_partition = getattr(store, "_db_for_partition", None)
    if db_for_partition is not None:
        db_put = db_for_partition(partition).put
        for key, value in items:
            db_put(key, value)
    else:
        for key, value in items:
            store[key] = value
    if not send or not items:
        return []
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
    if batch.record_count():
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    tp = TP(topic, partition)

    def persisted(fut: asyncio.Future[Any]) -> None:
        # A batch's metadata has its first offset: a recovery may re-read a few records.
        if not fut.cancelled() and fut.exception() is None:
            store.set_persisted_offset(tp, fut.result().offset)

    futures[-1].add_done_callback(persisted)
    return futures
