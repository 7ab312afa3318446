"""The report endpoints and the dashboard on the workers' Faust web server (`@app.page`).

Every worker serves every site: the report service reads its own partitions of
`minutes_by_site` in place and gathers the others' from the workers holding them
(web.reports.gather). The site registry runs in the worker for the API keys.
"""

from __future__ import annotations

from typing import Any, cast

from aiohttp import web
from faust.web import Request, Response, View

from footfall import worker_probes
from footfall.app import app
from footfall.settings import get_settings
from footfall.sites.registry import SiteRegistry
from footfall.visitors import SketchConfig
from tables.definitions import minutes_by_site
from web.reports.gather import FaustCluster, TablesSource
from web.reports.handlers import ROUTES, Context, Handler
from web.reports.history import HBaseSource, InfluxSource
from web.reports.local import FaustTableStore
from web.reports.recent import Recent
from web.reports.service import Reports

_settings = get_settings()
_config = SketchConfig(_settings.hll_lg_k, _settings.hll_type)
registry = SiteRegistry(_settings)
tables_source = TablesSource(
    FaustTableStore(minutes_by_site),
    FaustCluster(app, minutes_by_site, _settings.topic_partitions),
    _config,
    timeout_s=_settings.report_peer_timeout_s,
    in_thread=not _settings.store_url.startswith("memory"),
    ttl_s=_settings.report_live_ttl_s,
)
reports = Reports(
    _settings,
    _config,
    tables_source,
    influx=InfluxSource(_settings),
    hbase=HBaseSource(_settings, _config),
)
# While an answer older than report_live_ttl_s is recomputed, callers get the previous one
# (at most this much older still) instead of waiting for it (web.reports.recent).
ANSWER_STALE_S = 10.0 if _settings.report_live_ttl_s > 0 else 0.0
CONTEXT = Context(registry, reports, Recent(_settings.report_live_ttl_s, stale_s=ANSWER_STALE_S))


async def follow_site_registry() -> None:
    """Hold the site registry (API keys, time zones) for the report views, forever."""
    await registry.run()


app.task(follow_site_registry)
# Report requests need the keys: until they are loaded the worker is not ready to answer.
worker_probes.require_for_readiness("site_registry", lambda: registry.loaded)


def _view(method: str, handler: Handler) -> type[View]:
    async def call(self: View, request: Request, **kwargs: Any) -> Response:
        # The aiohttp driver's Request and Response are aiohttp's own.
        return cast(Response, await handler(CONTEXT, cast(web.Request, request)))

    return type(f"Reports_{handler.__name__}", (View,), {method.lower(): call})


for _method, _path, _handler in ROUTES:
    app.page(_path, name=f"reports_{_handler.__name__}")(_view(_method, _handler))
