"""The Kafka stack service and aiokafka against a real broker (`footfall stack up`).

Every test works on its own freshly created topic (and consumer group), so tests neither see
each other's records nor depend on what an earlier run left in the broker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import (  # type: ignore[import-untyped]
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]

from footfall.settings import Settings, get_settings
from footfall.stack.kafka import Kafka

pytestmark = pytest.mark.integration

TIMEOUT_S = 30.0


@pytest.fixture(scope="session")
def settings() -> Settings:
    settings = get_settings()
    reason = Kafka(settings).check()
    if reason is not None:
        pytest.fail(f"Kafka is not answering ({reason}); start it with `footfall stack up`")
    return settings


@pytest.fixture
def bootstrap(settings: Settings) -> str:
    return settings.kafka_bootstrap


async def _create_topic(bootstrap: str, partitions: int) -> str:
    name = f"footfall-test-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(name=name, num_partitions=partitions, replication_factor=1)],
            timeout_ms=10_000,
        )
    finally:
        await admin.close()
    errors = [error for error in response.topic_errors if error[1] != 0]
    assert not errors, f"creating {name} failed: {errors}"
    return name


async def _delete_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        await admin.delete_topics([name])
    finally:
        await admin.close()


@pytest.fixture
async def topic(bootstrap: str) -> AsyncIterator[str]:
    """A new single-partition topic (so offsets, and therefore order, are total)."""
    name = await _create_topic(bootstrap, partitions=1)
    yield name
    await _delete_topic(bootstrap, name)


@pytest.fixture
async def topic3(bootstrap: str) -> AsyncIterator[str]:
    """A new topic with three partitions."""
    name = await _create_topic(bootstrap, partitions=3)
    yield name
    await _delete_topic(bootstrap, name)


async def _consume_until(
    consumer: AIOKafkaConsumer, done: str | int, timeout_s: float = TIMEOUT_S
) -> list[ConsumerRecord]:
    """Records in arrival order until a record with value `done` arrives (str) or `done`
    records have arrived (int); fails the test on timeout with what was read so far."""
    records: list[ConsumerRecord] = []

    def finished() -> bool:
        if isinstance(done, int):
            return len(records) >= done
        return any(record.value == done.encode() for record in records)

    try:
        async with asyncio.timeout(timeout_s):
            while not finished():
                batches = await consumer.getmany(timeout_ms=500)
                for partition in sorted(batches, key=lambda tp: tp.partition):
                    records.extend(batches[partition])
    except TimeoutError:
        values = [record.value for record in records]
        pytest.fail(f"waited {timeout_s:.0f}s for {done!r}; read {len(records)}: {values}")
    return records


# --- the stack service ------------------------------------------------------------------------
def test_check_and_address(settings: Settings) -> None:
    service = Kafka(settings)
    assert service.check() is None
    assert service.address() == "127.0.0.1:9092"
    assert service.cluster_id_file.read_text().strip()


async def test_cluster_is_the_single_kraft_node(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    assert [(b["node_id"], b["host"], b["port"]) for b in cluster["brokers"]] == [
        (1, "127.0.0.1", 9092)
    ]
    assert cluster["controller_id"] == 1
    assert cluster["cluster_id"] == Kafka(get_settings()).cluster_id_file.read_text().strip()


# --- produce and consume ----------------------------------------------------------------------
async def test_produce_then_consume_in_order(bootstrap: str, topic: str) -> None:
    values = [f"event-{i}".encode() for i in range(50)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        offsets = [
            (await producer.send_and_wait(topic, value, key=b"site")).offset for value in values
        ]
    finally:
        await producer.stop()
    assert offsets == list(range(50))

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        records = await _consume_until(consumer, len(values))
        await consumer.commit()
        committed = await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()
    assert [record.value for record in records] == values
    assert {record.key for record in records} == {b"site"}
    assert committed == len(values)


async def test_idempotent_producer_keeps_per_key_order(bootstrap: str, topic3: str) -> None:
    sites = [f"site-{n}".encode() for n in range(6)]
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic3, f"{site.decode()}:{i}".encode(), key=site)
            for i in range(40)
            for site in sites
        ]
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    assert len({(m.partition, m.offset) for m in metadata}) == len(futures)

    consumer = AIOKafkaConsumer(
        topic3, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        records = await _consume_until(consumer, len(futures))
    finally:
        await consumer.stop()
    assert len(records) == len(futures)
    for site in sites:
        seen = [int(r.value.split(b":")[1]) for r in records if r.key == site]
        assert seen == list(range(40)), site
        assert len({r.partition for r in records if r.key == site}) == 1


# --- transactions -----------------------------------------------------------------------------
async def test_aborted_transaction_is_invisible_to_read_committed(
    bootstrap: str, topic: str
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=f"{topic}-txn", acks="all"
    )
    await producer.start()
    try:
        async with producer.transaction():
            for i in range(3):
                await producer.send(topic, f"committed-{i}".encode())
        await producer.begin_transaction()
        for i in range(4):
            await producer.send(topic, f"aborted-{i}".encode())
        await producer.flush()  # the aborted records really are in the log
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"committed-3")
            await producer.send(topic, b"end")
    finally:
        await producer.stop()

    async def read(isolation_level: str) -> list[bytes]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level=isolation_level,
        )
        await consumer.start()
        try:
            # One partition: everything before "end" has arrived once "end" has.
            return [record.value for record in await _consume_until(consumer, "end")]
        finally:
            await consumer.stop()

    committed = await read("read_committed")
    assert committed == [b"committed-0", b"committed-1", b"committed-2", b"committed-3", b"end"]
    uncommitted = await read("read_uncommitted")
    assert [v for v in uncommitted if v.startswith(b"aborted")] == [
        f"aborted-{i}".encode() for i in range(4)
    ]


async def test_offsets_committed_through_a_transaction(bootstrap: str, topic: str) -> None:
    """Consume-transform-produce as Faust's exactly_once does: input offsets and output
    records commit together, so the group resumes exactly after the committed batch."""
    source = topic
    sink = await _create_topic(bootstrap, partitions=1)
    group = f"{source}-group"
    try:
        seed = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await seed.start()
        try:
            for i in range(5):
                await seed.send_and_wait(source, f"in-{i}".encode())
        finally:
            await seed.stop()

        consumer = AIOKafkaConsumer(
            source,
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"{group}-txn")
        await consumer.start()
        await producer.start()
        try:
            records = await _consume_until(consumer, 5)
            async with producer.transaction():
                for record in records:
                    await producer.send(sink, record.value.upper())
                await producer.send_offsets_to_transaction(
                    {TopicPartition(source, 0): records[-1].offset + 1}, group
                )
        finally:
            await producer.stop()
            await consumer.stop()

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(group)
        finally:
            await admin.close()
        assert offsets[TopicPartition(source, 0)].offset == 5

        reader = AIOKafkaConsumer(
            sink,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await reader.start()
        try:
            out = await _consume_until(reader, 5)
        finally:
            await reader.stop()
        assert [record.value for record in out] == [f"IN-{i}".encode() for i in range(5)]
    finally:
        await _delete_topic(bootstrap, sink)
