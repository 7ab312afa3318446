"""The batch layer against the stream layer, on the same events (real Kafka, worker, HBase).

1. Parity: a `footfall worker` counts ~2,400 events (sessions across the timeout and
   midnight, retried sends, bots, rate-4 visitors, two currencies, edge cases) and archives
   them; the batch job then recomputes both days from that archive. Every minute and
   breakdown row agrees (counts and sums exactly, visitors within 2 %; `exit_page` visitors
   may only be higher in the stream, docs/stream.md), and so does every InfluxDB point the
   batch rewrote over the stream's, series by series.
2. Correction: the worker runs with a wrong setting (a 10-minute session timeout) and
   serves the report API; before the rewrite the API answers its wrong sessions; the dry
   run shows stored, recomputed and the difference; `footfall reprocess` with the right
   timeout (30 minutes) repairs both days: HBase and InfluxDB hold the right numbers, and
   the API answers them for both days from HBase, with `meta.batch_until` moved past them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import pyarrow.dataset as pads
import pytest
from pyspark.sql import SparkSession

import batch.commands
import tests.reference
from batch import hbase
from batch.commands import main as reprocess_main
from batch.compare import HEADER
from batch.days import day_of_ms
from batch.markers import BatchRange
from batch.reprocess import Reprocessor
from batch.store import BatchStore, Row, merge_visitors
from footfall.influx import InfluxClient
from footfall.metrics import DAY_MS
from footfall.series import MEASUREMENT
from footfall.settings import Settings, get_settings
from footfall.sites.registry import add_site
from footfall.visitors import SketchConfig
from tests.integration import batchkit
from tests.integration.httpkit import call
from tests.integration.streamkit import (
    StreamEnv,
    Worker,
    compare_influx,
    influx_minutes,
    produce,
    table_buckets,
    wait_for,
)
from tests.reference import Merged, Minute, compare, merge_buckets, reference

pytestmark = pytest.mark.integration

MIDNIGHT = batchkit.batch_midnight()
DAY1, DAY2 = day_of_ms(MIDNIGHT - DAY_MS), day_of_ms(MIDNIGHT)
LO, HI = MIDNIGHT - DAY_MS, MIDNIGHT + DAY_MS
TOLERANCE = 0.02
# After the last event is counted and archived: time for the worker's last writes (the
# InfluxDB sink flushes every second) before the test reads what it stored.
SETTLE_S = 2.4
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


@contextlib.asynccontextmanager
async def streaming(
    env: StreamEnv, events: list[dict[str, Any]], port: int, **extra: str
) -> AsyncIterator[Worker]:
    """A running worker that has counted, archived and written to InfluxDB `events`."""
    worker = Worker(env, "w1", port, **extra)
    worker.start()
    try:

        async def assigned() -> bool:
            stats = worker.stats()
            return bool(stats) and len(stats["owned_partitions"]) == 4  # type: ignore[index]

        await wait_for(assigned, 120, "partitions assigned")
        await wait_for(worker.ready, 60, "the worker to be ready")  # its reports answer
        await produce(env.topic, events)
        await wait_for(
            lambda: (worker.stats() or {}).get("events_seen", 0) >= len(events), 120, "counted"
        )
        await wait_for(lambda: archived(env) >= len(events), 60, "archived")
        await asyncio.sleep(SETTLE_S)
        yield worker
    except BaseException:
        print(worker.tail())
        raise
    finally:
        assert worker.stop() == 0


async def run_stream(
    env: StreamEnv, events: list[dict[str, Any]], port: int, **extra: str
) -> Worker:
    """A worker counts and archives `events`; returned stopped, once both are complete."""
    async with streaming(env, events, port, **extra) as worker:
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


def api_days(port: int, site: str, key: str) -> dict[str, Any]:
    """The site's two days from the report API of the worker on `port` (UTC day buckets)."""
    last = DAY2 + timedelta(days=1)
    url = (
        f"http://127.0.0.1:{port}/api/v1/sites/{site}/timeseries"
        f"?from={DAY1.isoformat()}&to={last.isoformat()}&interval=day&tz=UTC"
    )
    status, body = call(url, key)
    assert status == 200, body
    return dict(body)


def reference_days(ref: Mapping[tuple[str, int], Minute], site: str) -> list[dict[str, Any]]:
    """The API's day buckets as tests.reference counts them (counters, revenue units)."""
    days: list[dict[str, Any]] = []
    for lo in (LO, LO + DAY_MS):
        counts: Counter[str] = Counter()
        revenue: Counter[str] = Counter()
        for (s, minute), one in ref.items():
            if s == site and lo <= minute < lo + DAY_MS:
                counts.update(one.total.counts)
                revenue.update(one.revenue)
        days.append({"counts": counts, "revenue": +revenue})
    return days


def api_problems(
    body: Mapping[str, Any], want: list[dict[str, Any]], site: str, visitors: list[int] | None
) -> list[str]:
    """Differences between the API's day buckets and the reference's (visitors if given)."""
    problems: list[str] = []
    for i, (got, exp) in enumerate(zip(body["results"], want, strict=True)):
        for name in COUNTERS:
            value = got[name] * 1000 if name == "duration_sum" else got[name]
            if round(value) != exp["counts"][name]:
                problems.append(f"{site} day {i} {name}: api {got[name]} != {exp['counts'][name]}")
        revenue = {c: round(v * 1_000_000) for c, v in got["revenue"].items()}
        if revenue != dict(exp["revenue"]):
            problems.append(f"{site} day {i} revenue: api {got['revenue']} != {exp['revenue']}")
        if visitors is not None and not _close(got["visitors"] or 0, visitors[i]):
            problems.append(f"{site} day {i} visitors: api {got['visitors']} !~ {visitors[i]}")
    return problems


