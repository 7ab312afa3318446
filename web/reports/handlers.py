"""The report endpoints as plain aiohttp handlers: auth, parameters, errors, JSON.

The same handlers serve the Faust workers (web.reports.views registers them with
`@app.page`) and the tests (`create_app`, a bare aiohttp application). Keys travel only
in the `Authorization` header and are never logged: the one log line per request holds
the route, the status and the time taken.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson
from aiohttp import web

from footfall.sites.model import SiteConfig
from web.reports import dashboard, openapi
from web.reports.gather import PARTIALS_PATH, Unavailable, parse_partials_request
from web.reports.history import SourceError
from web.reports.params import ParamError, breakdown_query, realtime_query, series_query
from web.reports.recent import Recent
from web.reports.service import Reports

log = logging.getLogger("footfall.reports")
JSON: Final = "application/json"
_NO_STORE: Final = {"Cache-Control": "private, no-store"}
RETRY_AFTER_S: Final = 2


class Registry(Protocol):
    """What the views need of footfall.sites.registry.SiteRegistry."""

    @property
    def loaded(self) -> bool: ...

    def get(self, site: str) -> SiteConfig | None: ...

    def check_key(self, site: str, key: str) -> bool: ...


@dataclass(slots=True)
class Context:
    registry: Registry
    reports: Reports
    #: Whole answers by (route, site, query), for report_live_ttl_s (web.reports.recent).
    answers: Recent = field(default_factory=lambda: Recent(0.0))

    async def answer(
        self,
        route: str,
        site: str,
        query: Mapping[str, str],
        compute: Callable[[], Awaitable[Any]],
        *,
        stale: bool = True,
    ) -> web.Response:
        """The answer, reused (web.reports.recent); `stale=False`: at most ttl_s old."""

        async def body() -> bytes:
            return orjson.dumps(await compute())

        key = (route, site, tuple(sorted(query.items())))
        return web.Response(
            body=await self.answers.get(key, body, stale=stale),
            content_type=JSON,
            headers=_NO_STORE,
        )


class Refused(Exception):
    """A request answered with an error status and a JSON body."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"code": code, "message": message, **extra}}
        self.headers: dict[str, str] = {}


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data),
        status=status,
        content_type=JSON,
        headers={**_NO_STORE, **(headers or {})},
    )


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        refused = Refused(
            401,
            "unauthorized",
            "send the site's API key as `Authorization: Bearer <key>`",
        )
        refused.headers["WWW-Authenticate"] = 'Bearer realm="footfall"'
        raise refused
    return key


def authorize(ctx: Context, request: web.Request, site: str) -> tuple[SiteConfig, str]:
    """The site's config and the header to forward, or Refused (401, 403, 503)."""
    key = _bearer(request)
    if not ctx.registry.loaded:
        raise Refused(503, "starting", "the site registry is still loading")
    if not ctx.registry.check_key(site, key):
        raise Refused(403, "forbidden", f"this key does not grant access to site {site!r}")
    config = ctx.registry.get(site)
    if config is None:  # removed between the two reads
        raise Refused(403, "forbidden", f"this key does not grant access to site {site!r}")
    return config, request.headers["Authorization"]


def single_values(request: web.Request) -> dict[str, str]:
    query: dict[str, str] = {}
    for name, value in request.query.items():
        if name in query:
            raise ParamError(name, "given more than once", "each parameter at most once")
        query[name] = value
    return query


Handler = Callable[[Context, web.Request], Awaitable[web.Response]]


def guarded(route: str) -> Callable[[Handler], Handler]:
    """Turn Refused, ParamError and source failures into their responses; log one line."""

    def wrap(handler: Handler) -> Handler:
        async def run(ctx: Context, request: web.Request) -> web.Response:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(ctx, request)
                status = response.status
                return response
            except Refused as exc:
                status = exc.status
                return json_response(exc.body, exc.status, exc.headers)
            except ParamError as exc:
                status = 400
                return json_response(exc.body(), 400)
            except (Unavailable, SourceError) as exc:
                status = 503
                log.warning("%s: 503: %s", route, exc)
                body = {"error": {"code": "unavailable", "message": str(exc)}}
                return json_response(body, 503, {"Retry-After": str(RETRY_AFTER_S)})
            except Exception:
                log.exception("%s: failed", route)
                body = {"error": {"code": "internal", "message": "internal error"}}
                return json_response(body, 500)
            finally:
                level = logging.WARNING if status >= 500 else logging.DEBUG
                log.log(
                    level,
                    "%s %s %d %.1fms",
                    request.method,
                    route,
                    status,
                    (time.perf_counter() - started) * 1000,
                )

        return run

    return wrap


