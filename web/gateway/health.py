"""Probes and the metrics page: `/healthz`, `/readyz`, `/metrics`."""

from __future__ import annotations

from aiohttp import web

from web.gateway.keys import METRICS, PUBLISHER, REGISTRY


async def healthz(request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready to accept events: Kafka answers and the site registry is loaded."""
    app = request.app
    kafka = await app[PUBLISHER].probe()
    registry = app[REGISTRY].loaded
    ready = kafka and registry
    app[METRICS].ready.set(1 if ready else 0)
    return web.json_response(
        {"ready": ready, "kafka": kafka, "registry": registry}, status=200 if ready else 503
    )


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition of the gateway's metrics."""
    return request.app[METRICS].page()
