"""The gateway's Prometheus metrics, on a registry of its own (one per app)."""

from __future__ import annotations

from typing import Final, Literal

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

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

_LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class GatewayMetrics:
    """Counters and histograms the handlers update, and the `/metrics` page."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Counter(
            "footfall_gateway_requests",
            "HTTP requests answered, by route and status.",
            ("route", "status"),
            registry=self.registry,
        )
        self.events_accepted = Counter(
            "footfall_gateway_events_accepted",
            "Events answered 202 (including those dropped by sampling).",
            registry=self.registry,
        )
        self.events_sampled_out = Counter(
            "footfall_gateway_events_sampled_out",
            "Accepted events not published because sampling dropped their visitor.",
            registry=self.registry,
        )
        self.events_rejected = Counter(
            "footfall_gateway_events_rejected",
            "Events not accepted, by reason.",
            ("reason",),
            registry=self.registry,
        )
        self.produce_seconds = Histogram(
            "footfall_gateway_produce_seconds",
            "Time from handing a request's events to the producer to the last broker ack.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.sample_rate = Gauge(
            "footfall_gateway_sample_rate",
            "Sample rate N in force (1: every visitor kept).",
            registry=self.registry,
        )
        self.sample_rate.set(1)
        self.backlog = Gauge(
            "footfall_gateway_events_awaiting_ack",
            "Events handed to the producer and not yet acknowledged by Kafka.",
            registry=self.registry,
        )
        self.ready = Gauge(
            "footfall_gateway_ready",
            "1 when Kafka is reachable and the site registry is loaded.",
            registry=self.registry,
        )

    def reject(self, reason: RejectReason, events: int) -> None:
        self.events_rejected.labels(reason).inc(events)

    def page(self) -> web.Response:
        response = web.Response(body=generate_latest(self.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