SERIES_ROUTE: Final = "/api/v1/sites/{site}/timeseries"
BREAKDOWN_ROUTE: Final = "/api/v1/sites/{site}/breakdown"
REALTIME_ROUTE: Final = "/api/v1/sites/{site}/realtime"
OPENAPI_ROUTE: Final = "/api/v1/openapi.json"
DASHBOARD_ROUTE: Final = "/dashboard/{site}"
ASSET_ROUTE: Final = "/dashboard/assets/{name}"


@guarded(SERIES_ROUTE)
async def timeseries(ctx: Context, request: web.Request) -> web.Response:
    site = request.match_info["site"]
    config, forward = authorize(ctx, request, site)
    reports = ctx.reports
    given = single_values(request)
    query = series_query(given, config.timezone, reports.clock())
    return await ctx.answer("series", site, given, lambda: reports.timeseries(site, query, forward))


@guarded(BREAKDOWN_ROUTE)
async def breakdown(ctx: Context, request: web.Request) -> web.Response:
    site = request.match_info["site"]
    config, forward = authorize(ctx, request, site)
    reports = ctx.reports
    given = single_values(request)
    query = breakdown_query(given, config.timezone, reports.clock())
    return await ctx.answer(
        "breakdown", site, given, lambda: reports.breakdown(site, query, forward)
    )


@guarded(REALTIME_ROUTE)
async def realtime(ctx: Context, request: web.Request) -> web.Response:
    site = request.match_info["site"]
    config, forward = authorize(ctx, request, site)
    given = single_values(request)
    query = realtime_query(given, config.timezone)
    # "The last 5 minutes" slides: never an answer older than report_live_ttl_s.
    return await ctx.answer(
        "realtime", site, given, lambda: ctx.reports.realtime(site, query, forward), stale=False
    )


@guarded(PARTIALS_PATH)
async def partials(ctx: Context, request: web.Request) -> web.Response:
    """Another worker asks for this worker's partials (web.reports.gather)."""
    try:
        read, bounds, wanted = parse_partials_request(await request.read())
    except (ValueError, KeyError, TypeError) as exc:
        raise Refused(400, "bad_request", f"not a partials request: {exc}") from None
    authorize(ctx, request, read.site)
    data = await ctx.reports.tables.local_partials(read, bounds, wanted)
    return web.Response(body=data, content_type="application/octet-stream", headers=_NO_STORE)


@guarded(OPENAPI_ROUTE)
async def openapi_document(ctx: Context, request: web.Request) -> web.Response:
    return web.Response(body=openapi.document_bytes(), content_type=JSON)


@guarded(DASHBOARD_ROUTE)
async def dashboard_page(ctx: Context, request: web.Request) -> web.Response:
    site = request.match_info["site"]
    return web.Response(
        body=dashboard.page(site),
        content_type="text/html",
        charset="utf-8",
        headers=dashboard.PAGE_HEADERS,
    )


@guarded(ASSET_ROUTE)
async def dashboard_asset(ctx: Context, request: web.Request) -> web.Response:
    found = dashboard.asset(request.match_info["name"])
    if found is None:
        raise Refused(404, "not_found", "no such asset")
    body, content_type = found
    return web.Response(
        body=body, content_type=content_type, headers={"Cache-Control": "public, max-age=300"}
    )


#: (method, path, handler): what the workers serve (web.reports.views) and tests mount.
ROUTES: Final[tuple[tuple[str, str, Handler], ...]] = (
    ("GET", SERIES_ROUTE, timeseries),
    ("GET", BREAKDOWN_ROUTE, breakdown),
    ("GET", REALTIME_ROUTE, realtime),
    ("POST", PARTIALS_PATH, partials),
    ("GET", OPENAPI_ROUTE, openapi_document),
    ("GET", DASHBOARD_ROUTE, dashboard_page),
    ("GET", ASSET_ROUTE, dashboard_asset),
)

CONTEXT: Final = web.AppKey("reports_context", Context)


def create_app(ctx: Context) -> web.Application:
    """The report endpoints on a bare aiohttp app (tests; the workers use Faust's)."""
    app = web.Application()
    app[CONTEXT] = ctx
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, _bind(ctx, handler))
    return app


def _bind(ctx: Context, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def run(request: web.Request) -> web.Response:
        return await handler(ctx, request)

    return run
