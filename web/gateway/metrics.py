"""The gateway's Prometheus metrics, on a registry of its own (one per app)."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from footfall.observability import (
    GATEWAY_EVENTS_ACCEPTED,
    GATEWAY_EVENTS_AWAITING_ACK,
    GATEWAY_EVENTS_REJECTED,
    GATEWAY_EVENTS_SAMPLED_OUT,
    GATEWAY_PRODUCE_SECONDS,
    GATEWAY_READY,
    GATEWAY_REQUESTS,
    GATEWAY_SAMPLE_RATE,
    process_registry,
)

#: Why events were not accepted (label values of `footfall_gateway_events_rejected_total`).
RejectReason = Literal[
    "invalid",  # a field broke the wire format (the whole request is refused)
    "unknown_site",
    "bad_body",  # not JSON, wrong shape: counted as one event, the count is unknowable
    "unsupported_media_type",
    "too_large",
    "rate_limited",
    "unavailable",  # Kafka did not acknowledge in time, or the registry is not loaded
]


class GatewayMetrics:
    """Counters and histograms the handlers update, and the `/metrics` page."""

    def __init__(self) -> None:
        self.registry = process_registry()
        r = self.registry
        self.requests = GATEWAY_REQUESTS.counter(r)
        self.events_accepted = GATEWAY_EVENTS_ACCEPTED.counter(r)
        self.events_sampled_out = GATEWAY_EVENTS_SAMPLED_OUT.counter(r)
        self.events_rejected = GATEWAY_EVENTS_REJECTED.counter(r)
        self.produce_seconds = GATEWAY_PRODUCE_SECONDS.histogram(r)
        self.sample_rate = GATEWAY_SAMPLE_RATE.gauge(r)
        self.sample_rate.set(1)
        self.backlog = GATEWAY_EVENTS_AWAITING_ACK.gauge(r)
        self.ready = GATEWAY_READY.gauge(r)

    def reject(self, reason: RejectReason, events: int) -> None:
        self.events_rejected.labels(reason).inc(events)

    def page(self) -> web.Response:
        response = web.Response(body=generate_latest(self.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
