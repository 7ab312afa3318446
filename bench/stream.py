"""Events per second of one stream worker, against a bare aiokafka consumer; and freshness.

Run: ``.venv/bin/python bench/stream.py`` with the stack up (``footfall stack up``).

1. Publishes `--events` events (~560 bytes each, as the gateway publishes them, over two
   hours: sessions of `--events-per-session` events on average, pageviews, custom events,
   revenue) to a fresh topic with `topic_partitions` partitions.
2. A bare aiokafka consumer loop reads the whole topic in this process (fetch and decode
   the JSON, nothing else): the ceiling any consumer of this broker and machine has. It
   runs again after the worker, and the ratios are taken to the mean of both runs. With
   `--floor`, a worker that counts nothing (bench/floor_worker.py) reads the backlog
   first: what the framework alone costs.
3. One `footfall worker` process (counting and archive agents, InfluxDB sink) consumes the
   same backlog; its rate is events over the time from its first batch taken up to the
   last event counted (the whole worker: sessions and buckets written to RocksDB and the
   changelog, the archive written, points sent to InfluxDB).
4. Steady state: `--sustained-rate` events/s (default 12,000, the mission's average) over
   `--sustained-sites` shops are published straight to the topic for
   `--sustained-seconds`, stamped as received at publish time; freshness p50/p95, events
   per batch, the worker's CPU and changelog bytes per event are read from the worker and
   /proc. The publisher shares the 2 cores. `--sustained-workers N` runs it on N workers
   of one group (the backlog's and N - 1 started after it), partitions split between
   them: what adding workers does.
5. Freshness: a `footfall gateway` publishes to the same topic while this script posts
   `--rate` events/s for `--seconds` (batches of 10); the worker measures, per event, the
   time from the gateway's receipt (`received_at`, which precedes its 202) to the event
   being durably counted (bucket writes acknowledged by Kafka); p50 and p95 are read from
   its /stream/stats/. The client-side request latency (send to 202) is printed too.

Prints a table; asserts nothing. Goals (issue 4): >= 20,000 events/s per worker, ratio to
the bare loop >= 0.3, freshness p95 < 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from footfall.events import ENVELOPE_FIELD_NAMES, kafka_key  # noqa: E402
from footfall.influx import quote_ident  # noqa: E402
from footfall.settings import get_settings  # noqa: E402
from footfall.stack.base import proc_status_kib, process_cpu_seconds  # noqa: E402
from footfall.stack.influxdb import InfluxDB  # noqa: E402
from footfall.stack.kafka import Kafka  # noqa: E402
from footfall.topics import ensure_topic  # noqa: E402

SITE = "bench-shop"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def local(port: int) -> str:
    """The URL of a server this script started on this machine."""
    return f"http://127.0.0.1:{port}"


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a spawned process; kill it if it has not exited within a minute."""
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


def make_events(n: int, seed: int = 5, events_per_session: float = 4.0) -> list[dict[str, Any]]:
    """`n` envelopes of ~560 bytes over the last two hours, in event_time order.

    Visitors come in visits of a geometric number of events (mean `events_per_session`;
    1 makes nearly every event a one-event session, the costliest case: every event opens
    a session and new breakdown rows), 5 s to 2 min apart; each visitor keeps one country,
    device, browser and os, and a third of them come back for another visit (which joins
    the first when it comes within the session timeout).
    """
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    start = now - 2 * 3_600_000
    span = 2 * 3_600_000 - 10 * 60_000  # sessions start early enough to end in the window
    planned: list[tuple[int, str, int, int]] = []  # (event_time, visitor, product, traits)
    visitors = 0
    while len(planned) < n:
        visitor = f"v{visitors:08d}-{rng.randrange(10**9):09d}"
        traits = rng.randrange(3 * 2 * 3 * 3)
        visitors += 1
        for _ in range(2 if rng.random() < 1 / 3 else 1):
            t = start + rng.randrange(span)
            while True:
                planned.append((t, visitor, rng.randrange(2000), traits))
                if rng.random() < 1 / events_per_session:
                    break
                t += rng.randrange(5_000, 120_000)
    planned.sort()
    events = []
    for t, visitor, product, traits in planned[:n]:
        t = min(t, now - 1000)
        name = "pageview" if rng.random() < 0.85 else rng.choice(("add_to_cart", "purchase"))
        country, rest = divmod(traits, 18)
        device, rest = divmod(rest, 9)
        browser, os_ = divmod(rest, 3)
        event: dict[str, Any] = dict.fromkeys(ENVELOPE_FIELD_NAMES)
        event.update(
            site=SITE,
            name=name,
            url=f"https://shop.example.in/p/{product}?utm_source=news",
            visitor=visitor,
            id=uuid.UUID(int=rng.getrandbits(128)).hex,
            ts=t,
            referrer="https://www.google.com/",
            title=f"Product {product}",
            props={"plan": "pro"},
            revenue={"amount": 4999.0, "currency": "INR"} if name == "purchase" else None,
            screen="1920x1080",
            lang="en-IN",
            received_at=t + 40,
            event_time=t,
            country=("IN", "US", "DE")[country],
            device=("desktop", "mobile")[device],
            browser=("Chrome", "Firefox", "Safari")[browser],
            os=("Windows", "Android", "iOS")[os_],
            bot=False,
            source="news",
            sample_rate=1,
            path=f"/p/{product}",
            utm_source="news",
        )
        events.append(event)
    events.sort(key=lambda e: e["event_time"])
    return events


