"""The gateway application: its parts, routes, lifecycles and the per-request observer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web
from opentelemetry.trace import SpanKind, Status, StatusCode

from footfall import dogstatsd, tracing
from footfall.events import MAX_BODY_BYTES
from footfall.settings import Settings, get_settings
from footfall.sites.registry import SiteRegistry
from web.enrich import MIN_SECRET_BYTES, Enricher
from web.gateway import collect, cors, health, logs, tracker
from web.gateway.compat import routes as compat_routes
from web.gateway.keys import (
    ENRICHER,
    LIMITER,
    METRICS,
    PUBLISHER,
    REGISTRY,
    SAMPLER,
    SETTINGS,
)
from web.gateway.limits import Sampler, SiteRateLimiter
from web.gateway.metrics import GatewayMetrics
from web.gateway.producer import Publisher

log = logging.getLogger(__name__)
_tracer = tracing.tracer("web.gateway")

_SAMPLER_PERIOD_S = 1.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(
    settings: Settings | None = None,
    *,
    registry: SiteRegistry | None = None,
    publisher: Publisher | None = None,
    enricher: Enricher | None = None,
) -> web.Application:
    """A gateway app; Kafka connections are made when it starts, not here.

    `registry`, `publisher` and `enricher` replace the real ones (tests).
    """
    settings = settings or get_settings()
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[observe])
    app[SETTINGS] = settings
    app[METRICS] = metrics = GatewayMetrics()
    app[REGISTRY] = registry or SiteRegistry(settings)
    app[PUBLISHER] = publisher = publisher or Publisher(settings)
    app[ENRICHER] = enricher or build_enricher(settings)
    app[LIMITER] = SiteRateLimiter(settings.rate_limit_events_per_s, settings.rate_limit_burst)
    app[SAMPLER] = sampler = Sampler(
        settings.sample_rate, settings.sample_rate_max, settings.sample_backlog_events
    )
    metrics.sample_rate.set_function(lambda: sampler.rate)
    metrics.backlog.set_function(lambda: publisher.backlog)

    router = app.router
    router.add_post("/v1/collect", collect.collect)
    router.add_get("/v1/collect.gif", collect.collect_pixel, allow_head=False)
    router.add_route("OPTIONS", "/v1/collect", cors.preflight)
    router.add_route("OPTIONS", "/v1/collect.gif", cors.preflight)
    router.add_get("/healthz", health.healthz)
    router.add_get("/readyz", health.readyz)
    router.add_get("/metrics", health.metrics)
    tracker.add_tracker_routes(app, demo=settings.demo_pages)
    compat_routes.add_compat_routes(app)

    app.cleanup_ctx.append(_registry_ctx)
    app.cleanup_ctx.append(_publisher_ctx)
    app.cleanup_ctx.append(_sampler_ctx)
    app.cleanup_ctx.append(
        dogstatsd.cleanup_ctx(settings, "footfall-gateway", lambda: [metrics.registry])
    )
    return app


def build_enricher(settings: Settings) -> Enricher:
    secret = settings.visitor_secret.get_secret_value()
    if not secret:
        log.warning(
            "FOOTFALL_VISITOR_SECRET is not set: cookieless visitor hashes use a random key "
            "of this process, so other gateway replicas (and a restart) hash differently"
        )
        return Enricher(secrets.token_bytes(32))
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"FOOTFALL_VISITOR_SECRET must hold at least {MIN_SECRET_BYTES} bytes")
    return Enricher(secret)


# --- lifecycles ------------------------------------------------------------------------------
class _Background(Protocol):
    async def run(self) -> None: ...
    async def close(self) -> None: ...


def _in_background(
    key: web.AppKey[Any], name: str
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context running `app[key].run()` as a task, then cancelling and closing it."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        service: _Background = app[key]
        task = asyncio.create_task(service.run(), name=name)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await service.close()

    return ctx


# Serving starts at once: until Kafka answers and the registry is loaded, /readyz says so
# and collect answers 503, which is what a load balancer's probe is for.
_registry_ctx = _in_background(REGISTRY, "site-registry")
_publisher_ctx = _in_background(PUBLISHER, "producer")


async def _sampler_ctx(app: web.Application) -> AsyncIterator[None]:
    sampler, publisher = app[SAMPLER], app[PUBLISHER]
    if not sampler.automatic:
        yield
        return

    async def adjust() -> None:
        while True:
            await asyncio.sleep(_SAMPLER_PERIOD_S)
            before = sampler.rate
            if sampler.observe(publisher.backlog) != before:
                log.warning(
                    "sampling: rate %d -> %d (%d events awaiting Kafka acks)",
                    before,
                    sampler.rate,
                    publisher.backlog,
                )

    task = asyncio.create_task(adjust(), name="sampler")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# --- the per-request observer -------------------------------------------------------------------
@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request by route and status and log its one line; turn a crash into 500."""
    started = time.perf_counter()
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    status = 500
    error: BaseException | None = None
    # The request's span is current while the handler runs, so the events it publishes
    # carry it in their Kafka headers (collect.ingest). A no-op span when tracing is off.
    span = _tracer.start_span(
        f"{request.method} {route}",
        context=tracing.extract_http(request.headers),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": request.method, "http.route": route},
    )
    token = tracing.attach(span)
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away; nginx's name for it
        raise
    except Exception as exc:
        error = exc
        return web.json_response({"error": "internal error"}, status=500)
    finally:
        request.app[METRICS].requests.labels(route, str(status)).inc()
        logs.request_line(
            method=request.method,
            route=route,
            status=status,
            started=started,
            events=request.get(collect.EVENTS_KEY, 0),
            outcome=request.get(collect.OUTCOME_KEY, "error" if error else "-"),
            error=error,
        )
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        tracing.detach(token)
