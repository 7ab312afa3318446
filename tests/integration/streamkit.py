"""Helpers of the stream-layer integration tests: services, topics, workers, producers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import (  # type: ignore[import-untyped]
    AIOKafkaConsumer,
    AIOKafkaProducer,
    TopicPartition,
)

from footfall.events import kafka_key
from footfall.influx import InfluxClient
from footfall.series import MEASUREMENT, REVENUE_PREFIX
from footfall.settings import Settings, get_settings
from footfall.topics import ensure_topic
from footfall.visitors import SketchConfig
from tables.buckets import Bucket, parse_bucket_key
from tables.changelog import changelog_topic, partitions_of, read_changelog
from tests.reference import COUNTERS, Minute

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 4


@dataclass
class StreamEnv:
    """One test's isolated names: app id, topic, InfluxDB database, dirs."""

    root: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def app_id(self) -> str:
        return f"fftest-{self.tag}"

    @property
    def topic(self) -> str:
        return f"fftest.{self.tag}.events"

    @property
    def influx_db(self) -> str:
        return f"fftest_{self.tag}"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    def env(self, worker: str, web_port: int, **extra: str) -> dict[str, str]:
        settings = get_settings()
        return {
            **os.environ,
            "FOOTFALL_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "FOOTFALL_INFLUX_URL": settings.influx_url,
            "FOOTFALL_APP_ID": self.app_id,
            "FOOTFALL_EVENTS_TOPIC": self.topic,
            "FOOTFALL_INFLUX_DB": self.influx_db,
            "FOOTFALL_TOPIC_PARTITIONS": str(PARTITIONS),
            "FOOTFALL_DATA_DIR": str(self.root / worker),
            "FOOTFALL_ARCHIVE_URL": str(self.archive),
            "FOOTFALL_WEB_PORT": str(web_port),
            "FOOTFALL_ARCHIVE_FLUSH_S": "3",
            "FOOTFALL_LOG_LEVEL": "INFO",
            "FOOTFALL_WORKER_SESSION_TIMEOUT_S": "8",
            **extra,
        }


def answers_ok(url: str) -> bool:
    """A GET of `url` answers 200 (a probe)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


class Worker:
    """A `footfall worker` subprocess."""

    def __init__(self, env: StreamEnv, name: str, web_port: int, **extra: str) -> None:
        self.name = name
        self.web_port = web_port
        self.log = env.root / f"{name}.log"
        self.env = env.env(name, web_port, **extra)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agents.commands"],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def stats(self) -> dict[str, Any] | None:
        try:
            url = f"http://127.0.0.1:{self.web_port}/stream/stats/"
            with urllib.request.urlopen(url, timeout=2) as resp:
                result: dict[str, Any] = orjson.loads(resp.read())
                return result
        except OSError:
            return None

    def ready(self) -> bool:
        """/readyz says 200: tables recovered and the report views' site registry loaded."""
        return answers_ok(f"http://127.0.0.1:{self.web_port}/readyz")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait: a clean stop."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise

    def problems(self) -> list[str]:
        """The worker's log lines at warning level or above (crashes, restarts)."""
        if not self.log.exists():
            return []
        levels = ('"log.level":"warning"', '"log.level":"error"', '"log.level":"critical"')
        text = self.log.read_text(errors="replace")
        return [line[:400] for line in text.splitlines() if any(lv in line for lv in levels)]

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


async def create_topic(env: StreamEnv) -> None:
    await ensure_topic(get_settings().kafka_bootstrap, env.topic, partitions=PARTITIONS)


async def produce(topic: str, events: Iterable[Mapping[str, Any]]) -> int:
    """Publish envelopes as the gateway does (kafka_key, acks=all); return the count."""
    producer = AIOKafkaProducer(
        bootstrap_servers=get_settings().kafka_bootstrap, acks="all", linger_ms=5
    )
    await producer.start()
    n = 0
    try:
        futures = []
        for event in events:
            key = kafka_key(event["site"], event["visitor"])
            futures.append(await producer.send(topic, orjson.dumps(event), key=key))
            n += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return n


async def table_buckets(
    env: StreamEnv, settings: Settings | None = None
) -> dict[tuple[str, int, int], Bucket]:
    """The minutes_by_site table as its changelog holds it."""
    s = settings or get_settings()
    raw = await read_changelog(s.kafka_bootstrap, changelog_topic(env.app_id, "minutes_by_site"))
    config = SketchConfig(s.hll_lg_k, s.hll_type)
    return {parse_bucket_key(k): Bucket.decode(v, config) for k, v in raw.items()}


