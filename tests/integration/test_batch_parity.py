"""The batch layer against the stream layer, on the same events (real Kafka, worker, HBase).

1. Parity: a `footfall worker` counts ~2,400 events (sessions across the timeout and
   midnight, retried sends, bots, rate-4 visitors, two currencies, edge cases) and archives
   them; the batch job then recomputes both days from that archive. Every minute and
   breakdown row agrees (counts and sums exactly, visitors within 2 %; `exit_page` visitors
   may only be higher in the stream, docs/stream.md), and so does every InfluxDB point the
   batch rewrote over the stream's, series by series.
2. Correction: the worker runs with a wrong setting (a 10-minute session timeout);
   `footfall reprocess` with the right one (30 minutes) repairs both days: HBase holds the
   right numbers, `batch_until` moves past them, and InfluxDB answers the right numbers.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pyarrow.dataset as pads
import pytest
from pyspark.sql import SparkSession

import batch.commands
import tests.reference
from batch import hbase
from batch.commands import main as reprocess_main
from batch.days import day_of_ms
from batch.markers import BatchRange
from batch.reprocess import Reprocessor
from batch.store import BatchStore, Row, merge_visitors
from footfall.influx import InfluxClient
from footfall.metrics import DAY_MS
from footfall.series import MEASUREMENT
from footfall.settings import Settings, get_settings
from footfall.visitors import SketchConfig
from tests.integration import batchkit
from tests.integration.streamkit import (
    StreamEnv,
    Worker,
    compare_influx,
    influx_minutes,
    produce,
    table_buckets,
    wait_for,
)
from tests.reference import Merged, compare, merge_buckets, reference

pytestmark = pytest.mark.integration

MIDNIGHT = batchkit.batch_midnight()
DAY1, DAY2 = day_of_ms(MIDNIGHT - DAY_MS), day_of_ms(MIDNIGHT)
LO, HI = MIDNIGHT - DAY_MS, MIDNIGHT + DAY_MS
TOLERANCE = 0.02
COUNTERS = ("events", "pageviews", "transactions", "sessions", "bounces", "duration_sum")


@pytest.fixture(scope="session")
def spark() -> SparkSession:
    return batchkit.spark_session()


@pytest.fixture
def batch_settings(stream_env: StreamEnv) -> Iterator[Settings]:
    """The batch job on the stream's archive, writing the stream's InfluxDB database."""
    settings = batchkit.isolated_settings(stream_env.archive, influx_db=stream_env.influx_db)
    yield settings
    connection = hbase.connect(settings)
    try:
        hbase.drop_tables(connection)
    finally:
        connection.close()


async def run_stream(
    env: StreamEnv, events: list[dict[str, Any]], port: int, **extra: str
) -> Worker:
    """A worker counts and archives `events`; returned stopped, once both are complete."""
    worker = Worker(env, "w1", port, **extra)
    worker.start()
    try:

        async def assigned() -> bool:
            stats = worker.stats()
            return bool(stats) and len(stats["owned_partitions"]) == 4  # type: ignore[index]

        await wait_for(assigned, 120, "partitions assigned")
        await produce(env.topic, events)
        await wait_for(
            lambda: (worker.stats() or {}).get("events_seen", 0) >= len(events), 120, "counted"
        )
        await wait_for(lambda: archived(env) >= len(events), 60, "archived")
        await asyncio.sleep(2 * float(env.env("w1", port)["FOOTFALL_BATCH_WITHIN_S"]) + 2)
    except Exception:
        print(worker.tail())
        raise
    finally:
        assert worker.stop() == 0
    return worker


def archived(env: StreamEnv) -> int:
    if not env.archive.exists():
        return 0
    return int(pads.dataset(env.archive, format="parquet", partitioning="hive").count_rows())


async def influx_series(db: str) -> dict[tuple[str, str, int], dict[str, float]]:
    """Every `minute` point of `db` by (site, partition, time)."""
    async with InfluxClient.from_settings(get_settings()) as client:
        series = await client.query(f'SELECT * FROM "{MEASUREMENT}"', db=db)
    points: dict[tuple[str, str, int], dict[str, float]] = {}
    for one in series:
        for values in one["values"]:
            row = dict(zip(one["columns"], values, strict=True))
            key = (row.pop("site"), row.pop("partition"), row.pop("time"))
            points[key] = {k: v for k, v in row.items() if v is not None}
    return points


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= max(TOLERANCE * max(a, b), 0.5)


def compare_layers(
    stream: dict[tuple[str, int], Merged], settings: Settings, sites: list[str]
) -> list[str]:
    """Batch rows in HBase against the stream's buckets summed over partitions."""
    sketch = SketchConfig(settings.hll_lg_k, settings.hll_type)
    problems: list[str] = []
    with BatchStore(settings) as store:
        for site in sites:
            rows = {row.minute: row for row in store.minutes(site, LO, HI)}
            mine = {m: merged for (s, m), merged in stream.items() if s == site and LO <= m < HI}
            for minute in sorted(set(rows) | set(mine)):
                row, merged = rows.get(minute), mine.get(minute, Merged())
                if row is None:
                    problems.append(f"{site} {minute}: no batch row")
                    continue
                for name in COUNTERS:
                    if row.counters.get(name, 0) != merged.counts[name]:
                        problems.append(
                            f"{site} {minute} {name}: batch {row.counters.get(name)} "
                            f"!= stream {merged.counts[name]}"
                        )
                if +Counter(row.revenue) != +merged.revenue:
                    problems.append(f"{site} {minute} revenue: {row.revenue} != {merged.revenue}")
                visitors = merge_visitors(sketch, {r: [i] for r, i in row.sketches.items()})
                if not _close(visitors.estimate(), merged.visitors):
                    problems.append(f"{site} {minute} visitors: {visitors.estimate()}")
                problems += _compare_rows(store, sketch, site, minute, merged)
    return problems