def _batch_answer(body: dict[str, Any]) -> dict[str, Any] | None:
    return body if body["meta"]["batch_until"] is not None else None


async def test_reprocess_corrects_a_stream_run_with_a_wrong_timeout(
    stream_env: StreamEnv,
    batch_settings: Settings,
    spark: SparkSession,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The report API answers the stream's wrong sessions, then, after `footfall reprocess`,
    the batch's right ones from HBase, with `meta.batch_until` at the end of day two."""
    events = batchkit.batch_events()
    sites = sorted({e["site"] for e in events})
    right = reference(events)
    with monkeypatch.context() as patch:
        patch.setattr(tests.reference, "TIMEOUT_MS", 10 * 60_000)
        wrong = reference(events)
    assert compare_influx({}, wrong) != compare_influx({}, right)  # the setting matters here
    right_days = {site: reference_days(right, site) for site in sites}
    wrong_days = {site: reference_days(wrong, site) for site in sites}
    changed = [s for s in sites if right_days[s] != wrong_days[s]]
    assert {"alpha", "beta", "gamma"} <= set(changed)

    sites_topic = f"fftest.{stream_env.tag}.sites"
    registry = get_settings().model_copy(update={"sites_topic": sites_topic})
    keys = {site: (await add_site(registry, site))[1] for site in sites}
    port = 16211
    api_worker = {
        "FOOTFALL_SESSION_TIMEOUT_S": "600",  # the wrong setting
        "FOOTFALL_SITES_TOPIC": sites_topic,
        "FOOTFALL_HBASE_TABLE_PREFIX": batch_settings.hbase_table_prefix,
        "FOOTFALL_WORKER_URL": f"http://127.0.0.1:{port}",
        "FOOTFALL_REPORT_BATCH_RANGE_TTL_S": "0",  # see a new batch_until at once
    }
    in_days = {k: v for k, v in right.items() if LO <= k[1] < HI}
    async with streaming(stream_env, events, port, **api_worker):

        async def influx_is_wrong() -> bool:
            return not compare_influx(await influx_minutes(stream_env.influx_db), wrong)

        await wait_for(influx_is_wrong, 30, "the stream's points in InfluxDB")
        assert compare_influx(await influx_minutes(stream_env.influx_db), in_days)
        with BatchStore(batch_settings) as store:
            connection = hbase.connect(batch_settings)
            hbase.ensure_tables(connection)
            connection.close()
            assert store.batch_range("alpha") is None  # answered from the stream so far

        # Before: the API answers the stream's (10-minute) sessions, from the worker's
        # tables and InfluxDB, with no batch_until.
        problems = []
        for site in sites:
            body = api_days(port, site, keys[site])
            assert body["meta"]["batch_until"] is None
            assert {s["source"] for s in body["meta"]["sources"]} <= {"tables", "influxdb"}
            problems += api_problems(body, wrong_days[site], site, None)
        assert not problems, "\n".join(problems[:30])

        monkeypatch.setattr(batch.commands, "get_settings", lambda: batch_settings)
        assert batch_settings.session_timeout_s == 1800
        args = ["reprocess", "--from", DAY1.isoformat(), "--to", DAY2.isoformat(), "--dry-run"]
        assert await asyncio.to_thread(reprocess_main, args) == 0
        captured = capsys.readouterr()
        dry = captured.out.splitlines()
        assert dry[0].split() == list(HEADER)
        assert len(dry) > len(sites) * 2 * len(COUNTERS)  # per site, day and metric
        sessions = [line.split() for line in dry if " sessions " in f" {line} "]
        assert any(int(row[5]) < 0 for row in sessions)  # fewer sessions with 30 minutes
        assert all(int(row[4]) - int(row[3]) == int(row[5]) for row in sessions)
        assert {row[6] for row in sessions} == {"influx"}
        assert "2/2" in captured.err  # the progress bar over the days

        assert await asyncio.to_thread(reprocess_main, args[:-1]) == 0
        problems = compare_influx(await influx_minutes(stream_env.influx_db), in_days)
        assert not problems, "\n".join(problems[:30])
        with BatchStore(batch_settings) as store:
            assert store.batch_range("alpha") == BatchRange(DAY1, DAY2)
            until = store.batch_range("alpha").until_ms  # type: ignore[union-attr]
            assert until == MIDNIGHT + DAY_MS
        problems = batchkit.compare_store(batch_settings, right, sites, LO, HI)
        assert not problems, "\n".join(problems[:30])

        # After: the right numbers, from HBase, and batch_until moved to the end of day two.
        problems = []
        for site in sites:
            # The worker's HBase connection idled through the rewrite, longer than the Thrift
            # server keeps an idle socket (60 s): the first read fails, the reports fall back
            # to the stream with a warning and reconnect; the next request reads HBase.
            body = await wait_for(
                lambda site=site: _batch_answer(api_days(port, site, keys[site])),
                30,
                f"{site}'s days answered from HBase",
            )
            moved = datetime.fromisoformat(body["meta"]["batch_until"])
            assert int(moved.timestamp() * 1000) == MIDNIGHT + DAY_MS, body["meta"]
            assert [s["source"] for s in body["meta"]["sources"]] == ["hbase"]
            visitors = [
                batchkit.day_visitors(events, site, lo, lo + DAY_MS) for lo in (LO, LO + DAY_MS)
            ]
            problems += api_problems(body, right_days[site], site, visitors)
        assert not problems, "\n".join(problems[:30])