async def wait_for(predicate: Any, seconds: float, what: str, interval: float = 0.5) -> Any:
    """Poll `predicate()` (sync or async) until truthy; raise with `what` on timeout."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {seconds:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


# --- InfluxDB ------------------------------------------------------------------------------
async def influx_minutes(db: str) -> dict[tuple[str, int], dict[str, float]]:
    """Every `minute` point of `db`, summed over partitions per (site, minute)."""
    async with InfluxClient.from_settings(get_settings()) as client:
        series = await client.query(f'SELECT * FROM "{MEASUREMENT}"', db=db)
    summed: dict[tuple[str, int], dict[str, float]] = {}
    for one in series:
        columns = one["columns"]
        for values in one["values"]:
            row = dict(zip(columns, values, strict=True))
            key = (row["site"], row["time"])
            into = summed.setdefault(key, {})
            for name, value in row.items():
                if name in ("time", "site", "partition") or value is None:
                    continue
                if name == "sample_rate_max":
                    into[name] = max(into.get(name, 1), value)
                else:
                    into[name] = into.get(name, 0) + value
    return summed


def compare_influx(
    points: Mapping[tuple[str, int], Mapping[str, float]],
    ref: Mapping[tuple[str, int], Minute],
    tolerance: float = 0.02,
) -> list[str]:
    """Differences between InfluxDB's minutes and the reference (empty: they agree)."""
    problems = []
    for key in sorted(set(points) | set(ref)):
        got = points.get(key, {})
        want = ref.get(key, Minute())
        for name in COUNTERS:
            if got.get(name, 0) != want.total.counts[name]:
                problems.append(f"{key} {name}: {got.get(name)} != {want.total.counts[name]}")
        exact = want.total.visitors_estimate()
        if abs(got.get("visitors", 0) - exact) > max(tolerance * exact, 0.5):
            problems.append(f"{key} visitors: {got.get('visitors')} !~ {exact}")
        for currency, units in want.revenue.items():
            if got.get(REVENUE_PREFIX + currency, 0) != units:
                problems.append(f"{key} revenue {currency}: {got.get(REVENUE_PREFIX + currency)}")
    return problems


async def topic_records(topic: str, timeout_s: float = 60.0) -> list[tuple[bytes | None, Any]]:
    """(key, decoded value) of every committed record of `topic`, up to its current end."""
    bootstrap = get_settings().kafka_bootstrap
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    out: list[tuple[bytes | None, Any]] = []
    try:
        async with asyncio.timeout(timeout_s):
            for partition in await partitions_of(bootstrap, topic):
                tp = TopicPartition(topic, partition)
                consumer.assign([tp])
                await consumer.seek_to_beginning(tp)
                end = (await consumer.end_offsets([tp]))[tp]
                while await consumer.position(tp) < end:
                    batches = await consumer.getmany(tp, timeout_ms=1000)
                    for record in batches.get(tp, []):
                        out.append((record.key, orjson.loads(record.value)))
    finally:
        await consumer.stop()
    return out


async def read_topic(topic: str) -> list[dict[str, Any]]:
    """Every record of `topic`, decoded, partition by partition in offset order."""
    return [value for _, value in await topic_records(topic)]


class Gateway:
    """A `footfall gateway` subprocess publishing to a test's topic."""

    def __init__(self, env: StreamEnv, port: int, sites_topic: str) -> None:
        self.port = port
        self.log = env.root / "gateway.log"
        self.env = {
            **env.env("gateway", 0),
            "FOOTFALL_SITES_TOPIC": sites_topic,
            "FOOTFALL_VISITOR_SECRET": "stream-test-secret-0123456789abcdef",
            "FOOTFALL_RATE_LIMIT_EVENTS_PER_S": "0",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "footfall.cli", "gateway", "--port", str(self.port)],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def ready(self) -> bool:
        return answers_ok(f"http://127.0.0.1:{self.port}/readyz")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)


# --- a stopped worker's local tables ----------------------------------------------------------


def local_table(
    env: StreamEnv, worker: str, table: str, partitions: Iterable[int]
) -> dict[bytes, bytes]:
    """Every record of `table` in a stopped worker's RocksDB stores of `partitions`."""
    from faust.stores.rocksdb import Store
    from rocksdict import AccessType, Options, Rdict  # the worker's store driver

    tables = env.root / worker / env.app_id / "v1" / "tables"
    records: dict[bytes, bytes] = {}
    for partition in partitions:
        path = tables / f"{table}-{partition}.db"
        if not path.exists():
            continue
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            for key, value in db.items():
                if isinstance(key, bytes) and isinstance(value, bytes) and key != Store.offset_key:
                    records[key] = value
        finally:
            db.close()
    return records


async def assert_local_tables_match_changelog(
    env: StreamEnv, worker: str, partitions: Iterable[int]
) -> None:
    """A stopped worker holds, for the partitions it owned last, what the changelog holds.

    What a replay on this worker skips must be in the changelog, the state every other
    worker recovers from (tables.io, put_many).
    """
    owned = list(partitions)
    bootstrap = get_settings().kafka_bootstrap
    for table in ("minutes_by_site", "sessions_by_visitor"):
        local = local_table(env, worker, table, owned)
        logged = await read_changelog(bootstrap, changelog_topic(env.app_id, table))
        assert local, f"{worker} has no local {table} for partitions {owned}"
        differing = [k for k in local if local[k] != logged.get(k)]
        assert not differing, f"{table}: {len(differing)} records differ, e.g. {differing[:3]}"
