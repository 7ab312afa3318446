"""The stream worker's probes and metrics page, on Faust's web server (`web_port`).

- `GET /healthz`: the worker's event loop answers (liveness). Faust starts its web server
  before table recovery, so this answers while tables recover.
- `GET /readyz`: 200 once table recovery is complete and the worker counts, and every
  check added with `require_for_readiness` passes (the report views' site registry); 503
  while it recovers (at start and after each rebalance) or a check fails. A StatefulSet
  rollout waits on it, so the next worker is restarted only once the previous one has
  caught up, and a Service sends report requests only to workers that can answer them.
- `GET /metrics`: the worker's Prometheus page (footfall.observability.WorkerMetrics),
  with the per-partition gauges (consumer lag, stream time, freshness delay) and the
  recovery state refreshed from Faust at each scrape.

`install(app, metrics, ...)` registers the three pages on the Faust app; agents/ calls it
once at import, with the functions that give this worker's counting state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from footfall.observability import WorkerMetrics

StreamTimes = Callable[[], Mapping[int, int]]

#: name -> check: more conditions of readiness, added by the modules that serve requests.
_READINESS_CHECKS: dict[str, Callable[[], bool]] = {}


def require_for_readiness(name: str, check: Callable[[], bool]) -> None:
    """Make /readyz answer 503 while `check()` is false (listed as `waiting_for`)."""
    _READINESS_CHECKS[name] = check


def waiting_for() -> list[str]:
    """The readiness checks that fail now."""
    return sorted(name for name, check in _READINESS_CHECKS.items() if not check())


def readiness(app: Any) -> dict[str, Any]:
    """What /readyz answers: ready, recovering, recovery_remaining, waiting_for."""
    recovering, remaining = recovery_state(app)
    waiting = waiting_for()
    return {
        "ready": not recovering and not waiting,
        "recovering": recovering,
        "recovery_remaining": remaining,
        "waiting_for": waiting,
    }


def recovery_state(app: Any) -> tuple[bool, int]:
    """(recovering, changelog messages remaining) of a Faust app's table recovery."""
    recovery = app.tables.recovery
    recovering = bool(recovery.in_recovery) or not recovery.completed.is_set()
    remaining = int(recovery.active_remaining_total()) if recovery.in_recovery else 0
    return recovering, remaining


def offsets_by_partition(app: Any, topic: str) -> tuple[dict[int, int], ...]:
    """(end, committed, read) offsets of `topic`'s partitions, from Faust's monitor."""
    from faust.sensors.metrics import performance_metrics

    consumer = performance_metrics(app)["consumer"]

    def of(kind: str) -> dict[int, int]:
        found = (consumer.get(kind) or {}).get(topic) or {}
        return {int(p): int(o) for p, o in found.items() if o is not None}

    return of("end_offsets"), of("committed_offsets"), of("read_offsets")


def refresh(
    app: Any, metrics: WorkerMetrics, topic: str, stream_time_ms: StreamTimes, owned: set[int]
) -> bool:
    """Update the scrape-time gauges; return readiness."""
    state = readiness(app)
    metrics.table_recovering.set(1 if state["recovering"] else 0)
    metrics.table_recovery_remaining.set(state["recovery_remaining"])
    end, committed, read = offsets_by_partition(app, topic)
    metrics.set_partitions(
        topic,
        end_offsets={p: o for p, o in end.items() if p in owned},
        committed=committed,
        read=read,
        stream_time_ms=stream_time_ms(),
        now=time.time(),
    )
    ready: bool = state["ready"]
    metrics.ready.set(1 if ready else 0)
    return ready


def install(
    app: Any,
    metrics: WorkerMetrics,
    *,
    topic: str,
    stream_time_ms: StreamTimes,
    owned_partitions: Callable[[], set[int]],
) -> None:
    """Register /healthz, /readyz and /metrics on the Faust app (module docstring)."""
    from faust.web import Request, Response, View

    @app.page("/healthz")
    class Healthz(View):
        """The event loop answers."""

        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class Readyz(View):
        """Tables recovered and every readiness check passing: the worker counts and answers."""

        async def get(self, request: Request) -> Response:
            state = readiness(app)
            metrics.ready.set(1 if state["ready"] else 0)
            return self.json(state, status=200 if state["ready"] else 503)

    @app.page("/metrics")
    class Metrics(View):
        """Prometheus page of the worker."""

        async def get(self, request: Request) -> Response:
            refresh(app, metrics, topic, stream_time_ms, owned_partitions())
            # As a header: aiohttp refuses a charset inside `content_type=`.
            return self.bytes(
                generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
            )
