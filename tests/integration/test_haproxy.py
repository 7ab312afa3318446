"""HAProxy (Debian's `haproxy`, haproxy/haproxy.cfg) in front of two real gateway processes,
publishing to the real Kafka: under load one gateway is SIGKILLed, and every request HAProxy
answered 2xx must be on the topic. Counts are printed (`pytest -s` shows them).

Each request carries one event with a unique id, so the topic can be checked id by id. The
requests in flight on the killed gateway may get a 502 (HAProxy does not resend a request
that reached a gateway: it may have been published); their events may or may not be on the
topic, which is allowed. New requests to the dead gateway fail to connect and are retried
on the other one (`retry-on conn-failure`, `option redispatch`), so they succeed.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]

from footfall.settings import Settings, get_settings
from footfall.sites.registry import add_site
from footfall.stack.kafka import Kafka
from tests.integration.httpkit import free_port
from tests.integration.streamkit import topic_records

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "haproxy" / "haproxy.cfg"
FOOTFALL = ROOT / ".venv" / "bin" / "footfall"
REQUESTS = 4000
CONCURRENCY = 32
KILL_AFTER = 1200  # responses received before gateway 1 is killed
PARTITIONS = 4
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@dataclass
class Stack:
    settings: Settings
    site: str
    gateways: list[subprocess.Popen[bytes]]
    haproxy: subprocess.Popen[bytes]
    bind: str
    stats: str
    logs: Path


@dataclass
class Results:
    status: dict[str, int] = field(default_factory=dict)  # event id -> HTTP status (0: no answer)
    errors: Counter[str] = field(default_factory=Counter)  # why there was no answer
    killed_at: float | None = None
    after_kill: list[str] = field(default_factory=list)  # ids of requests sent after the kill


@pytest.fixture(scope="module")
def kafka() -> Kafka:
    service = Kafka(get_settings())
    service.start()  # idempotent: a no-op when the stack is up
    return service


def wait_http(url: str, timeout_s: float, process: subprocess.Popen[bytes], log: Path) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url}: process exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} not ready after {timeout_s}s: {log.read_text()[-2000:]}")


def server_states(stats: str) -> dict[str, str]:
    """Server name -> UP/DOWN/... from HAProxy's CSV stats."""
    import urllib.request

    with urllib.request.urlopen(f"http://{stats}/stats;csv", timeout=2) as response:
        text = response.read().decode().lstrip("# ")
    rows = csv.DictReader(io.StringIO(text))
    return {
        row["svname"]: row["status"]
        for row in rows
        if row["pxname"] == "gateways" and row["svname"] not in ("BACKEND", "FRONTEND")
    }


def backend_counters(stats: str) -> dict[str, int]:
    import urllib.request

    with urllib.request.urlopen(f"http://{stats}/stats;csv", timeout=2) as response:
        text = response.read().decode().lstrip("# ")
    for row in csv.DictReader(io.StringIO(text)):
        if row["pxname"] == "gateways" and row["svname"] == "BACKEND":
            keys = ("wretr", "wredis", "econ", "eresp", "hrsp_2xx", "hrsp_5xx")
            return {key: int(row[key] or 0) for key in keys}
    return {}


