"""footfall.observability: the worker's per-partition gauges and the batch run's metrics;
footfall.dogstatsd: the lines sent to a real UDP socket; footfall.logs: ECS lines."""

from __future__ import annotations

import io
import logging
import socket
from collections.abc import Iterator

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from footfall import dogstatsd, logs
from footfall.observability import (
    BATCH_LAST_SUCCESS,
    WORKER_FRESHNESS_SECONDS,
    BatchRun,
    WorkerMetrics,
    batch_registry,
    by_statsd_name,
    observe_many,
    push_batch_metrics,
)
from footfall.settings import get_settings


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels or None)


# --- worker gauges -----------------------------------------------------------------------------
def test_partition_gauges_follow_ownership_lag_and_freshness() -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    r = metrics.registry
    metrics.set_partitions(
        "events.raw",
        end_offsets={0: 1000, 1: 500},
        committed={0: 900, 1: 500},
        read={0: 950, 1: 499},
        stream_time_ms={0: 100_000, 1: 90_000},
        now=400.0,
    )
    assert sample(r, "footfall_worker_consumer_lag", topic="events.raw", partition="0") == 100
    assert sample(r, "footfall_worker_consumer_lag", topic="events.raw", partition="1") == 0
    assert sample(r, "footfall_worker_stream_time_seconds", partition="0") == 100.0
    # Partition 0 has unread events: stale by now - newest counted; 1 is caught up.
    assert sample(r, "footfall_worker_freshness_delay_seconds", partition="0") == 300.0
    assert sample(r, "footfall_worker_freshness_delay_seconds", partition="1") == 0.0

    # Partition 0 moves to another worker: its series go, so no stale lag stays behind.
    metrics.set_partitions(
        "events.raw",
        end_offsets={1: 600},
        committed={1: 550},
        read={1: 599},
        stream_time_ms={1: 95_000},
        now=400.0,
    )
    assert sample(r, "footfall_worker_consumer_lag", topic="events.raw", partition="0") is None
    assert sample(r, "footfall_worker_freshness_delay_seconds", partition="0") is None
    assert sample(r, "footfall_worker_consumer_lag", topic="events.raw", partition="1") == 50


def test_a_never_committed_partition_counts_from_what_was_read() -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.set_partitions(
        "events.raw",
        end_offsets={2: 100},
        committed={},
        read={2: 39},
        stream_time_ms={},
        now=1.0,
    )
    r = metrics.registry
    assert sample(r, "footfall_worker_consumer_lag", topic="events.raw", partition="2") == 60
    assert sample(r, "footfall_worker_freshness_delay_seconds", partition="2") == 0


def test_a_failed_batch_run_carries_no_last_success() -> None:
    ok = batch_registry(BatchRun(100.0, 160.0, True, {"done": 2, "partial": 1}, 5000))
    assert sample(ok, BATCH_LAST_SUCCESS.name) == 160.0
    assert sample(ok, "footfall_batch_duration_seconds") == 60.0
    assert sample(ok, "footfall_batch_days", state="done") == 2
    failed = batch_registry(BatchRun(100.0, 130.0, False, {}, 0))
    assert sample(failed, BATCH_LAST_SUCCESS.name) is None  # pushadd keeps the last one
    assert sample(failed, "footfall_batch_last_run_failed") == 1


# --- DogStatsD ----------------------------------------------------------------------------------
@pytest.fixture
def udp() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    lines: list[str] = []
    sock.settimeout(0.2)
    try:
        while True:
            lines += sock.recv(65_535).decode().split("\n")
    except TimeoutError:
        return lines


def test_bridge_sends_gauges_counter_increases_and_histogram_sums(udp: socket.socket) -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    port = udp.getsockname()[1]
    bridge = dogstatsd.DogStatsdBridge(
        [metrics.registry], "127.0.0.1", port, tags=["service:footfall-worker"]
    )
    metrics.events_processed.labels("count").inc(5)
    metrics.ready.set(1)
    metrics.sink_write_seconds.labels("influx").observe(0.5)
    bridge.send()
    first = set(received(udp))
    assert "footfall.worker.events_processed:5|c|#service:footfall-worker,agent:count" in first
    assert "footfall.worker.ready:1|g|#service:footfall-worker" in first
    tags = "#service:footfall-worker,sink:influx"
    assert f"footfall.worker.sink_write_seconds.count:1|c|{tags}" in first
    assert f"footfall.worker.sink_write_seconds.sum:0.5|c|{tags}" in first
    assert not any("_created" in line or "_bucket" in line for line in first)

    metrics.events_processed.labels("count").inc(3)
    bridge.send()
    second = set(received(udp))
    assert "footfall.worker.events_processed:3|c|#service:footfall-worker,agent:count" in second
    # Unchanged counters send nothing; gauges are sent every time.
    assert not any(line.startswith("footfall.worker.sink_write_seconds") for line in second)
    assert "footfall.worker.ready:1|g|#service:footfall-worker" in second
    bridge.close()


def test_every_statsd_name_the_bridge_emits_is_in_the_catalogue(udp: socket.socket) -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.sink_write_errors.labels("influx").inc()
    metrics.freshness.observe(1.0)
    bridge = dogstatsd.DogStatsdBridge([metrics.registry], "127.0.0.1", udp.getsockname()[1])
    names = {line.split(":", 1)[0] for line in bridge.lines()}
    assert names <= by_statsd_name().keys()


