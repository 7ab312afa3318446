"""The one list of Footfall's metrics: name, help, kind and labels, for every process.

The gateway, the stream worker and the batch job create their Prometheus metrics from
these specs; the DogStatsD bridge (footfall.dogstatsd) derives Datadog names from them;
the alert rules (monitoring/prometheus/rules.yml) and the Datadog monitors
(monitoring/datadog/) name only metrics listed here, which tests/unit/test_monitoring.py
checks. A metric is renamed or re-described here, once.

Naming: `footfall_<process>_<what>[_<unit>]`; counters are named without `_total`
(prometheus_client adds it on the page). The DogStatsD name replaces the first two
underscores by dots: `footfall_worker_consumer_lag` -> `footfall.worker.consumer_lag`.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import pushadd_to_gateway
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

log = logging.getLogger(__name__)

Kind = Literal["counter", "gauge", "histogram"]

#: Latency buckets (seconds) for request-sized work: produce acks, sink writes.
LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
#: The gateway's produce-latency buckets (finer below 25 ms, where acks normally land).
GATEWAY_LATENCY_BUCKETS: Final = (
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
#: Freshness buckets (seconds): gateway receipt to durably counted; the goal is p95 < 5 s
#: and the alert fires at 300 s.
FRESHNESS_BUCKETS: Final = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """What a metric is called, means and is broken down by."""

    name: str
    help: str
    kind: Kind
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = LATENCY_BUCKETS

    @property
    def series_names(self) -> tuple[str, ...]:
        """The names its samples carry on a Prometheus page (what PromQL names)."""
        if self.kind == "counter":
            return (f"{self.name}_total",)
        if self.kind == "histogram":
            return tuple(f"{self.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
        return (self.name,)

    @property
    def statsd_name(self) -> str:
        """Its DogStatsD (Datadog) name: the first two underscores become dots."""
        return statsd_name(self.name)

    def counter(self, registry: CollectorRegistry) -> Counter:
        self._expect("counter")
        return Counter(self.name, self.help, self.labels, registry=registry)

    def gauge(self, registry: CollectorRegistry) -> Gauge:
        self._expect("gauge")
        return Gauge(self.name, self.help, self.labels, registry=registry)

    def histogram(self, registry: CollectorRegistry) -> Histogram:
        self._expect("histogram")
        return Histogram(self.name, self.help, self.labels, buckets=self.buckets, registry=registry)

    def _expect(self, kind: Kind) -> None:
        if self.kind != kind:
            raise TypeError(f"{self.name} is a {self.kind}, not a {kind}")


def statsd_name(prometheus_name: str) -> str:
    """`footfall_<process>_<rest>` -> `footfall.<process>.<rest>`."""
    return prometheus_name.replace("_", ".", 2)


# --- the gateway (web/gateway/metrics.py creates these) ---------------------------------------
GATEWAY_REQUESTS: Final = MetricSpec(
    "footfall_gateway_requests",
    "HTTP requests answered, by route and status.",
    "counter",
    ("route", "status"),
)
GATEWAY_EVENTS_ACCEPTED: Final = MetricSpec(
    "footfall_gateway_events_accepted",
    "Events answered 202 (including those dropped by sampling).",
    "counter",
)
GATEWAY_EVENTS_SAMPLED_OUT: Final = MetricSpec(
    "footfall_gateway_events_sampled_out",
    "Accepted events not published because sampling dropped their visitor.",
    "counter",
)
GATEWAY_EVENTS_REJECTED: Final = MetricSpec(
    "footfall_gateway_events_rejected", "Events not accepted, by reason.", "counter", ("reason",)
)
GATEWAY_PRODUCE_SECONDS: Final = MetricSpec(
    "footfall_gateway_produce_seconds",
    "Time from handing a request's events to the producer to the last broker ack.",
    "histogram",
    buckets=GATEWAY_LATENCY_BUCKETS,
)
GATEWAY_SAMPLE_RATE: Final = MetricSpec(
    "footfall_gateway_sample_rate", "Sample rate N in force (1: every visitor kept).", "gauge"
)
GATEWAY_EVENTS_AWAITING_ACK: Final = MetricSpec(
    "footfall_gateway_events_awaiting_ack",
    "Events handed to the producer and not yet acknowledged by Kafka.",
    "gauge",
)
GATEWAY_READY: Final = MetricSpec(
    "footfall_gateway_ready", "1 when Kafka is reachable and the site registry is loaded.", "gauge"
)

# --- the stream worker (footfall worker) -----------------------------------------------------
WORKER_CONSUMER_LAG: Final = MetricSpec(
    "footfall_worker_consumer_lag",
    "Messages of a partition this worker owns that are not committed yet: the log end "
    "offset minus the committed offset (what a restart would replay).",
    "gauge",
    ("topic", "partition"),
)
WORKER_EVENTS_PROCESSED: Final = MetricSpec(
    "footfall_worker_events_processed",
    "Events an agent has finished with (counted into the tables, or archived), by agent.",
    "counter",
    ("agent",),
)
WORKER_EVENTS_MALFORMED: Final = MetricSpec(
    "footfall_worker_events_malformed",
    "Events an agent skipped because they are not a valid envelope, by agent.",
    "counter",
    ("agent",),
)
WORKER_SINK_WRITE_ERRORS: Final = MetricSpec(
    "footfall_worker_sink_write_errors",
    "Failed writes to a sink (influx, archive), by sink; the write is retried.",
    "counter",
    ("sink",),
)
WORKER_SINK_WRITE_SECONDS: Final = MetricSpec(
    "footfall_worker_sink_write_seconds",
    "Duration of one successful write to a sink (an InfluxDB request, an archive file).",
    "histogram",
    ("sink",),
)
WORKER_SINK_PENDING: Final = MetricSpec(
    "footfall_worker_sink_pending",
    "Points (influx) or events (archive) waiting to be written, by sink.",
    "gauge",
    ("sink",),
)
WORKER_TABLE_RECOVERING: Final = MetricSpec(
    "footfall_worker_table_recovering",
    "1 while this worker rebuilds its tables from the changelog topics (it counts "
    "nothing meanwhile), else 0.",
    "gauge",
)
WORKER_TABLE_RECOVERY_REMAINING: Final = MetricSpec(
    "footfall_worker_table_recovery_remaining",
    "Changelog messages still to be read before table recovery completes.",
    "gauge",
)
WORKER_STREAM_TIME: Final = MetricSpec(
    "footfall_worker_stream_time_seconds",
    "Gateway receipt time (received_at) of the newest event counted on a partition, epoch seconds.",
    "gauge",
    ("partition",),
)
WORKER_FRESHNESS_DELAY: Final = MetricSpec(
    "footfall_worker_freshness_delay_seconds",
    "While a partition has unread messages: seconds since the gateway received the newest "
    "event counted on it (how stale its numbers are); 0 when it is caught up.",
    "gauge",
    ("partition",),
)
WORKER_FRESHNESS_SECONDS: Final = MetricSpec(
    "footfall_worker_freshness_seconds",
    "Per event: gateway receipt to durably counted (bucket writes acknowledged by Kafka).",
    "histogram",
    buckets=FRESHNESS_BUCKETS,
)
WORKER_READY: Final = MetricSpec(
    "footfall_worker_ready", "1 when table recovery is complete and the worker counts.", "gauge"
)

# --- the batch job (footfall reprocess) ------------------------------------------------------
BATCH_DURATION: Final = MetricSpec(
    "footfall_batch_duration_seconds",
    "Wall-clock duration of the last `footfall reprocess` run, successful or not.",
    "gauge",
)
BATCH_LAST_SUCCESS: Final = MetricSpec(
    "footfall_batch_last_success_timestamp_seconds",
    "When the last successful `footfall reprocess` run finished, epoch seconds.",
    "gauge",
)
BATCH_LAST_RUN: Final = MetricSpec(
    "footfall_batch_last_run_timestamp_seconds",
    "When the last `footfall reprocess` run finished, successful or not, epoch seconds.",
    "gauge",
)
BATCH_LAST_RUN_FAILED: Final = MetricSpec(
    "footfall_batch_last_run_failed", "1 when the last `footfall reprocess` run failed.", "gauge"
)
BATCH_DAYS: Final = MetricSpec(
    "footfall_batch_days",
    "UTC days the last run recomputed, by resulting state.",
    "gauge",
    ("state",),
)
BATCH_EVENTS_READ: Final = MetricSpec(
    "footfall_batch_events_read", "Archived events the last run read.", "gauge"
)

GATEWAY_METRICS: Final = (
    GATEWAY_REQUESTS,
    GATEWAY_EVENTS_ACCEPTED,
    GATEWAY_EVENTS_SAMPLED_OUT,
    GATEWAY_EVENTS_REJECTED,
    GATEWAY_PRODUCE_SECONDS,
    GATEWAY_SAMPLE_RATE,
    GATEWAY_EVENTS_AWAITING_ACK,
    GATEWAY_READY,
)
WORKER_METRICS: Final = (
    WORKER_CONSUMER_LAG,
    WORKER_EVENTS_PROCESSED,
    WORKER_EVENTS_MALFORMED,
    WORKER_SINK_WRITE_ERRORS,
    WORKER_SINK_WRITE_SECONDS,
    WORKER_SINK_PENDING,
    WORKER_TABLE_RECOVERING,
    WORKER_TABLE_RECOVERY_REMAINING,
    WORKER_STREAM_TIME,
    WORKER_FRESHNESS_DELAY,
    WORKER_FRESHNESS_SECONDS,
    WORKER_READY,
)
BATCH_METRICS: Final = (
    BATCH_DURATION,
    BATCH_LAST_SUCCESS,
    BATCH_LAST_RUN,
    BATCH_LAST_RUN_FAILED,
    BATCH_DAYS,
    BATCH_EVENTS_READ,
)
ALL_METRICS: Final = GATEWAY_METRICS + WORKER_METRICS + BATCH_METRICS


def observe_many(histogram: Histogram, amounts: Iterable[float]) -> None:
    """`histogram.observe(a)` for each of `amounts`, with one increment per bucket touched.

    The counting agent observes the freshness of every event it writes, 100,000s per
    second when catching up; `observe` takes a lock and walks the bounds per value. This
    relies on prometheus_client's fields (`_upper_bounds`, `_buckets`, `_sum`, stable
    since 0.4); without them it observes one by one.
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total_value = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total_value is None:
        for amount in amounts:
            histogram.observe(amount)
        return
    counts = [0] * len(bounds)
    total = 0.0
    for amount in amounts:
        counts[bisect_left(bounds, amount)] += 1  # the first bound >= amount; the last is +Inf
        total += amount
    total_value.inc(total)
    for bucket, count in zip(buckets, counts, strict=True):
        if count:
            bucket.inc(count)