@pytest.fixture
def stack(kafka: Kafka, tmp_path: Path) -> Iterator[Stack]:
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy not found: install Debian's `haproxy` package (scripts/bootstrap)")
    tag = uuid.uuid4().hex[:12]
    settings = get_settings().model_copy(
        update={
            "events_topic": f"footfall-test-haproxy-{tag}",
            "sites_topic": f"footfall-test-haproxy-sites-{tag}",
            "topic_partitions": PARTITIONS,
        }
    )
    site = f"shop-{tag[:8]}"
    asyncio.run(add_site(settings, site, domains=["shop.example.com"]))
    env = {
        **os.environ,
        "FOOTFALL_EVENTS_TOPIC": settings.events_topic,
        "FOOTFALL_SITES_TOPIC": settings.sites_topic,
        "FOOTFALL_TOPIC_PARTITIONS": str(PARTITIONS),
        "FOOTFALL_RATE_LIMIT_EVENTS_PER_S": "0",
        "FOOTFALL_GATEWAY_TRUST_FORWARDED_FOR": "true",
        "FOOTFALL_VISITOR_SECRET": "haproxy-test-secret-0123456789",
        "FOOTFALL_LOG_LEVEL": "WARNING",
    }
    processes: list[subprocess.Popen[bytes]] = []
    ports = [free_port(), free_port()]
    try:
        gateways = []
        for n, port in enumerate(ports, 1):
            log = tmp_path / f"gateway{n}.log"
            gateways.append(
                subprocess.Popen(
                    [str(FOOTFALL), "gateway", "--port", str(port)],
                    env=env,
                    stdout=log.open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
            processes.append(gateways[-1])
        for n, (port, process) in enumerate(zip(ports, gateways, strict=True), 1):
            wait_http(f"http://127.0.0.1:{port}/readyz", 90, process, tmp_path / f"gateway{n}.log")
        bind, stats = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        haproxy_log = tmp_path / "haproxy.log"
        haproxy = subprocess.Popen(
            ["haproxy", "-db", "-f", str(CONFIG)],
            env={
                **os.environ,
                "FOOTFALL_HAPROXY_BIND": bind,
                "FOOTFALL_HAPROXY_STATS_BIND": stats,
                "FOOTFALL_GATEWAY_1": f"127.0.0.1:{ports[0]}",
                "FOOTFALL_GATEWAY_2": f"127.0.0.1:{ports[1]}",
            },
            stdout=haproxy_log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        processes.append(haproxy)
        wait_http(f"http://{stats}/readyz", 30, haproxy, haproxy_log)
        deadline = time.monotonic() + 30
        while set(server_states(stats).values()) != {"UP"}:
            assert time.monotonic() < deadline, server_states(stats)
            time.sleep(0.2)
        yield Stack(settings, site, gateways, haproxy, bind, stats, tmp_path)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        asyncio.run(delete_topics([settings.events_topic, settings.sites_topic]))


async def delete_topics(topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=get_settings().kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(topics)
    finally:
        await admin.close()


async def load(stack: Stack) -> Results:
    """REQUESTS one-event requests, CONCURRENCY in flight; gateway 1 dies after KILL_AFTER."""
    results = Results()
    ids = iter(f"ha-{n:06d}-{uuid.uuid4().hex[:8]}" for n in range(REQUESTS))
    url = f"http://{stack.bind}/v1/collect"
    victim = stack.gateways[0]

    async def client(session: aiohttp.ClientSession) -> None:
        for event_id in ids:
            if results.killed_at is not None:
                results.after_kill.append(event_id)
            body = {
                "site": stack.site,
                "name": "pageview",
                "url": "https://shop.example.com/products/1",
                "id": event_id,
                "visitor": f"v-{event_id}",
            }
            try:
                async with session.post(
                    url,
                    data=orjson.dumps(body),
                    headers={"Content-Type": "application/json", "User-Agent": FIREFOX},
                ) as response:
                    await response.read()
                    results.status[event_id] = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                # HAProxy closes the client connection without an answer when the gateway
                # dies with the request on a reused connection (the outcome is unknown,
                # like a 502): the client retries with the same event id.
                results.status[event_id] = 0
                results.errors[type(exc).__name__] += 1
            if len(results.status) >= KILL_AFTER and results.killed_at is None:
                results.killed_at = time.monotonic()
                victim.send_signal(signal.SIGKILL)

    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(CONCURRENCY)))
    return results


async def ids_on_topic(settings: Settings) -> Counter[str]:
    """How often each event id is on the events topic (from the start to the current end)."""
    return Counter(value["id"] for _, value in await topic_records(settings.events_topic))


def test_no_request_answered_2xx_is_lost_when_a_gateway_is_killed(stack: Stack) -> None:
    started = time.monotonic()
    results = asyncio.run(load(stack))
    elapsed = time.monotonic() - started
    assert results.killed_at is not None, "gateway 1 was never killed"
    assert stack.gateways[0].wait(timeout=10) == -signal.SIGKILL
    counters = backend_counters(stack.stats)
    states = server_states(stack.stats)
    on_topic = asyncio.run(ids_on_topic(stack.settings))

    statuses = Counter(results.status.values())
    accepted = {i for i, status in results.status.items() if 200 <= status < 300}
    refused = set(results.status) - accepted
    missing = accepted - on_topic.keys()
    refused_but_published = refused & on_topic.keys()
    duplicated = {i for i, n in on_topic.items() if n > 1}
    late = set(results.after_kill)
    # Requests sent once the kill is at least 3 health checks old: all must have got a 2xx.
    settled = results.after_kill[CONCURRENCY * 4 :]
    print(
        f"\nHAProxy failover: {REQUESTS} requests (1 event each, unique ids), "
        f"{CONCURRENCY} in flight, gateway 1 SIGKILLed after {KILL_AFTER} answers, "
        f"{elapsed:.1f}s ({REQUESTS / elapsed:,.0f} req/s)\n"
        f"  answers by status:            {dict(sorted(statuses.items()))} (0: no answer)\n"
        f"  no answer, by client error:   {dict(results.errors)}\n"
        f"  answered 2xx:                 {len(accepted)}\n"
        f"  answered 2xx, on events topic: {len(accepted & on_topic.keys())}\n"
        f"  answered 2xx, NOT on topic:   {len(missing)}\n"
        f"  not 2xx, on topic anyway:     {len(refused_but_published)} "
        "(allowed: published, then the gateway died)\n"
        f"  ids on topic more than once:  {len(duplicated)}\n"
        f"  events on topic:              {sum(on_topic.values())} ({len(on_topic)} distinct ids)\n"
        f"  sent after the kill:          {len(late)}, of which not 2xx: {len(late & refused)}\n"
        f"  HAProxy backend counters:     {counters}\n"
        f"  HAProxy server states:        {states}"
    )
    assert not missing, f"answered 2xx but not on the topic: {sorted(missing)[:10]}"
    assert not duplicated, f"published twice: {sorted(duplicated)[:10]}"
    assert len(results.status) == REQUESTS
    # Only requests in flight on the killed gateway may fail.
    assert len(refused) <= CONCURRENCY, f"{len(refused)} requests not accepted"
    assert all(results.status[i] == 202 for i in settled), "a request failed long after the kill"
    assert states.get("gateway1") not in (None, "UP"), states
    assert states.get("gateway2") == "UP", states
