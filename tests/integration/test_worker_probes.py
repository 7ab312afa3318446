"""footfall.worker_probes on a real Faust worker against the real Kafka: /healthz answers,
/readyz turns 200 once table recovery is done, /metrics carries the consumer lag per
partition, which falls to 0 once the backlog is consumed and committed."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]

from footfall.settings import get_settings
from footfall.stack.kafka import Kafka
from footfall.topics import ensure_topic

pytestmark = pytest.mark.integration

APP = Path(__file__).with_name("worker_probe_app.py")
ROOT = Path(__file__).resolve().parents[2]
EVENTS = 500


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def lag(page: str, topic: str) -> dict[str, float]:
    pattern = rf'footfall_worker_consumer_lag{{partition="(\d+)",topic="{re.escape(topic)}"}} (\S+)'
    return {p: float(v) for p, v in re.findall(pattern, page)}


async def produce(topic: str) -> None:
    await ensure_topic(get_settings().kafka_bootstrap, topic, partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=get_settings().kafka_bootstrap)
    await producer.start()
    try:
        for n in range(EVENTS):
            await producer.send(topic, f"event {n}".encode(), partition=n % 2)
        await producer.flush()
    finally:
        await producer.stop()


async def delete_topics(prefix: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=get_settings().kafka_bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix) or t == topic]
        await admin.delete_topics(names)
    finally:
        await admin.close()


def test_probes_and_lag_of_a_real_worker(tmp_path: Path) -> None:
    Kafka(get_settings()).start()  # a no-op when the stack is up
    tag = uuid.uuid4().hex[:10]
    app_id, topic = f"footfall-test-probes-{tag}", f"footfall-test-probes-events-{tag}"
    asyncio.run(produce(topic))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, str(APP), app_id, topic, str(port), str(tmp_path / "data")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        seen_unready = False
        deadline = time.monotonic() + 90
        while True:
            assert worker.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "worker never ready: " + log.read_text()[-3000:]
            health, _ = get(f"{base}/healthz")
            ready, body = get(f"{base}/readyz")
            seen_unready |= health == 200 and ready == 503
            if ready == 200:
                break
            time.sleep(0.2)
        assert '"ready":true' in body.replace(" ", "")

        deadline = time.monotonic() + 60
        while True:
            status, page = get(f"{base}/metrics")
            assert status == 200
            found = lag(page, topic)
            processed = re.search(
                r'footfall_worker_events_processed_total{agent="consume"} (\S+)', page
            )
            if found and set(found) == {"0", "1"} and all(v == 0 for v in found.values()):
                break
            assert time.monotonic() < deadline, f"lag never reached 0: {found}\n{page[-2000:]}"
            time.sleep(0.5)
        assert processed is not None
        assert float(processed.group(1)) == EVENTS
        assert "footfall_worker_table_recovering 0.0" in page
        assert "footfall_worker_ready 1.0" in page
        assert 'footfall_worker_stream_time_seconds{partition="0"}' in page
        # Caught up: nothing unread, so nothing is stale.
        assert 'footfall_worker_freshness_delay_seconds{partition="0"} 0.0' in page
        assert 'footfall_worker_freshness_delay_seconds{partition="1"} 0.0' in page
        print(f"\nworker probes: unready seen before ready: {seen_unready}; lag {found}")
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        asyncio.run(delete_topics(app_id, topic))