async def publish(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    began = time.monotonic()
    try:
        pending = []
        for event in events:
            key = kafka_key(event["site"], event["visitor"])
            pending.append(await producer.send(topic, orjson.dumps(event), key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - began


async def publish_paced(
    bootstrap: str,
    topic: str,
    events: list[dict[str, Any]],
    rate: float,
    seconds: float,
    sites: int,
) -> int:
    """Publish `events` at `rate`/s for `seconds`, each stamped as received just now.

    What a fleet of gateways would publish at that rate: the envelopes are the backlog's
    visits, moved to the present and spread over `sites` shops (by visitor, so a visit
    stays on one site). Returns how many were sent.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    sent = 0
    pending: list[asyncio.Future[Any]] = []
    began = time.monotonic()
    try:
        while (elapsed := time.monotonic() - began) < seconds and sent < len(events):
            due = min(len(events), int(elapsed * rate))
            while sent < due:
                event = dict(events[sent])
                now = int(time.time() * 1000)
                # A two-hour day compressed into the run: a visit's events come seconds apart.
                event["event_time"] = event["ts"] = event["received_at"] = now
                if sites > 1:
                    event["site"] = f"{SITE}-{zlib.crc32(event['visitor'].encode()) % sites}"
                key = kafka_key(event["site"], event["visitor"])
                pending.append(await producer.send(topic, orjson.dumps(event), key=key))
                sent += 1
            await asyncio.sleep(0.002)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a running process has used so far (Linux /proc)."""
    seconds = process_cpu_seconds(pid)
    if seconds is None:
        raise SystemExit(f"process {pid} is gone")
    return seconds


async def bare_consume(bootstrap: str, topic: str, partitions: int, total: int) -> float:
    """Events/s of a plain aiokafka loop reading and JSON-decoding the whole topic.

    It fetches as much per partition as the worker does (`fetch_partition_max_kb`).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=get_settings().fetch_partition_max_kb * 1024,
    )
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    seen = 0
    first: float | None = None
    try:
        while seen < total:
            batches = await consumer.getmany(timeout_ms=1000)
            if first is None and batches:
                first = time.monotonic()
            for records in batches.values():
                for record in records:
                    orjson.loads(record.value)
                seen += len(records)
    finally:
        await consumer.stop()
    return total / (time.monotonic() - (first or time.monotonic()))


async def stats(
    session: aiohttp.ClientSession, port: int, since: int | None = None
) -> dict[str, Any]:
    query = f"?since={since}" if since is not None else ""
    try:
        async with session.get(f"{local(port)}/stream/stats/{query}") as resp:
            result: dict[str, Any] = await resp.json()
            return result
    except aiohttp.ClientError:
        return {}


async def wait_for(
    session: aiohttp.ClientSession, port: int, key: str, target: Any, limit_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        current = await stats(session, port)
        value = current.get(key)
        if value is not None and (
            value == target if key == "owned_partitions" else value >= target
        ):
            return current
        await asyncio.sleep(0.1)
    raise SystemExit(f"worker: {key} did not reach {target} within {limit_s:.0f}s")


async def measure_worker(
    session: aiohttp.ClientSession, port: int, total: int, pid: int
) -> tuple[float, float, float]:
    """(events/s from the worker's first batch to the last event written, the GC's share
    of that time, the worker's CPU time over it in cores).

    Timed like the bare loop: from the first fetched batch taken up to the last event
    counted, here its interval written (sessions and buckets acknowledged by Kafka), both
    by the worker's clock. The worker's start-up and first fetch are left out, as the
    bare loop's are.
    """
    deadline = time.monotonic() + 900
    gc_first: float | None = None  # GC seconds when the first batch is seen taken up
    cpu_first = cpu_last = 0.0  # the worker's CPU seconds then, and at the last write
    while time.monotonic() < deadline:
        current = await stats(session, port)
        gc_seconds = sum(current["gc"]["seconds"]) if "gc" in current else 0.0
        cpu = cpu_seconds(pid)
        if gc_first is None and current.get("first_batch_ms") is not None:
            gc_first, cpu_first = gc_seconds, cpu
        cpu_last = cpu
        if current.get("events_seen", 0) >= total:
            break
        await asyncio.sleep(0.05)
    else:
        raise SystemExit(f"worker: did not count {total:,} events within 900 s")
    elapsed = (current["last_write_ms"] - current["first_batch_ms"]) / 1000
    return (
        total / elapsed,
        (gc_seconds - (gc_first or 0.0)) / elapsed,
        (cpu_last - cpu_first) / elapsed,
    )


async def measure_floor(
    env: dict[str, str], work: Path, log_dir: Path, total: int, bare_rate: float
) -> float:
    """Events/s of the same backlog through a worker that counts nothing (bench/floor_worker.py)."""
    port = free_port()
    floor_env = {
        **env,
        "FOOTFALL_APP_ID": f"{env['FOOTFALL_APP_ID']}-floor",
        "FOOTFALL_DATA_DIR": str(work / "floor-worker"),
        "FOOTFALL_ARCHIVE_URL": str(work / "floor-archive"),
        "FOOTFALL_WEB_PORT": str(port),
    }
    floor = spawn(
        [sys.executable, str(ROOT / "bench" / "floor_worker.py")],
        floor_env,
        log_dir / "bench-stream-floor-worker.log",
    )
    try:
        async with aiohttp.ClientSession() as session:
            rate, _, cpu = await measure_worker(session, port, total, floor.pid)
    finally:
        stop(floor)
    print(
        f"floor (the worker counting nothing): {rate:,.0f} events/s (ratio {rate / bare_rate:.2f}; "
        f"CPU {cpu:.0%} of a core)"
    )
    return rate


async def post_paced(
    url: str, rate: float, seconds: float, batch: int = 10
) -> tuple[int, list[float]]:
    """POST `rate` events/s for `seconds`; return events accepted and request latencies."""
    rng = random.Random(9)
    latencies: list[float] = []
    accepted = 0
    interval = batch / rate
    began = time.monotonic()
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> None:
            nonlocal accepted
            events = [
                {
                    "site": SITE,
                    "name": "pageview",
                    "url": f"https://shop.example.in/products/{rng.randrange(500)}",
                    "visitor": f"fresh-{rng.randrange(5000)}",
                    "id": f"fresh-{i}-{j}",
                }
                for j in range(batch)
            ]
            sent = time.monotonic()
            async with session.post(
                url,
                data=orjson.dumps({"events": events}),
                headers={"Content-Type": "application/json"},
            ) as resp:
                await resp.read()
                if resp.status == 202:
                    accepted += batch
                    latencies.append(time.monotonic() - sent)

        tasks = []
        i = 0
        while time.monotonic() - began < seconds:
            tasks.append(asyncio.create_task(one(i)))
            i += 1
            await asyncio.sleep(max(0.0, began + i * interval - time.monotonic()))
        await asyncio.gather(*tasks)
    return accepted, latencies


async def sustained(
    args: argparse.Namespace,
    bootstrap: str,
    topic: str,
    session: aiohttp.ClientSession,
    workers: list[tuple[subprocess.Popen[bytes], int]],
) -> None:
    """A steady `--sustained-rate` straight to Kafka: freshness, batch size, workers' CPU.

    `workers`: (process, web port) of each worker of the group, the partitions split
    between them. Freshness is per worker (each one measures the events it counted); with
    several, the highest p95 is an upper bound of the p95 of all events.
    """
    events = make_events(
        int(args.sustained_rate * args.sustained_seconds),
        seed=11,
        events_per_session=args.events_per_session,
    )
    before = [await stats(session, port) for _, port in workers]
    since = int(time.time() * 1000)
    cpu_before, wall_before = sum(cpu_seconds(w.pid) for w, _ in workers), time.monotonic()
    sent = await publish_paced(
        bootstrap,
        topic,
        events,
        args.sustained_rate,
        args.sustained_seconds,
        args.sustained_sites,
    )
    seen_before = sum(b.get("events_seen", 0) for b in before)
    deadline = time.monotonic() + 120
    while True:
        after = [await stats(session, port) for _, port in workers]
        if sum(a.get("events_seen", 0) for a in after) >= seen_before + sent:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"workers: {sent:,} sustained events not counted within 120 s")
        await asyncio.sleep(0.1)
    wall = time.monotonic() - wall_before
    cpu = (sum(cpu_seconds(w.pid) for w, _ in workers) - cpu_before) / wall

    def grown(key: str) -> int:
        return sum(a.get(key, 0) - b.get(key, 0) for a, b in zip(after, before, strict=True))

    fresh = [(await stats(session, port, since))["freshness_ms"] for _, port in workers]
    if len(workers) == 1:
        freshness = f"freshness p50 {fresh[0]['p50']} ms, p95 {fresh[0]['p95']} ms"
    else:
        each = ", ".join(f"{f['p50']} / {f['p95']} ms ({f['n']:,} events)" for f in fresh)
        worst = max((f["p95"] for f in fresh if f["p95"] is not None), default=None)
        freshness = f"freshness p50 / p95 per worker {each}: p95 <= {worst} ms"
    print(
        f"sustained {args.sustained_rate:,.0f} events/s for {args.sustained_seconds:.0f} s "
        f"over {args.sustained_sites} sites (straight to Kafka), {len(workers)} worker(s): "
        f"{freshness}; {sent / max(1, grown('batches')):,.0f} events per batch, "
        f"{sent / max(1, grown('intervals')):,.0f} per interval written; workers' CPU "
        f"{cpu:.0%} of a core in all; changelog {grown('changelog_bytes') / sent:,.0f} "
        "bytes/event"
    )


async def wait_ready(session: aiohttp.ClientSession, url: str, limit_s: float) -> None:
    """Until `url`/readyz answers 200 (a worker: its tables recovered, it counts)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            async with session.get(f"{url}/readyz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit(f"{url}: not ready within {limit_s:.0f} s")


async def add_workers(
    session: aiohttp.ClientSession,
    env: dict[str, str],
    work: Path,
    log_dir: Path,
    first_port: int,
    count: int,
    partitions: int,
    started: list[subprocess.Popen[bytes]],
) -> list[tuple[subprocess.Popen[bytes], int]]:
    """Start `count` more workers in the first one's group; return them once the group's
    partitions are split among all of them (each owns some, together all) and each is
    ready. Each process goes into `started` as soon as it runs (for the caller to stop)."""
    added: list[tuple[subprocess.Popen[bytes], int]] = []
    for i in range(count):
        port = free_port()
        extra_env = {
            **env,
            "FOOTFALL_DATA_DIR": str(work / f"worker-{i + 2}"),
            "FOOTFALL_WEB_PORT": str(port),
        }
        log = log_dir / f"bench-stream-worker-{i + 2}.log"
        proc = spawn([sys.executable, "-m", "agents.commands"], extra_env, log)
        started.append(proc)
        added.append((proc, port))
    ports = [first_port, *(port for _, port in added)]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        owned = [(await stats(session, port)).get("owned_partitions") or [] for port in ports]
        if all(owned) and sorted(p for o in owned for p in o) == list(range(partitions)):
            for port in ports:  # each one's share of the tables recovered
                await wait_ready(session, local(port), 180)
            print(f"{len(ports)} workers, partitions {owned}")
            return added
        await asyncio.sleep(0.5)
    raise SystemExit(f"{len(ports)} workers did not split the partitions within 180 s")


async def run(args: argparse.Namespace) -> None:
    settings = get_settings()
    reason = Kafka(settings).check()
    if reason is not None:
        raise SystemExit(f"Kafka is not answering ({reason}); run `footfall stack up`")
    influx = InfluxDB(settings)
    tag = uuid.uuid4().hex[:8]
    topic = f"footfall-bench-stream-{tag}"
    sites_topic = f"footfall-bench-sites-{tag}"
    app_id = f"footfall-bench-{tag}"
    influx_db = f"footfall_bench_{tag}"
    partitions = settings.topic_partitions
    if influx.check() is None:
        influx.ensure_database(influx_db)
    await ensure_topic(settings.kafka_bootstrap, topic, partitions=partitions)
    work = Path(tempfile.mkdtemp(prefix="footfall-bench-stream-"))

    events = make_events(args.events, events_per_session=args.events_per_session)
    size = statistics.mean(len(orjson.dumps(e)) for e in events[:1000])
    print(f"publishing {len(events):,} events of ~{size:.0f} bytes to {topic}")
    print(f"  ({partitions} partitions)")
    publish_s = await publish(settings.kafka_bootstrap, topic, events)
    print(f"  published in {publish_s:.1f}s")

    bare_rate = await bare_consume(settings.kafka_bootstrap, topic, partitions, len(events))
    print(f"bare aiokafka loop: {bare_rate:,.0f} events/s")

    web_port, gateway_port = free_port(), free_port()
    env = {
        **os.environ,
        "FOOTFALL_APP_ID": app_id,
        "FOOTFALL_EVENTS_TOPIC": topic,
        "FOOTFALL_SITES_TOPIC": sites_topic,
        "FOOTFALL_INFLUX_DB": influx_db,
        "FOOTFALL_DATA_DIR": str(work / "worker"),
        "FOOTFALL_ARCHIVE_URL": str(work / "archive"),
        "FOOTFALL_WEB_PORT": str(web_port),
        "FOOTFALL_LOG_LEVEL": "WARNING",
        "FOOTFALL_VISITOR_SECRET": "bench-secret-0123456789abcdef",
        "FOOTFALL_RATE_LIMIT_EVENTS_PER_S": "0",
    }
    log_dir = Path(args.log_dir)
    floor_rate: float | None = None
    if args.floor:
        floor_rate = await measure_floor(env, work, log_dir, len(events), bare_rate)
    worker = spawn(
        [sys.executable, "-m", "agents.commands"], env, log_dir / "bench-stream-worker.log"
    )
    profiler: subprocess.Popen[bytes] | None = None
    if args.profile:
        # Sample the worker's Python stacks (py-spy, in the dev extra) while it drains the
        # backlog: collapsed stacks, one line per stack with its sample count.
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
        record = [py_spy, "record", "--format", "raw", "-o", args.profile]
        if args.profile_native:
            record.append("--native")  # frames inside the compiled core; fewer samples
        profiler = spawn(
            [*record, "--pid", str(worker.pid)],
            env,
            log_dir / "bench-stream-py-spy.log",
        )
    gateway: subprocess.Popen[bytes] | None = None
    extra_workers: list[subprocess.Popen[bytes]] = []  # --sustained-workers beyond the first
    try:
        async with aiohttp.ClientSession() as session:
            worker_rate, gc_share, worker_cpu = await measure_worker(
                session, web_port, len(events), worker.pid
            )
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                profiler.wait(60)
                print(f"worker profile: {args.profile}")
            counted = await stats(session, web_port)
            print(
                f"worker: {worker_rate:,.0f} events/s  (ratio {worker_rate / bare_rate:.2f}; "
                f"counting core: {counted['counting_core']})"
            )
            print(f"  worker CPU: {worker_cpu:.0%} of a core (about; sampled every 50 ms)")
            print(f"  worker peak RSS: {proc_status_kib(worker.pid, 'VmHWM') / 1024:,.0f} MiB")
            collector = counted["gc"]
            print(
                f"  garbage collector: {gc_share:.0%} of that time (thresholds "
                f"{tuple(collector['thresholds'])}; since start, per generation: "
                f"{collector['seconds']} s in {collector['collections']} collections)"
            )
            print(
                "  changelog written: "
                f"{counted['changelog_bytes'] / max(1, counted['events_seen']):,.0f} bytes/event "
                "(bucket and session records, uncompressed)"
            )
            print(
                f"  batches: {counted['batches']:,}, "
                f"{counted['events_seen'] / max(1, counted['batches']):,.0f} events each on "
                f"average, written in {counted['intervals']:,} intervals"
            )

            # The bare loop again, now the broker has served the worker too: its rate
            # swings by a third between runs here, so the ratio is taken to both runs' mean.
            bare_again = await bare_consume(
                settings.kafka_bootstrap, topic, partitions, len(events)
            )
            bare_mean = (bare_rate + bare_again) / 2
            print(f"bare aiokafka loop again: {bare_again:,.0f} events/s")
            ratios = f"worker {worker_rate / bare_mean:.2f}"
            if floor_rate is not None:
                ratios += f", floor {floor_rate / bare_mean:.2f}"
            print(f"ratios to the bare loop's mean ({bare_mean:,.0f} events/s): {ratios}")

            if args.sustained_rate > 0:
                extra = await add_workers(
                    session,
                    env,
                    work,
                    log_dir,
                    web_port,
                    args.sustained_workers - 1,
                    settings.topic_partitions,
                    extra_workers,
                )
                group = [(worker, web_port), *extra]
                await sustained(args, settings.kafka_bootstrap, topic, session, group)
                if extra:
                    # The freshness run below reads the first worker alone: it takes every
                    # partition back.
                    for proc, _ in extra:
                        stop(proc)
                    everything = list(range(settings.topic_partitions))
                    await wait_for(session, web_port, "owned_partitions", everything, 180)
                    await wait_ready(session, local(web_port), 180)

            from footfall.sites.registry import add_site

            await add_site(
                settings.model_copy(update={"sites_topic": sites_topic}),
                SITE,
                domains=["shop.example.in"],
            )
            footfall = str(Path(sys.executable).with_name("footfall"))
            gateway = spawn(
                [footfall, "gateway", "--port", str(gateway_port)],
                env,
                log_dir / "bench-stream-gateway.log",
            )
            url = local(gateway_port)
            await wait_ready(session, url, 60)
            since = int(time.time() * 1000)
            accepted, latencies = await post_paced(f"{url}/v1/collect", args.rate, args.seconds)
            # Until every posted event is counted. (Not by `events_seen`: a worker that took
            # partitions back from others also counts what they had counted, not committed.)
            deadline = time.monotonic() + 60
            while (fresh := (await stats(session, web_port, since))["freshness_ms"])[
                "n"
            ] < accepted:
                if time.monotonic() > deadline:
                    raise SystemExit(f"worker: {accepted:,} posted events not counted in 60 s")
                await asyncio.sleep(0.1)
            latencies.sort()

            def p(q: float) -> float:
                return latencies[int(q * (len(latencies) - 1))] * 1000 if latencies else 0.0

            print(
                f"freshness over {fresh['n']:,} events posted at {args.rate:,.0f}/s: "
                f"p50 {fresh['p50']} ms, p95 {fresh['p95']} ms "
                f"(gateway request latency p50 {p(0.5):.1f} ms, p95 {p(0.95):.1f} ms)"
            )
    finally:
        for proc in [gateway, worker, *extra_workers]:
            if proc is not None:
                stop(proc)
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([t for t in await admin.list_topics() if tag in t])
        finally:
            await admin.close()
        if influx.check() is None:
            influx.run_query(f"DROP DATABASE {quote_ident(influx_db)}")
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="backlog size")
    parser.add_argument(
        "--events-per-session",
        type=float,
        default=4.0,
        help="mean events per visit (1: one-event sessions, the costliest case)",
    )
    parser.add_argument(
        "--sustained-rate",
        type=float,
        default=12_000,
        help="events/s published straight to Kafka for the steady-state run (0: skip it)",
    )
    parser.add_argument("--sustained-seconds", type=float, default=30)
    parser.add_argument(
        "--sustained-workers",
        type=int,
        default=1,
        help="workers for the steady-state run (the backlog's worker and more in its group)",
    )
    parser.add_argument(
        "--sustained-sites",
        type=int,
        default=200,
        help="shops the steady-state events are spread over (1: one site takes all of it)",
    )
    parser.add_argument("--rate", type=float, default=2000, help="events/s for freshness")
    parser.add_argument("--seconds", type=float, default=15, help="freshness run length")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="first run the backlog through a worker that counts nothing (bench/floor_worker.py)",
    )
    parser.add_argument("--log-dir", default=tempfile.gettempdir())
    parser.add_argument("--profile", help="write the worker's py-spy profile (raw) here")
    parser.add_argument(
        "--profile-native", action="store_true", help="profile native frames too (py-spy --native)"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
