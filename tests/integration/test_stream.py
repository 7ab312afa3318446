"""The stream layer end to end: real Kafka, real InfluxDB, real `footfall worker` processes.

Each test has its own app id, topic, InfluxDB database and directories, publishes a
workload (>= 2000 events: sessions across the 30-minute gap and midnight, bounces,
duplicates, bots, two currencies, sampled visitors) as the gateway would, and compares
the tables (read from their changelogs, the state a worker recovers) and InfluxDB with a
reference computed independently from the same events, minute by minute: counts exact,
visitors within 2 %.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import aiohttp
import orjson
import pyarrow.dataset as pads
import pytest

from agents.commands import MARKER_NAME
from footfall.settings import get_settings
from footfall.sites.registry import add_site
from footfall.stack.influxdb import InfluxDB
from tests.integration.streamkit import (
    PARTITIONS,
    Gateway,
    StreamEnv,
    Worker,
    assert_local_tables_match_changelog,
    compare_influx,
    influx_minutes,
    produce,
    read_topic,
    table_buckets,
    wait_for,
)
from tests.reference import compare, merge_buckets, reference
from tests.workload import workload

pytestmark = pytest.mark.integration
TOLERANCE = 0.02


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()
        # Shown by pytest when the test failed: what the worker warned about.
        print(f"--- {worker.name}: warnings and errors")
        print("\n".join(worker.problems()[-40:]))


def start(env: StreamEnv, workers: list[Worker], name: str, port: int) -> Worker:
    worker = Worker(env, name, port)
    worker.start()
    workers.append(worker)
    return worker


async def owned(workers: list[Worker]) -> list[int]:
    """Partitions owned across the workers ([] until every worker owns some)."""
    parts: list[int] = []
    for worker in workers:
        stats = worker.stats()
        if stats is None or not stats["owned_partitions"]:
            return []
        parts.extend(stats["owned_partitions"])
    return sorted(parts)


async def wait_until_assigned(workers: list[Worker], seconds: float = 120) -> None:
    async def all_owned() -> bool:
        return await owned(workers) == [0, 1, 2, 3]

    try:
        await wait_for(all_owned, seconds, "all partitions assigned")
    except TimeoutError:
        raise AssertionError("\n\n".join(w.tail() for w in workers)) from None


async def assert_tables_match(env: StreamEnv, events: list[dict[str, object]]) -> None:
    ref = reference(events)
    problems: list[str] = []

    async def tables_agree() -> bool:
        nonlocal problems
        problems = compare(merge_buckets(await table_buckets(env)), ref, tolerance=TOLERANCE)
        return not problems

    try:
        await wait_for(tables_agree, 90, "tables to match the reference", interval=2)
    except TimeoutError:
        raise AssertionError("\n".join(problems[:80])) from None


async def assert_influx_matches(env: StreamEnv, events: list[dict[str, object]]) -> None:
    ref = reference(events)
    problems: list[str] = []

    async def influx_agrees() -> bool:
        nonlocal problems
        problems = compare_influx(await influx_minutes(env.influx_db), ref, TOLERANCE)
        return not problems

    try:
        await wait_for(influx_agrees, 90, "InfluxDB to match the reference", interval=2)
    except TimeoutError:
        raise AssertionError("\n".join(problems[:80])) from None


async def produce_slowly(topic: str, events: list[dict[str, object]]) -> None:
    """Publish in chunks of 300 with short pauses: a stream, not a backlog."""
    for i in range(0, len(events), 300):
        await produce(topic, events[i : i + 300])
        await asyncio.sleep(0.1)


def archived_offsets(env: StreamEnv) -> list[tuple[int, int]]:
    if not env.archive.exists():
        return []
    table = pads.dataset(env.archive, format="parquet", partitioning="hive").to_table(
        columns=["kafka_partition", "kafka_offset", "bot"]
    )
    return sorted(
        zip(
            table.column("kafka_partition").to_pylist(),
            table.column("kafka_offset").to_pylist(),
            strict=True,
        )
    )


async def test_one_worker_counts_archives_and_writes_influx(
    stream_env: StreamEnv, workers: list[Worker]
) -> None:
    worker = start(stream_env, workers, "w1", 16101)
    await wait_until_assigned(workers)
    events = workload(3000, seed=21)
    await produce(stream_env.topic, events)

    await assert_tables_match(stream_env, events)
    await assert_influx_matches(stream_env, events)
    # Every event is archived once, bots and retried sends included.
    await wait_for(lambda: len(archived_offsets(stream_env)) >= len(events), 30, "archive")
    offsets = archived_offsets(stream_env)
    assert len(offsets) == len(set(offsets)) == len(events)
    bots = pads.dataset(stream_env.archive, format="parquet", partitioning="hive").to_table(
        columns=["bot"], filter=pads.field("bot")
    )
    assert bots.num_rows == sum(1 for e in events if e["bot"])

    assert worker.stop() == 0
    marker = stream_env.root / "w1" / stream_env.app_id / MARKER_NAME
    assert not marker.exists()  # a clean stop: the next start keeps its local tables


async def test_sigkill_mid_stream_then_restart_gives_the_same_numbers(
    stream_env: StreamEnv, workers: list[Worker]
) -> None:
    events = workload(6000, seed=33)
    worker = start(stream_env, workers, "w1", 16111)
    await wait_until_assigned(workers)

    producing = asyncio.create_task(produce_slowly(stream_env.topic, events[:4000]))
    await wait_for(lambda: (worker.stats() or {}).get("events_seen", 0) >= 1500, 60, "1500 counted")
    worker.kill()  # SIGKILL, in the middle of the stream
    await producing
    await produce(stream_env.topic, events[4000:])

    worker.start()
    await wait_until_assigned(workers)
    await assert_tables_match(stream_env, events)
    await assert_influx_matches(stream_env, events)
    assert "did not stop cleanly" in worker.log.read_text()
    # Nothing lost from the archive either (an overlap after a crash is allowed).
    await wait_for(
        lambda: len(set(archived_offsets(stream_env))) == len(events), 30, "all archived"
    )


async def test_influxdb_outage_loses_no_minute(
    stream_env: StreamEnv, workers: list[Worker]
) -> None:
    settings = get_settings()
    influx = InfluxDB(settings)
    worker = start(stream_env, workers, "w1", 16121)
    await wait_until_assigned(workers)
    events = workload(3000, seed=45)
    await produce(stream_env.topic, events[:1000])
    await assert_influx_matches(stream_env, events[:1000])

    influx.stop()
    try:
        await produce(stream_env.topic, events[1000:])
        await wait_for(
            lambda: (worker.stats() or {}).get("influx_failures", 0) >= 2, 60, "failed writes"
        )
        await assert_tables_match(stream_env, events)
    finally:
        influx.start()
    await assert_influx_matches(stream_env, events)


async def test_two_workers_split_the_partitions_and_agree(
    stream_env: StreamEnv, workers: list[Worker]
) -> None:
    first = start(stream_env, workers, "w1", 16131)
    second = start(stream_env, workers, "w2", 16132)
    await wait_until_assigned(workers)  # each of them owning some
    shares = [set((w.stats() or {}).get("owned_partitions", [])) for w in (first, second)]
    assert not shares[0] & shares[1]
    events = workload(3000, seed=57)
    await produce(stream_env.topic, events[:1500])
    await assert_tables_match(stream_env, events[:1500])
    # One leaves (a clean stop): the other takes its partitions over and goes on.
    assert second.stop() == 0
    workers.remove(second)
    await wait_until_assigned(workers)
    await produce(stream_env.topic, events[1500:])
    await assert_tables_match(stream_env, events)
    await assert_influx_matches(stream_env, events)
    await wait_for(
        lambda: len(set(archived_offsets(stream_env))) == len(events), 60, "all archived"
    )


async def test_a_clean_restart_keeps_local_tables_and_counts_on(
    stream_env: StreamEnv, workers: list[Worker]
) -> None:
    worker = start(stream_env, workers, "w1", 16151)
    await wait_until_assigned(workers)
    events = workload(2400, seed=81)
    await produce(stream_env.topic, events[:1200])
    await assert_tables_match(stream_env, events[:1200])
    assert worker.stop() == 0
    await assert_local_tables_match_changelog(stream_env, "w1", range(PARTITIONS))
    worker.start()
    await wait_until_assigned(workers)
    await produce(stream_env.topic, events[1200:])
    await assert_tables_match(stream_env, events)
    await assert_influx_matches(stream_env, events)
    assert "did not stop cleanly" not in worker.log.read_text()
    await wait_for(
        lambda: len(set(archived_offsets(stream_env))) == len(events), 60, "all archived"
    )
    assert worker.stop() == 0
    await assert_local_tables_match_changelog(stream_env, "w1", range(PARTITIONS))


async def test_a_worker_joining_mid_stream_changes_no_number(
    stream_env: StreamEnv, workers: list[Worker]
) -> None:
    """Partitions move while batches are under way: what was half done is finished."""
    first = start(stream_env, workers, "w1", 16161)
    await wait_until_assigned(workers)
    events = workload(6000, seed=93)
    producing = asyncio.create_task(produce_slowly(stream_env.topic, events))
    await wait_for(lambda: (first.stats() or {}).get("events_seen", 0) >= 1000, 60, "1000 seen")
    second = start(stream_env, workers, "w2", 16162)  # a rebalance, mid-stream
    await producing
    await wait_until_assigned(workers)
    await assert_tables_match(stream_env, events)
    await assert_influx_matches(stream_env, events)
    owned = {w.name: (w.stats() or {}).get("owned_partitions", []) for w in (first, second)}
    for worker in (first, second):
        assert worker.stop() == 0
        await assert_local_tables_match_changelog(stream_env, worker.name, owned[worker.name])


BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)


def wire_event(envelope: dict[str, object]) -> dict[str, object]:
    """What an emitter sent for a published envelope (the gateway adds the rest)."""
    event = {k: envelope[k] for k in ("site", "name", "visitor", "id", "ts") if envelope[k]}
    if envelope["url"]:
        event["url"] = envelope["url"]
    if envelope["revenue"]:
        event["revenue"] = envelope["revenue"]
    return event


async def test_events_posted_through_the_gateway_are_counted(
    stream_env: StreamEnv, workers: list[Worker]
) -> None:
    sites_topic = f"fftest.{stream_env.tag}.sites"
    settings = get_settings().model_copy(update={"sites_topic": sites_topic})
    events = [e for e in workload(2400, seed=69) if e["sample_rate"] == 1]
    for site in sorted({str(e["site"]) for e in events}):
        await add_site(settings, site, domains=[f"{site}.example"])
    gateway = Gateway(stream_env, 16142, sites_topic)
    gateway.start()
    try:
        await wait_for(gateway.ready, 60, "gateway ready")
        start(stream_env, workers, "w1", 16141)
        await wait_until_assigned(workers)
        # Requests of up to 50 events in publishing order; bots come with a crawler's UA.
        async with aiohttp.ClientSession() as session:
            for _, group in itertools.groupby(events, key=lambda e: bool(e["bot"])):
                chunk = list(group)
                for i in range(0, len(chunk), 50):
                    body = {"events": [wire_event(e) for e in chunk[i : i + 50]]}
                    agent = BOT_UA if chunk[0]["bot"] else BROWSER_UA
                    async with session.post(
                        f"http://127.0.0.1:{gateway.port}/v1/collect",
                        data=orjson.dumps(body),
                        headers={"Content-Type": "application/json", "User-Agent": agent},
                    ) as resp:
                        assert resp.status == 202, await resp.text()
    finally:
        gateway.stop()
    published = await read_topic(stream_env.topic)
    assert len(published) == len(events) >= 2000
    assert sum(1 for e in published if e["bot"]) == sum(1 for e in events if e["bot"])
    await assert_tables_match(stream_env, published)
    await assert_influx_matches(stream_env, published)