def _compare_rows(
    store: BatchStore, sketch: SketchConfig, site: str, minute: int, merged: Merged
) -> list[str]:
    problems: list[str] = []
    batch_rows: dict[tuple[str, str], Row] = {}
    for dim in {d for d, _ in merged.rows} | {"page", "event"}:
        for row in store.breakdown(site, dim, minute, minute + 60_000):
            batch_rows[(dim, row.value)] = row
    for key in sorted(set(batch_rows) | set(merged.rows)):
        counts, stream_visitors = merged.rows.get(key, (Counter(), 0.0))
        found = batch_rows.get(key)
        if not any(counts.values()) and found is None:
            continue  # a row the stream emptied (an exit page the session moved away from)
        if found is None:
            problems.append(f"{site} {minute} {key}: no batch row")
            continue
        row = found
        for name, n in row.counters.items():
            if n != counts[name]:
                problems.append(f"{site} {minute} {key} {name}: batch {n} != stream {counts[name]}")
        visitors = merge_visitors(sketch, {r: [i] for r, i in row.sketches.items()}).estimate()
        if key[0] == "exit_page":
            if stream_visitors < visitors * (1 - TOLERANCE) - 0.5:
                problems.append(f"{site} {minute} {key} visitors: {stream_visitors} < {visitors}")
        elif not _close(visitors, stream_visitors):
            problems.append(f"{site} {minute} {key} visitors: {visitors} !~ {stream_visitors}")
    return problems


async def test_stream_and_batch_agree(
    stream_env: StreamEnv, batch_settings: Settings, spark: SparkSession
) -> None:
    events = batchkit.batch_events()
    sites = sorted({e["site"] for e in events})
    await run_stream(stream_env, events, 16201)
    buckets = merge_buckets(await table_buckets(stream_env))
    problems = compare(buckets, reference(events), tolerance=TOLERANCE)
    assert not problems, "the stream disagrees with the reference:\n" + "\n".join(problems[:20])
    before = await influx_series(stream_env.influx_db)

    job = Reprocessor(batch_settings, spark)
    for day in (DAY1, DAY2):  # in a thread: the job runs its own event loop for InfluxDB
        await asyncio.to_thread(job.run_day, day, None, dry_run=False)

    problems = compare_layers(buckets, batch_settings, sites)
    assert not problems, "\n".join(problems[:30])
    # The batch's points replaced the stream's, series by series, with the same numbers.
    after = await influx_series(stream_env.influx_db)
    assert set(after) == set(before)
    for key, fields in before.items():
        assert set(after[key]) == set(fields), key
        for name, value in fields.items():
            if name == "visitors":
                assert _close(after[key][name], value), (key, after[key][name], value)
            else:
                assert after[key][name] == value, (key, name, after[key][name], value)


async def test_reprocess_corrects_a_stream_run_with_a_wrong_timeout(
    stream_env: StreamEnv,
    batch_settings: Settings,
    spark: SparkSession,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    events = batchkit.batch_events()
    sites = sorted({e["site"] for e in events})
    right = reference(events)
    with monkeypatch.context() as patch:
        patch.setattr(tests.reference, "TIMEOUT_MS", 10 * 60_000)
        wrong = reference(events)
    assert compare_influx({}, wrong) != compare_influx({}, right)  # the setting matters here

    await run_stream(stream_env, events, 16211, FOOTFALL_SESSION_TIMEOUT_S="600")
    in_days = {k: v for k, v in right.items() if LO <= k[1] < HI}
    assert not compare_influx(await influx_minutes(stream_env.influx_db), wrong)
    assert compare_influx(await influx_minutes(stream_env.influx_db), in_days)
    with BatchStore(batch_settings) as store:
        connection = hbase.connect(batch_settings)
        hbase.ensure_tables(connection)
        connection.close()
        assert store.batch_range("alpha") is None  # answered from the stream so far

    monkeypatch.setattr(batch.commands, "get_settings", lambda: batch_settings)
    assert batch_settings.session_timeout_s == 1800
    args = ["reprocess", "--from", DAY1.isoformat(), "--to", DAY2.isoformat(), "--dry-run"]
    assert await asyncio.to_thread(reprocess_main, args) == 0
    dry = capsys.readouterr().out.splitlines()
    sessions = [line.split() for line in dry if " sessions " in f" {line} "]
    assert any(int(row[5]) < 0 for row in sessions)  # fewer sessions with 30 minutes
    assert {row[6] for row in sessions} == {"influx"}

    assert await asyncio.to_thread(reprocess_main, args[:-1]) == 0
    with BatchStore(batch_settings) as store:
        assert store.batch_range("alpha") == BatchRange(DAY1, DAY2)
        assert store.batch_range("alpha").until_ms == MIDNIGHT + DAY_MS  # type: ignore[union-attr]
    problems = batchkit.compare_store(batch_settings, right, sites, LO, HI)
    assert not problems, "\n".join(problems[:30])
    problems = compare_influx(await influx_minutes(stream_env.influx_db), in_days)
    assert not problems, "\n".join(problems[:30])
