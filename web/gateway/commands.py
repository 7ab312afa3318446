"""`footfall gateway`: run the collector gateway on `gateway_host:gateway_port`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
from typing import Any

from footfall.settings import get_settings


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "gateway",
        help="run the collector gateway (POST /v1/collect)",
        description="Run the collector gateway: validate, enrich and publish events to Kafka.",
    )
    parser.add_argument("--host", help="bind address (default: FOOTFALL_GATEWAY_HOST)")
    parser.add_argument("--port", type=int, help="port (default: FOOTFALL_GATEWAY_PORT)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: `footfall --help` should not load the IP database.
    from aiohttp import web

    from footfall import logs, tracing
    from web.gateway.app import create_app

    settings = get_settings()
    logs.configure(settings, "footfall-gateway")
    tracing.setup(settings, "footfall-gateway")
    host = args.host or settings.gateway_host
    port = args.port or settings.gateway_port
    log = logging.getLogger("web.gateway")
    app = create_app(settings)
    # The IP database, User-Agent rules and public suffix list are ~30k long-lived objects
    # that a full collection would walk (~40 ms, a p99 spike) for nothing: freeze them.
    gc.collect()
    gc.freeze()
    log.info("gateway: listening on %s:%d", host, port)
    loop = new_event_loop()
    log.info("gateway: event loop %s", type(loop).__module__.split(".")[0])
    try:
        web.run_app(app, host=host, port=port, access_log=None, print=None, loop=loop)
    finally:
        tracing.shutdown()
    return 0


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's when it is installed (about 2x the requests/s for one-event requests on
    one core, measured by bench/gateway.py), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
