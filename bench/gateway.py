"""Events per second of one gateway process on one core, against a bare aiohttp handler.

Run: ``.venv/bin/python bench/gateway.py`` with Kafka up (``footfall stack up``).

Both servers run as subprocesses pinned to core 1 (``taskset``); the load generator, an
aiohttp client in this process, is pinned to core 0. For each batch size (1, 20, 100
events per request) it runs a closed loop of `--concurrency` requests in flight for
`--seconds` (at most `--max-requests`), first against the bare handler (202 without
validation or Kafka), then against ``footfall gateway`` publishing to a fresh topic of
the real broker. Then, for the gateway, an open loop at half the maximum event rate
measures latency from each request's scheduled send time (no coordinated omission).

The server's CPU use is sampled from /proc: near 100 % means the server was the limit,
well below means the load generator (or the broker) was. `ev/cpu-s` (events per second
of server CPU) is the figure least moved by other work on the machine. Prints a table;
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

from footfall.stack.base import process_cpu_seconds
from web.gateway.commands import new_event_loop

ROOT = Path(__file__).resolve().parents[1]
SITE = "bench-shop"
SERVER_CORE = 1
CLIENT_CORE = 0
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
]


# --- the bare server (run as `bench/gateway.py --serve-bare PORT`) ------------------------------
async def _bare_collect(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=202, body=b'{"accepted":1}', content_type="application/json")


def serve_bare(port: int) -> None:
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/v1/collect", _bare_collect)
    web.run_app(
        app, host="127.0.0.1", port=port, access_log=None, print=None, loop=new_event_loop()
    )


# --- requests -----------------------------------------------------------------------------------
def make_bodies(batch: int, count: int, seed: int = 7) -> list[bytes]:
    """Realistic tracker requests (~350-byte events) from a pool of visitors and pages."""
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    bodies = []
    for _ in range(count):
        visitor = f"v{rng.randrange(50_000)}"
        events = []
        for _ in range(batch):
            page = rng.randrange(300)
            events.append(
                {
                    "site": SITE,
                    "name": "pageview" if rng.random() < 0.8 else "add_to_cart",
                    "url": f"https://shop.example.in/p/{page}?utm_source=news&ref={page % 7}",
                    "referrer": rng.choice(["", "https://www.google.co.in/", "https://t.co/x"]),
                    "title": f"Product {page}",
                    "visitor": visitor,
                    "id": uuid.uuid4().hex,
                    "ts": now - rng.randrange(60_000),
                    "screen": "1920x1080",
                    "lang": "en-IN",
                    "props": {"plan": "free", "items": rng.randrange(5)},
                }
            )
        bodies.append(orjson.dumps(events[0] if batch == 1 else {"events": events}))
    return bodies


@dataclass
class Result:
    requests: int
    events: int
    errors: int
    seconds: float
    latencies: list[float]
    server_cpu: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _cpu_seconds(pid: int) -> float:
    seconds = process_cpu_seconds(pid)
    if seconds is None:
        raise SystemExit(f"process {pid} is gone")
    return seconds


async def _post(
    session: aiohttp.ClientSession, url: str, body: bytes, ua: str
) -> tuple[int, float]:
    started = time.perf_counter()
    async with session.post(
        url, data=body, headers={"Content-Type": "text/plain", "User-Agent": ua}
    ) as response:
        await response.read()
        return response.status, time.perf_counter() - started


async def closed_loop(
    url: str,
    pid: int,
    bodies: list[bytes],
    batch: int,
    seconds: float,
    max_requests: int,
    concurrency: int,
) -> Result:
    """`concurrency` requests always in flight, for `seconds` or `max_requests`."""
    latencies: list[float] = []
    errors = 0
    sent = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as s:
        # Warm up: connections, caches, producer metadata.
        await asyncio.gather(
            *(_post(s, url, bodies[i], USER_AGENTS[0]) for i in range(concurrency))
        )
        stop_at = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            nonlocal errors, sent
            i = offset
            while time.perf_counter() < stop_at and sent < max_requests:
                sent += 1
                status, latency = await _post(
                    s, url, bodies[i % len(bodies)], USER_AGENTS[i % len(USER_AGENTS)]
                )
                i += concurrency
                if status == 202:
                    latencies.append(latency)
                else:
                    errors += 1

        cpu_before, started = _cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = (_cpu_seconds(pid) - cpu_before) / elapsed
    return Result(len(latencies), len(latencies) * batch, errors, elapsed, latencies, cpu)


async def open_loop(
    url: str, pid: int, bodies: list[bytes], batch: int, events_per_s: float, seconds: float
) -> Result:
    """Requests sent on a fixed schedule; latency counted from the scheduled time, so a
    slow answer also charges the requests queued behind it (no coordinated omission)."""
    interval = batch / events_per_s
    total = int(seconds / interval)
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as s:
        await asyncio.gather(*(_post(s, url, bodies[i], USER_AGENTS[0]) for i in range(16)))

        async def one(k: int, scheduled: float) -> None:
            nonlocal errors
            status, _ = await _post(s, url, bodies[k % len(bodies)], USER_AGENTS[k % 4])
            if status == 202:
                latencies.append(time.perf_counter() - scheduled)
            else:
                errors += 1

        cpu_before, started = _cpu_seconds(pid), time.perf_counter()
        start = started + 0.01
        in_flight: set[asyncio.Task[None]] = set()
        for k in range(total):
            scheduled = start + k * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(k, scheduled))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
        elapsed = time.perf_counter() - started
        cpu = (_cpu_seconds(pid) - cpu_before) / elapsed
    return Result(len(latencies), len(latencies) * batch, errors, elapsed, latencies, cpu)


# --- processes ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(argv: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > SERVER_CORE:
        return ["taskset", "-c", str(SERVER_CORE), *argv]
    return argv


async def wait_answering(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status in (200, 405):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout_s:.0f}s")


async def register_site(env: dict[str, str]) -> None:
    from footfall.settings import get_settings
    from footfall.sites.registry import add_site

    settings = get_settings().model_copy(update={"sites_topic": env["FOOTFALL_SITES_TOPIC"]})
    await add_site(settings, SITE, domains=["shop.example.in"])


async def delete_topics(topics: list[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]

    from footfall.settings import get_settings

    admin = AIOKafkaAdminClient(bootstrap_servers=get_settings().kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(topics)
    finally:
        await admin.close()


# --- main ---------------------------------------------------------------------------------------
def fmt(label: str, batch: int, r: Result) -> str:
    per_cpu = r.events_per_s / r.server_cpu if r.server_cpu > 0 else float("nan")
    return (
        f"{label:<9} {batch:>5} {r.events_per_s:>10,.0f} {r.requests / r.seconds:>8,.0f} "
        f"{r.pct(0.5):>8.2f} {r.pct(0.99):>8.2f} {r.server_cpu * 100:>6.0f}% "
        f"{per_cpu:>10,.0f} {r.errors:>6}"
    )


async def measure(args: argparse.Namespace, urls: dict[str, str], pids: dict[str, int]) -> None:
    header = (
        f"{'server':<9} {'batch':>5} {'events/s':>10} {'req/s':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'cpu':>7} {'ev/cpu-s':>10} {'errors':>6}"
    )
    print(
        f"closed loop, {args.concurrency} requests in flight, {args.seconds:.0f} s per case"
        + (f", best of {args.repeat}" if args.repeat > 1 else "")
    )
    print(header)
    maxima: dict[int, float] = {}
    ratios: dict[int, float] = {}
    for batch in args.batches:
        bodies = make_bodies(batch, 1000 if batch < 100 else 300)
        results = {}
        for name in ("bare", "gateway"):
            runs = [
                await closed_loop(
                    urls[name],
                    pids[name],
                    bodies,
                    batch,
                    args.seconds,
                    args.max_requests,
                    args.concurrency,
                )
                for _ in range(args.repeat)
            ]
            results[name] = r = max(runs, key=lambda run: run.events_per_s)
            print(fmt(name, batch, r), flush=True)
        maxima[batch] = results["gateway"].events_per_s
        ratios[batch] = results["gateway"].events_per_s / results["bare"].events_per_s
    print()
    print(
        "gateway / bare, events/s: " + ", ".join(f"batch {b}: {r:.2f}" for b, r in ratios.items())
    )
    print()
    print(
        f"open loop at half the gateway's maximum, {args.seconds:.0f} s per case"
        + (f", lowest p99 of {args.repeat}" if args.repeat > 1 else "")
    )
    print(header)
    for batch in args.batches:
        bodies = make_bodies(batch, 1000 if batch < 100 else 300, seed=11)
        half = maxima[batch] / 2
        runs = [
            await open_loop(urls["gateway"], pids["gateway"], bodies, batch, half, args.seconds)
            for _ in range(args.repeat)
        ]
        r = min(runs, key=lambda run: run.pct(0.99))
        print(fmt("gateway", batch, r) + f"   (target {half:,.0f} events/s)", flush=True)


def run(args: argparse.Namespace) -> None:
    from footfall.settings import get_settings
    from footfall.stack.kafka import Kafka

    reason = Kafka(get_settings()).check()
    if reason is not None:
        raise SystemExit(f"Kafka is not answering ({reason}); run `footfall stack up`")
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > SERVER_CORE:
        os.sched_setaffinity(0, {CLIENT_CORE})

    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "FOOTFALL_EVENTS_TOPIC": f"footfall-bench-events-{tag}",
        "FOOTFALL_SITES_TOPIC": f"footfall-bench-sites-{tag}",
        "FOOTFALL_VISITOR_SECRET": "bench-secret-0123456789abcdef",
        "FOOTFALL_RATE_LIMIT_EVENTS_PER_S": "0",  # measure the gateway, not the limiter
    }
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(register_site(env))
        gateway_port, bare_port = free_port(), free_port()
        log_path = Path(args.log_dir) / "bench-gateway.log"
        footfall = str(Path(sys.executable).with_name("footfall"))
        with log_path.open("wb") as gateway_log:
            processes = {
                "bare": subprocess.Popen(
                    pinned([sys.executable, __file__, "--serve-bare", str(bare_port)]), cwd=ROOT
                ),
                "gateway": subprocess.Popen(
                    pinned([footfall, "gateway", "--port", str(gateway_port)]),
                    cwd=ROOT,
                    env=env,
                    stdout=gateway_log,
                    stderr=subprocess.STDOUT,
                ),
            }
            urls = {
                "bare": f"http://127.0.0.1:{bare_port}/v1/collect",
                "gateway": f"http://127.0.0.1:{gateway_port}/v1/collect",
            }
            try:
                runner.run(wait_answering(urls["bare"]))
                runner.run(wait_answering(f"http://127.0.0.1:{gateway_port}/readyz"))
                pids = {name: process.pid for name, process in processes.items()}
                print(
                    f"gateway log: {log_path}; servers on core {SERVER_CORE}, load on {CLIENT_CORE}"
                )
                runner.run(measure(args, urls, pids))
            finally:
                for process in processes.values():
                    process.terminate()
                for process in processes.values():
                    process.wait(timeout=30)
                runner.run(
                    delete_topics([env["FOOTFALL_EVENTS_TOPIC"], env["FOOTFALL_SITES_TOPIC"]])
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=8.0, help="per case (default 8)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="per case")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument(
        "--batches", type=lambda s: [int(x) for x in s.split(",")], default=[1, 20, 100]
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per case; report the best (for a machine shared with other work)",
    )
    parser.add_argument("--log-dir", default="/tmp", help="where the gateway's log goes")
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return
    run(args)


if __name__ == "__main__":
    main()