def by_series_name() -> dict[str, MetricSpec]:
    """Every name a PromQL expression may use for a Footfall metric -> its spec."""
    return {series: spec for spec in ALL_METRICS for series in spec.series_names}


def by_statsd_name() -> dict[str, MetricSpec]:
    """Every DogStatsD name (footfall.dogstatsd emits) -> its spec."""
    names: dict[str, MetricSpec] = {}
    for spec in ALL_METRICS:
        names[spec.statsd_name] = spec
        if spec.kind == "histogram":  # the bridge sends a histogram as .count and .sum
            names[f"{spec.statsd_name}.count"] = spec
            names[f"{spec.statsd_name}.sum"] = spec
    return names


def process_registry() -> CollectorRegistry:
    """A registry with the process, platform and GC collectors, for a process's own page."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class WorkerMetrics:
    """The stream worker's metrics (WORKER_METRICS) on a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else process_registry()
        r = self.registry
        self.consumer_lag = WORKER_CONSUMER_LAG.gauge(r)
        self.events_processed = WORKER_EVENTS_PROCESSED.counter(r)
        self.events_malformed = WORKER_EVENTS_MALFORMED.counter(r)
        self.sink_write_errors = WORKER_SINK_WRITE_ERRORS.counter(r)
        self.sink_write_seconds = WORKER_SINK_WRITE_SECONDS.histogram(r)
        self.sink_pending = WORKER_SINK_PENDING.gauge(r)
        self.table_recovering = WORKER_TABLE_RECOVERING.gauge(r)
        self.table_recovery_remaining = WORKER_TABLE_RECOVERY_REMAINING.gauge(r)
        self.stream_time = WORKER_STREAM_TIME.gauge(r)
        self.freshness_delay = WORKER_FRESHNESS_DELAY.gauge(r)
        self.freshness = WORKER_FRESHNESS_SECONDS.histogram(r)
        self.ready = WORKER_READY.gauge(r)

    def set_partitions(
        self,
        topic: str,
        *,
        end_offsets: Mapping[int, int],
        committed: Mapping[int, int],
        read: Mapping[int, int],
        stream_time_ms: Mapping[int, int],
        now: float | None = None,
    ) -> None:
        """Refresh the per-partition gauges of the partitions in `end_offsets` (the owned
        ones); series of partitions no longer owned are removed.

        `end_offsets` and `committed` follow Kafka's convention (the offset of the next
        message to be written, or read); `read` is the offset of the last message read (what
        Faust's monitor keeps). A partition never committed counts from what was read.
        """
        now = time.time() if now is None else now
        owned = {str(p) for p in end_offsets}
        self._drop_stale(self.consumer_lag, owned, position=1, topic=topic)
        self._drop_stale(self.freshness_delay, owned, position=0)
        self._drop_stale(self.stream_time, owned, position=0)
        for partition, end in end_offsets.items():
            label = str(partition)
            next_read = read[partition] + 1 if partition in read else end
            done = committed.get(partition, next_read)
            self.consumer_lag.labels(topic, label).set(max(0, end - done))
            newest = stream_time_ms.get(partition)
            if newest is not None:
                self.stream_time.labels(label).set(newest / 1000)
            unread = end > next_read
            delay = max(0.0, now - newest / 1000) if unread and newest is not None else 0.0
            self.freshness_delay.labels(label).set(delay)

    @staticmethod
    def _drop_stale(
        gauge: Gauge, keep: set[str], *, position: int, topic: str | None = None
    ) -> None:
        for labels in _label_values(gauge):
            if labels[position] not in keep and (topic is None or labels[0] == topic):
                gauge.remove(*labels)