def test_datagrams_stay_under_the_mtu() -> None:
    lines = [f"footfall.worker.x:{i}|g|#partition:{i}" for i in range(500)]
    datagrams = list(dogstatsd._pack(lines))
    assert sum(count for _, count in datagrams) == 500
    assert all(len(data) <= dogstatsd.MAX_DATAGRAM for data, _ in datagrams)
    assert b"\n".join(data for data, _ in datagrams).decode().split("\n") == lines


def test_bridge_is_off_unless_enabled() -> None:
    settings = get_settings()
    assert dogstatsd.bridge_from_settings(settings, "x", []) is None
    on = settings.model_copy(
        update={"dogstatsd_enabled": True, "environment": "prod", "dogstatsd_tags": "team:web"}
    )
    bridge = dogstatsd.bridge_from_settings(on, "footfall-gateway", [])
    assert bridge is not None
    assert bridge.tags == ["service:footfall-gateway", "env:prod", "team:web"]


def test_a_missing_agent_costs_nothing() -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.ready.set(1)
    # Port 9 (discard) on a closed loopback port: UDP sends do not fail, or fail quietly.
    bridge = dogstatsd.DogStatsdBridge([metrics.registry], "127.0.0.1", 9)
    bridge.send()
    bridge.close()


# --- ECS logs ------------------------------------------------------------------------------
def ecs_line(record: logging.LogRecord, environment: str = "") -> dict[str, object]:
    formatter = logs.EcsFormatter(service="footfall-gateway", environment=environment)
    line: dict[str, object] = orjson.loads(formatter.format(record))
    return line


def test_ecs_line_has_the_required_fields_first() -> None:
    record = logging.LogRecord("web.gateway", logging.WARNING, __file__, 1, "hi %s", ("x",), None)
    record.created = 1_767_225_600.123  # 2026-01-01T00:00:00.123Z
    line = ecs_line(record, environment="prod")
    assert list(line)[:4] == ["@timestamp", "log.level", "message", "ecs.version"]
    assert line["@timestamp"] == "2026-01-01T00:00:00.123Z"
    assert line["log.level"] == "warning"
    assert line["message"] == "hi x"
    assert line["log"] == {"logger": "web.gateway"}
    assert line["service"] == {"name": "footfall-gateway", "environment": "prod"}


def test_the_gateway_request_line_maps_to_ecs_fields() -> None:
    record = logging.LogRecord("footfall.gateway.access", logging.INFO, "", 0, "request", (), None)
    extra = {
        "method": "POST",
        "route": "/v1/collect",
        "status": 202,
        "duration_ms": 1.5,
        "events": 20,
        "outcome": "accepted",
        "url.domain": "collect.example.com",
    }
    record.__dict__.update(extra)
    line = ecs_line(record)
    assert line["http"] == {"request": {"method": "POST"}, "response": {"status_code": 202}}
    assert line["url"] == {"path": "/v1/collect", "domain": "collect.example.com"}
    assert line["event"] == {"duration": 1_500_000, "outcome": "success"}
    assert line["footfall"] == {"events": 20, "outcome": "accepted"}


def test_an_exception_goes_to_error_fields() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, "", 0, "failed", (), sys.exc_info())
    line = ecs_line(record)
    error = line["error"]
    assert isinstance(error, dict)
    assert error["type"] == "ValueError"
    assert error["message"] == "boom"
    assert "Traceback" in error["stack_trace"]


def test_configure_and_dict_config_give_the_same_lines() -> None:
    import logging.config

    settings = get_settings()
    config = logs.dict_config(settings, "footfall-worker", level="INFO")
    stream = io.StringIO()
    config["handlers"]["stderr"]["stream"] = stream
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logging.config.dictConfig(config)
        logging.getLogger("agents.count").info("counted %d", 3)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    line = orjson.loads(stream.getvalue().splitlines()[-1])
    assert line["message"] == "counted 3"
    assert line["service"]["name"] == "footfall-worker"


def test_page_renders() -> None:
    metrics = WorkerMetrics()
    assert b"footfall_worker_consumer_lag" in generate_latest(metrics.registry)
    assert b"process_cpu_seconds_total" in generate_latest(metrics.registry)


def test_batch_metrics_are_pushed_with_pushadd() -> None:
    import http.server
    import threading

    requests: list[tuple[str, str, bytes]] = []

    class Pushgateway(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            requests.append((self.command, self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Pushgateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        run = BatchRun(100.0, 160.0, True, {"done": 1}, 10)
        assert push_batch_metrics(url, run)
        assert not push_batch_metrics("", run)  # off
        assert not push_batch_metrics("http://127.0.0.1:9", run)  # down: no exception
    finally:
        server.shutdown()
    assert [(method, path) for method, path, _ in requests] == [
        ("POST", "/metrics/job/footfall_batch")
    ]
    assert b"footfall_batch_last_success_timestamp_seconds 160.0" in requests[0][2]


def test_observe_many_gives_the_page_of_observing_one_by_one() -> None:
    amounts = [0.0, 0.004, 0.005, 0.3, 1.0, 2.5, 7.0, 59.9, 600.0, 10**6, -1.0]
    one, many = CollectorRegistry(), CollectorRegistry()
    one_by_one = WORKER_FRESHNESS_SECONDS.histogram(one)
    for amount in amounts:
        one_by_one.observe(amount)
    observe_many(WORKER_FRESHNESS_SECONDS.histogram(many), amounts)

    def page(registry: CollectorRegistry) -> str:  # less the creation time, which differs
        lines = generate_latest(registry).decode().splitlines()
        return "\n".join(line for line in lines if "_created" not in line)

    assert page(many) == page(one)
    assert "footfall_worker_freshness_seconds_count 11.0" in page(many)
