"""footfall.tracing: the W3C trace context through Kafka headers, and the OTLP export.

The in-process tests use a TracerProvider of their own (OpenTelemetry's global provider can
be set once per process); the export test runs `setup()` in a subprocess against a local
HTTP server standing in for an OTLP collector.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from footfall import tracing
from footfall.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]


def provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider, exporter


def test_no_active_span_means_no_headers() -> None:
    assert tracing.inject_headers() == []
    assert tracing.current_ids() is None
    assert tracing.links_from_headers([[], None, {}]) == []


def test_a_request_span_travels_in_kafka_headers_and_links_the_worker_batch() -> None:
    tracer_provider, exporter = provider()
    tracer = tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("POST /v1/collect", kind=SpanKind.SERVER) as request:
        headers = tracing.inject_headers()
        ids = tracing.current_ids()
    context = request.get_span_context()
    assert [key for key, _ in headers] == ["traceparent"]
    value = dict(headers)["traceparent"].decode()
    assert value == f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    assert context.trace_flags.sampled
    assert ids == (f"{context.trace_id:032x}", f"{context.span_id:016x}")

    # The worker: a batch of three records, two from this request, one untraced.
    links = tracing.links_from_headers([headers, list(headers), [("other", b"x")]])
    assert len(links) == 1
    with tracer.start_as_current_span("count batch", kind=SpanKind.CONSUMER, links=links):
        pass
    batch = next(s for s in exporter.get_finished_spans() if s.name == "count batch")
    assert [link.context.span_id for link in batch.links] == [context.span_id]
    assert batch.links[0].context.trace_id == context.trace_id


def test_extract_gives_the_parent_for_a_single_record_span() -> None:
    tracer_provider, exporter = provider()
    tracer = tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        headers = tracing.inject_headers()
    with tracer.start_as_current_span("process", context=tracing.extract_context(headers)):
        pass
    process = next(s for s in exporter.get_finished_spans() if s.name == "process")
    assert process.parent is not None
    assert process.parent.span_id == request.get_span_context().span_id


def test_an_http_traceparent_becomes_the_parent() -> None:
    from multidict import CIMultiDict

    tracer_provider, exporter = provider()
    tracer = tracer_provider.get_tracer("test")
    incoming = CIMultiDict(
        {"Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    )
    with tracer.start_as_current_span("POST", context=tracing.extract_http(incoming)):
        pass
    span = exporter.get_finished_spans()[0]
    assert span.parent is not None
    assert f"{span.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert f"{span.parent.span_id:016x}" == "b7ad6b7169203331"


def test_an_unsampled_request_adds_no_header() -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        assert span.get_span_context().is_valid
        assert tracing.inject_headers() == []


def test_malformed_headers_are_ignored() -> None:
    assert tracing.span_context([("traceparent", b"\xff\xfe")]) is None
    assert tracing.span_context({"traceparent": b"00-zz-zz-01"}) is None
    assert tracing.links_from_headers([[("traceparent", b"garbage")]]) == []


def test_links_are_capped() -> None:
    tracer_provider, _ = provider()
    tracer = tracer_provider.get_tracer("test")
    batches = []
    for _ in range(5):
        with tracer.start_as_current_span("request"):
            batches.append(tracing.inject_headers())
    assert len(tracing.links_from_headers(batches, limit=3)) == 3


def test_setup_is_a_no_op_when_tracing_is_off() -> None:
    assert tracing.setup(get_settings(), "footfall-gateway") is False


def test_setup_exports_spans_over_otlp_http() -> None:
    script = textwrap.dedent(
        """
        import http.server, threading
        received = []
        class Collector(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, self.headers["Content-Type"], len(body)))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()
            def log_message(self, *args):
                pass
        server = http.server.HTTPServer(("127.0.0.1", 0), Collector)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        import os
        os.environ["FOOTFALL_OTLP_ENDPOINT"] = f"http://127.0.0.1:{server.server_port}"
        from footfall import tracing
        from footfall.settings import get_settings
        assert tracing.setup(get_settings(), "footfall-test")
        with tracing.tracer("test").start_as_current_span("request"):
            assert tracing.inject_headers()
        tracing.shutdown()
        server.shutdown()
        assert received and received[0][0] == "/v1/traces", received
        print("exported", received[0])
        """
    )
    env = {
        **os.environ,
        "FOOTFALL_TRACING_ENABLED": "true",
        "FOOTFALL_TRACING_SAMPLE_RATIO": "1.0",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "exported ('/v1/traces', 'application/x-protobuf'" in result.stdout
