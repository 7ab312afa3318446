"""The stream worker's Prometheus metrics (named and described in footfall/observability.py),
shared by the agents; agents/upkeep.py serves them on /metrics with the probes."""

from __future__ import annotations

from footfall.observability import WorkerMetrics

METRICS = WorkerMetrics()