def _label_values(metric: Gauge) -> list[tuple[str, ...]]:
    # prometheus_client has no public listing of a metric's children; collect() gives the
    # samples, whose labels are the children's label values in declaration order.
    values: list[tuple[str, ...]] = []
    for family in metric.collect():
        for sample in family.samples:
            values.append(tuple(sample.labels.values()))
    return values


@dataclass(frozen=True, slots=True)
class BatchRun:
    """What one `footfall reprocess` run did, for its metrics."""

    started: float  # epoch seconds
    finished: float
    ok: bool
    days_by_state: Mapping[str, int]
    events_read: int


def batch_registry(run: BatchRun) -> CollectorRegistry:
    """A registry holding the metrics of one batch run (no process collectors: the job is
    gone when they are read). A failed run carries no last-success gauge, so pushing it
    with `pushadd` keeps the last success the gateway already has."""
    registry = CollectorRegistry(auto_describe=True)
    BATCH_DURATION.gauge(registry).set(run.finished - run.started)
    BATCH_LAST_RUN.gauge(registry).set(run.finished)
    BATCH_LAST_RUN_FAILED.gauge(registry).set(0 if run.ok else 1)
    if run.ok:
        BATCH_LAST_SUCCESS.gauge(registry).set(run.finished)
    days = BATCH_DAYS.gauge(registry)
    for state, count in run.days_by_state.items():
        days.labels(state).set(count)
    BATCH_EVENTS_READ.gauge(registry).set(run.events_read)
    return registry


def push_batch_metrics(pushgateway_url: str, run: BatchRun, *, job: str = "footfall_batch") -> bool:
    """Push a batch run's metrics to a Prometheus Pushgateway (`pushadd`: metrics of other
    names in the group are kept). Never raises: a run's outcome must not depend on its
    metrics. True when pushed."""
    if not pushgateway_url:
        return False
    try:
        pushadd_to_gateway(pushgateway_url, job=job, registry=batch_registry(run), timeout=10)
    except OSError as exc:
        log.warning("batch metrics: push to %s failed: %s", pushgateway_url, exc)
        return False
    return True


def spec_names(specs: Iterable[MetricSpec]) -> list[str]:
    return [spec.name for spec in specs]
