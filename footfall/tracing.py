"""OpenTelemetry traces from the gateway through Kafka into the worker (off by default).

With `tracing_enabled`, `setup()` installs a tracer provider that samples
`tracing_sample_ratio` of the gateway's requests (parent-based, so a worker follows the
gateway's decision) and exports spans over OTLP/HTTP to `otlp_endpoint`. The W3C trace
context (`traceparent`, `tracestate`) of the gateway's request span travels in the Kafka
headers of every event that request published (`inject_headers`); the worker reads it
back (`links_from_headers`) and links its batch span to the producing requests: a batch
holds events of many requests, which is what span links are for (OpenTelemetry's
messaging conventions). An APM (Dynatrace, Datadog, Elastic, Jaeger) then follows one
event from the HTTP request to the batch that counted it.

Off, the global provider is OpenTelemetry's no-op one: spans are not recording, their
context is invalid, and `inject_headers` returns no header, so events carry nothing extra.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from contextvars import Token
from typing import Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from footfall.settings import Settings

log = logging.getLogger(__name__)

TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
#: OpenTelemetry's default limit of links per span.
MAX_LINKS: Final = 128

#: Kafka record headers as aiokafka takes and gives them.
KafkaHeaders = Sequence[tuple[str, bytes]]
HeadersIn = Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None

_propagator: Final = TraceContextTextMapPropagator()
_provider: object | None = None


def setup(settings: Settings, service: str) -> bool:
    """Install the OTLP-exporting tracer provider when tracing is enabled; True if so."""
    global _provider
    if not settings.tracing_enabled:
        return False
    # Imported here: with tracing off, a process never loads the SDK or the exporter.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    attributes: dict[str, str] = {"service.name": service, "service.namespace": "footfall"}
    if settings.environment:
        attributes["deployment.environment.name"] = settings.environment
    provider = TracerProvider(
        resource=Resource.create(attributes),
        sampler=ParentBased(TraceIdRatioBased(settings.tracing_sample_ratio)),
    )
    endpoint = settings.otlp_endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    _provider = provider
    log.info("tracing: exporting %.4g of requests to %s", settings.tracing_sample_ratio, endpoint)
    return True


def enabled() -> bool:
    """Whether `setup` installed an exporting provider (callers skip tracing work if not)."""
    return _provider is not None


def shutdown() -> None:
    """Export the spans still buffered (call at process exit)."""
    provider = _provider
    stop = getattr(provider, "shutdown", None)
    if callable(stop):
        stop()


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def attach(span: trace.Span) -> Token[otel_context.Context]:
    """Make `span` the current one (in this task); returns the token `detach` takes.
    For spans whose start and end are not one `with` block (aiohttp middleware)."""
    return otel_context.attach(trace.set_span_in_context(span))


def detach(token: Token[otel_context.Context]) -> None:
    otel_context.detach(token)


def inject_headers(ctx: otel_context.Context | None = None) -> list[tuple[str, bytes]]:
    """Kafka headers carrying the current (or given) trace context; [] unless it is valid
    and sampled. An unsampled request adds nothing to its events: at a 1 % sample rate, a
    `traceparent` on every event would cost more bytes on the topic (random hex does not
    compress) than the event itself after zstd."""
    if not trace.get_current_span(ctx).get_span_context().trace_flags.sampled:
        return []
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=ctx)
    return [(key, value.encode("ascii")) for key, value in carrier.items()]


def _as_text(headers: HeadersIn) -> dict[str, str]:
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    text: dict[str, str] = {}
    for key, value in items:
        if key in (TRACEPARENT, TRACESTATE) and value is not None:
            try:
                text[key] = value.decode("ascii")
            except (UnicodeDecodeError, AttributeError):
                continue
    return text


def extract_context(headers: HeadersIn) -> otel_context.Context:
    """The trace context a Kafka record carries (an empty context when it carries none)."""
    return _propagator.extract(_as_text(headers))


def extract_http(headers: Mapping[str, str]) -> otel_context.Context:
    """The trace context an HTTP request carries (`traceparent` sent by an instrumented
    client); an empty context for the usual browser request, which starts a new trace."""
    carrier = {k: headers[k] for k in (TRACEPARENT, TRACESTATE) if k in headers}
    return _propagator.extract(carrier)


def span_context(headers: HeadersIn) -> SpanContext | None:
    """The remote span context in a record's headers, or None."""
    carrier = _as_text(headers)
    if TRACEPARENT not in carrier:
        return None
    found = trace.get_current_span(_propagator.extract(carrier)).get_span_context()
    return found if found.is_valid else None


def links_from_headers(records_headers: Iterable[HeadersIn], limit: int = MAX_LINKS) -> list[Link]:
    """Links to the distinct producing spans of a batch's records (at most `limit`)."""
    links: list[Link] = []
    seen: set[tuple[int, int]] = set()
    for headers in records_headers:
        found = span_context(headers)
        if found is None:
            continue
        key = (found.trace_id, found.span_id)
        if key in seen:
            continue
        seen.add(key)
        links.append(Link(found))
        if len(links) >= limit:
            break
    return links


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the active span, for log correlation; None if none."""
    found = trace.get_current_span().get_span_context()
    if not found.is_valid:
        return None
    return format(found.trace_id, "032x"), format(found.span_id, "016x")
