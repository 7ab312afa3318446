"""Latency and throughput of the report API on one worker, for a site with a month of data.

Run: ``.venv/bin/python bench/api.py`` with the stack up (``footfall stack up``).

1. A month of a shop's events (`--per-day`, default 3,000, with the test workload's
   sessions, revenue and sampled visitors) is counted with the stream's own rules
   (tables.counting); the days before the last two are written to HBase as the batch
   layer writes them (batch.hbase rows, `done` markers: `batch_until` = two days ago),
   in a table prefix of their own. This stands in for `footfall reprocess` over the month,
   which would take Spark minutes per day here.
2. The last two days are published to a fresh topic; one `footfall worker` counts them
   into its tables (the live part of every report).
3. Cold latency (first request of each, history cache empty) and then, per query, an
   open loop at `--rate` requests/s for `--seconds`: achieved rate, p50, p99, errors.
   Queries: 30 days hourly, a 30-day page breakdown, 48 h by minute, 30 days by day, and
   two on combinations: 30 days hourly with `country==IN;device==mobile`, the pages of
   visitors from IN over 30 days.

Prints a table; asserts nothing. Goal (issue 5): p99 < 50 ms at 200 requests/s. The first
row is a baseline run in the same script: the same open loop against the worker's
`/healthz`; `p99/base` is each query's p99 over the baseline's.
The load generator runs on the same 2 cores as the worker and Kafka.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from batch import hbase, markers  # noqa: E402
from batch.days import day_of_ms  # noqa: E402
from footfall.events import kafka_key  # noqa: E402
from footfall.metrics import (  # noqa: E402
    COUNTERS,
    EVENT_COMBINATIONS,
    EVENT_COUNTERS,
    EVENT_DIMENSIONS,
    SESSION_COUNTERS,
)
from footfall.settings import Settings, get_settings  # noqa: E402
from footfall.sites.registry import add_site  # noqa: E402
from footfall.stack.influxdb import InfluxDB  # noqa: E402
from footfall.stack.kafka import Kafka  # noqa: E402
from footfall.topics import ensure_topic  # noqa: E402
from footfall.visitors import SketchConfig  # noqa: E402
from tables.buckets import parse_bucket_key  # noqa: E402
from tables.counting import BatchCounter, CountingRules  # noqa: E402
from tests.workload import workload  # noqa: E402

SITE = "bench-shop"
DAY = 86_400_000
HOUR = 3_600_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def month(per_day: int, days: int, now: int) -> list[dict[str, Any]]:
    """`days` days of events up to `now`, in blocks of 3 hours (the test workload's mix)."""
    events: list[dict[str, Any]] = []
    blocks = days * 8
    for b in range(blocks):
        base = now - 80 * 60_000 - b * 3 * HOUR
        events += workload(per_day // 8, seed=1000 + b, sites=(SITE,), midnight=base)
    events.sort(key=lambda e: e["received_at"])
    return [e for e in events if e["event_time"] < now]


def hbase_rows(
    events: list[dict[str, Any]], until: int, config: SketchConfig
) -> list[dict[str, Any]]:
    """batch.hbase rows of the events before `until`, counted by the stream's rules."""
    data: dict[bytes, bytes] = {}
    sessions: dict[bytes, bytes] = {}
    counter = BatchCounter(
        CountingRules(sketch=config, retention_ms=10**13), sessions.get, data.get
    )
    old = [(i, e) for i, e in enumerate(events) if e["event_time"] < until]
    result = counter.apply(0, old)  # one partition: one bucket per minute
    rows: list[dict[str, Any]] = []
    for key, bucket in result.buckets.items():
        _, minute, _ = parse_bucket_key(key)
        counters = dict(zip(COUNTERS, bucket.total.counts, strict=True))
        counters["sample_rate_max"] = bucket.total.visitors.max_rate()
        counters.update({f"revenue_{c}": u for c, u in bucket.revenue.items()})
        rows.append(
            {
                "table": hbase.MINUTES,
                "site": SITE,
                "minute": minute,
                "counters": counters,
                "sketches": dict(bucket.total.visitors.items()),
            }
        )
        for dimension, values in bucket.breakdowns.items():
            event_scoped = dimension in EVENT_DIMENSIONS or dimension in EVENT_COMBINATIONS
            kind = EVENT_COUNTERS if event_scoped else SESSION_COUNTERS
            for value, stats in values.items():
                named = stats.as_dict()
                rows.append(
                    {
                        "table": hbase.BREAKDOWNS,
                        "site": SITE,
                        "dimension": dimension,
                        "minute": minute,
                        "value": value,
                        "counters": {
                            **{n: named[n] for n in kind},
                            "sample_rate_max": stats.visitors.max_rate(),
                        },
                        "sketches": dict(stats.visitors.items()),
                    }
                )
    return rows


def write_history(settings: Settings, rows: list[dict[str, Any]], first: int, until: int) -> None:
    connection = hbase.connect(settings)
    try:
        hbase.ensure_tables(connection)
        stamp = int(time.time() * 1000)
        target = hbase.RowTarget.of(settings, stamp + 1)
        hbase.write_rows(target, rows)
        for day_ms in range(first, until, DAY):
            day = day_of_ms(day_ms).isoformat()
            markers.finish(
                connection,
                day,
                {SITE: markers.SiteDayStats()},
                markers.DayState.DONE,
                {},
                stamp,
                all_sites=False,
            )
    finally:
        connection.close()


def drop_history(settings: Settings) -> None:
    connection = hbase.connect(settings)
    try:
        hbase.drop_tables(connection)
    finally:
        connection.close()


async def publish(settings: Settings, topic: str, events: list[dict[str, Any]]) -> None:
    import orjson
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, orjson.dumps(e), key=kafka_key(e["site"], e["visitor"]))
            for e in events
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def get(session: aiohttp.ClientSession, url: str, key: str) -> tuple[int, float]:
    started = time.perf_counter()
    async with session.get(url, headers={"Authorization": f"Bearer {key}"}) as resp:
        await resp.read()
        return resp.status, (time.perf_counter() - started) * 1000


async def open_loop(url: str, key: str, rate: float, seconds: float) -> dict[str, Any]:
    """Requests at a fixed rate regardless of answers (open loop): rate, p50, p99, errors."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            nonlocal errors
            try:
                status, ms = await get(session, url, key)
            except aiohttp.ClientError:
                errors += 1
                return
            if status != 200:
                errors += 1
            latencies.append(ms)

        tasks = []
        started = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one()))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "sent": n,
        "rps": n / elapsed,
        "p50": latencies[len(latencies) // 2] if latencies else float("nan"),
        "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        if latencies
        else float("nan"),
        "errors": errors,
    }


async def run(args: argparse.Namespace) -> None:
    base = get_settings()
    Kafka(base).start()
    InfluxDB(base).start()
    tag = uuid.uuid4().hex[:8]
    settings = base.model_copy(
        update={
            "hbase_table_prefix": f"ffbench_{tag}",
            "sites_topic": f"ffbench.{tag}.sites",
            "influx_db": f"ffbench_{tag}",
        }
    )
    InfluxDB(settings).ensure_database(settings.influx_db)
    config = SketchConfig(settings.hll_lg_k, settings.hll_type)
    now = int(time.time() * 1000)
    today = now // DAY * DAY
    until = today - DAY  # batch_until: the stream answers yesterday and today
    first = today - args.days * DAY
    print(f"generating {args.days} days x {args.per_day} events ...", flush=True)
    events = month(args.per_day, args.days, now)
    t = time.perf_counter()
    rows = hbase_rows(events, until, config)
    print(
        f"{len(events)} events, {len(rows)} HBase rows counted in {time.perf_counter() - t:.1f}s",
        flush=True,
    )
    t = time.perf_counter()
    write_history(settings, rows, first, until)
    print(f"HBase rows written in {time.perf_counter() - t:.1f}s", flush=True)
    _, key = await add_site(settings, SITE, timezone="Asia/Kolkata")
    topic = f"ffbench.{tag}.events"
    await ensure_topic(settings.kafka_bootstrap, topic, partitions=base.topic_partitions)
    root = Path(tempfile.mkdtemp(prefix="ffbench-api-"))
    port = free_port()
    env = {
        **os.environ,
        "FOOTFALL_APP_ID": f"ffbench-{tag}",
        "FOOTFALL_EVENTS_TOPIC": topic,
        "FOOTFALL_SITES_TOPIC": settings.sites_topic,
        "FOOTFALL_HBASE_TABLE_PREFIX": settings.hbase_table_prefix,
        "FOOTFALL_INFLUX_DB": settings.influx_db,
        "FOOTFALL_DATA_DIR": str(root / "worker"),
        "FOOTFALL_ARCHIVE_URL": str(root / "archive"),
        "FOOTFALL_WEB_PORT": str(port),
        "FOOTFALL_WORKER_URL": f"http://127.0.0.1:{port}",
        "FOOTFALL_LOG_LEVEL": "WARNING",
        "FOOTFALL_REPORT_LIVE_TTL_S": str(args.live_ttl),
    }
    log = root / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measuring
            [sys.executable, "-m", "agents.commands"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    live = [e for e in events if e["event_time"] >= until - HOUR]
    try:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    status, _ = await get(session, f"{url}/api/v1/sites/{SITE}/realtime", key)
                    if status == 200:
                        break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.5)
            await publish(settings, topic, live)
            want = sum(1 for e in live if not e["bot"])
            for _ in range(300):
                async with session.get(f"{url}/stream/stats/") as resp:
                    stats = await resp.json()
                if stats["events_seen"] >= len(live):
                    break
                await asyncio.sleep(0.5)
            print(f"worker counted {stats['events_applied']} of {want} live events", flush=True)
            days30 = f"from={day_iso(today - 29 * DAY)}&to={day_iso(today + DAY)}"
            queries = {
                "30 d hourly timeseries": f"timeseries?{days30}&interval=hour",
                "30 d page breakdown": f"breakdown?{days30}&dimension=page",
                "48 h minute timeseries": (
                    f"timeseries?from={min_iso(now - 48 * HOUR)}&to={min_iso(now)}&interval=minute"
                ),
                "30 d daily timeseries": f"timeseries?{days30}&interval=day",
                # Filters on two dimensions, answered from the combination rows.
                "30 d hourly, 2 filters": (
                    f"timeseries?{days30}&interval=hour&filters=country==IN;device==mobile"
                ),
                "30 d pages of IN": f"breakdown?{days30}&dimension=page&filters=country==IN",
            }
            # The baseline: the same open loop against the worker's /healthz (same web
            # server, event loop and client, no report work), run first.
            base = await open_loop(f"{url}/healthz", key, args.rate, args.seconds)
            print(
                f"\n{'query':28} {'cold ms':>8} {'warm ms':>8} {'rps':>7} "
                f"{'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'p99/base':>8}"
            )
            print(
                f"{'baseline: /healthz':28} {'':>8} {'':>8} {base['rps']:7.1f} "
                f"{base['p50']:7.1f} {base['p99']:7.1f} {base['errors']:6d} {1.0:8.1f}",
                flush=True,
            )
            for name, query in queries.items():
                if args.only and not any(word in name for word in args.only):
                    continue
                target = f"{url}/api/v1/sites/{SITE}/{query}"
                status, cold = await get(session, target, key)
                assert status == 200, (status, target)
                _, warm = await get(session, target, key)
                result = await open_loop(target, key, args.rate, args.seconds)
                print(
                    f"{name:28} {cold:8.1f} {warm:8.1f} {result['rps']:7.1f} "
                    f"{result['p50']:7.1f} {result['p99']:7.1f} {result['errors']:6d} "
                    f"{result['p99'] / max(base['p99'], 0.001):8.1f}",
                    flush=True,
                )
            async with session.get(target, headers={"Authorization": f"Bearer {key}"}) as resp:
                meta = (await resp.json())["meta"]
            print(
                f"\nmeta of the last: batch_until={meta['batch_until']} "
                f"sources={[s['source'] for s in meta['sources']]}"
            )
    finally:
        worker.terminate()
        worker.wait(60)
        if args.keep_log:
            shutil.copy(log, args.keep_log)
        drop_history(settings)
        InfluxDB(settings).run_query(f'DROP DATABASE "{settings.influx_db}"')
        shutil.rmtree(root, ignore_errors=True)


def day_iso(ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))


def min_iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(ms / 1000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s of the open loop")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--live-ttl", type=float, default=2.0, help="the worker's report_live_ttl_s"
    )
    parser.add_argument("--keep-log", type=Path, help="copy the worker's log here at the end")
    parser.add_argument(
        "--only", nargs="*", default=None, help="run only queries whose name holds one of these"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
