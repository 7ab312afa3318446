"""The collect endpoints: `POST /v1/collect` and the `GET /v1/collect.gif` pixel.

One pipeline serves both, in this order, each step refusing the whole request:
body (413/415/400) -> registry loaded (503) -> wire-format validation (400 with every
field error) -> every site registered (400 naming it) -> per-site rate limit (429) ->
enrichment -> sampling -> publish, all acked before the deadline (else 503) -> 202.
"""

from __future__ import annotations

import base64
import contextlib
import time
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import hdrs, web
from multidict import MultiMapping

from footfall import tracing
from footfall.events import (
    MAX_BODY_BYTES,
    BodyError,
    FieldError,
    encode_envelope,
    is_valid_visitor,
    kafka_key,
    parse_body,
    validate_events,
)
from footfall.sites.model import SiteConfig
from web.enrich import RequestContext
from web.gateway import cors
from web.gateway.keys import ENRICHER, LIMITER, METRICS, PUBLISHER, REGISTRY, SAMPLER, SETTINGS
from web.gateway.limits import keep, retry_after_s
from web.gateway.metrics import RejectReason
from web.gateway.producer import Unavailable

COOKIE_MAX_AGE_S: Final = 2 * 365 * 86400
#: A transparent 1x1 GIF.
PIXEL: Final = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
#: Request-dict keys the logging middleware reads.
EVENTS_KEY: Final = web.RequestKey("events", int)
OUTCOME_KEY: Final = web.RequestKey("outcome", str)

_BODY_REASONS: Final[dict[int, RejectReason]] = {
    413: "too_large",
    415: "unsupported_media_type",
}


@dataclass(slots=True)
class Outcome:
    """How a collect request ends, before it is rendered as JSON or as the pixel."""

    status: int
    body: dict[str, Any]
    reason: str  # "accepted" or a RejectReason
    events: int
    retry_after: int | None = None
    cookie: str | None = None


# --- handlers ------------------------------------------------------------------------------
async def collect(request: web.Request) -> web.Response:
    """`POST /v1/collect`: one event or `{"events": [...]}`, JSON or text/plain."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        outcome = _body_error(request, BodyError(413, f"body over {MAX_BODY_BYTES} bytes"))
    else:
        try:
            body = await request.read()
            raw = parse_body(body, request.headers.get(hdrs.CONTENT_TYPE, ""))
        except web.HTTPRequestEntityTooLarge:
            outcome = _body_error(request, BodyError(413, f"body over {MAX_BODY_BYTES} bytes"))
        except BodyError as exc:
            outcome = _body_error(request, exc)
        else:
            outcome = await ingest(request, raw)
    return _render_json(request, outcome)


async def collect_pixel(request: web.Request) -> web.Response:
    """`GET /v1/collect.gif?site=...&name=...`: one event from the query, for no-JS clients.

    Every event field is a query parameter; `ts` in digits is epoch ms; `props` and
    `revenue` are JSON text. Accepted: the GIF (status 202); refused: the JSON answer.
    """
    outcome = await ingest(request, [event_from_query(request.query)])
    if outcome.status != 202:
        return _render_json(request, outcome)
    response = web.Response(status=202, body=PIXEL, content_type="image/gif")
    response.headers[hdrs.CACHE_CONTROL] = "no-store"
    _finish(request, response, outcome)
    return response


def event_from_query(query: MultiMapping[str]) -> dict[str, Any]:
    """The raw event a pixel URL carries (first value of a repeated parameter wins)."""
    event: dict[str, Any] = {}
    for key in query:
        if key in event:
            continue
        value: Any = query[key]
        if key == "ts" and value.isascii() and value.isdigit() and len(value) <= 16:
            value = int(value)
        elif key in ("props", "revenue"):
            # Not JSON: left a string, and validation answers "must be an object".
            with contextlib.suppress(orjson.JSONDecodeError):
                value = orjson.loads(value)
        event[key] = value
    return event


# --- the pipeline ----------------------------------------------------------------------------
async def ingest(
    request: web.Request, raw: list[Any], *, received_at: int | None = None
) -> Outcome:
    """Validate, check, enrich, sample and publish the raw events of one request.

    `received_at` (epoch ms) is given by callers that derived fields from the arrival
    time already (the compatibility endpoints' visitor hashes and event ids).
    """
    app = request.app
    metrics = app[METRICS]
    settings = app[SETTINGS]
    n = len(raw)

    registry = app[REGISTRY]
    if not registry.loaded:
        metrics.reject("unavailable", n)
        return Outcome(
            503,
            {"error": "the site registry is not loaded yet"},
            "unavailable",
            n,
            retry_after=settings.gateway_retry_after_s,
        )

    events, errors = validate_events(raw)
    if errors:
        metrics.reject("invalid", n)
        return Outcome(400, {"errors": [e.as_dict() for e in errors]}, "invalid", n)

    sites: dict[str, SiteConfig] = {}
    counts: dict[str, int] = {}
    for index, event in enumerate(events):
        site_id = event["site"]
        if site_id not in sites:
            config = registry.get(site_id)
            if config is None:
                errors.append(FieldError(index, "site", f"unknown site {site_id!r}"))
                continue
            sites[site_id] = config
        counts[site_id] = counts.get(site_id, 0) + 1
    if errors:
        metrics.reject("unknown_site", n)
        return Outcome(400, {"errors": [e.as_dict() for e in errors]}, "unknown_site", n)

    wait = app[LIMITER].acquire(counts)
    if wait > 0:
        metrics.reject("rate_limited", n)
        over = ", ".join(sorted(counts))
        return Outcome(
            429,
            {"error": f"rate limit exceeded for {over}"},
            "rate_limited",
            n,
            retry_after=retry_after_s(wait),
        )

    ctx = RequestContext(
        ip=client_ip(request, settings.gateway_trust_forwarded_for),
        user_agent=request.headers.get(hdrs.USER_AGENT, ""),
        received_at=received_at if received_at is not None else time.time_ns() // 1_000_000,
        cookie_visitor=_cookie_visitor(request, settings.visitor_cookie_name),
        accept_language=request.headers.get(hdrs.ACCEPT_LANGUAGE),
    )
    enrich = app[ENRICHER].enrich
    rate = app[SAMPLER].rate
    records: list[tuple[bytes, bytes]] = []
    cookie: str | None = None
    for event in events:
        site_id = event["site"]
        envelope, new_cookie = enrich(event, ctx, sites[site_id], rate)
        if new_cookie is not None:
            cookie = new_cookie
        visitor = envelope["visitor"]
        if rate > 1 and not keep(site_id, visitor, rate):
            continue
        records.append((kafka_key(site_id, visitor), encode_envelope(envelope)))

    started = time.perf_counter()
    try:
        await app[PUBLISHER].publish(records, headers=tracing.inject_headers())
    except Unavailable:
        metrics.reject("unavailable", n)
        return Outcome(
            503,
            {"error": "events could not be stored in time; nothing was accepted, retry"},
            "unavailable",
            n,
            retry_after=settings.gateway_retry_after_s,
        )
    if records:
        metrics.produce_seconds.observe(time.perf_counter() - started)
    metrics.events_accepted.inc(n)
    if len(records) < n:
        metrics.events_sampled_out.inc(n - len(records))
    return Outcome(202, {"accepted": n}, "accepted", n, cookie=cookie)


def client_ip(request: web.Request, trust_forwarded_for: bool) -> str:
    """The client address used for country and the cookieless hash (never stored).

    Behind a proxy (HAProxy `option forwardfor`) the last X-Forwarded-For entry is the
    address the proxy saw; entries before it were sent by the client and prove nothing.
    """
    if trust_forwarded_for:
        values = request.headers.getall(hdrs.X_FORWARDED_FOR, ())
        if values:
            last = values[-1].rsplit(",", 1)[-1].strip()
            if last:
                return last
    return request.remote or ""


def _cookie_visitor(request: web.Request, name: str) -> str | None:
    if hdrs.COOKIE not in request.headers:
        return None
    value = request.cookies.get(name)
    return value if value is not None and is_valid_visitor(value) else None


def _is_https(request: web.Request) -> bool:
    if request.secure:
        return True
    proto = request.headers.get(hdrs.X_FORWARDED_PROTO, "")
    return proto.split(",", 1)[0].strip().lower() == "https"


# --- rendering -------------------------------------------------------------------------------
def _body_error(request: web.Request, exc: BodyError) -> Outcome:
    reason: RejectReason = _BODY_REASONS.get(exc.status, "bad_body")
    request.app[METRICS].reject(reason, 1)
    return Outcome(exc.status, {"error": exc.message}, reason, 0)


def _render_json(request: web.Request, outcome: Outcome) -> web.Response:
    response = web.Response(
        status=outcome.status, body=orjson.dumps(outcome.body), content_type="application/json"
    )
    _finish(request, response, outcome)
    return response


def _finish(request: web.Request, response: web.Response, outcome: Outcome) -> None:
    if outcome.retry_after is not None:
        response.headers[hdrs.RETRY_AFTER] = str(outcome.retry_after)
    if outcome.cookie is not None:
        settings = request.app[SETTINGS]
        response.set_cookie(
            settings.visitor_cookie_name,
            outcome.cookie,
            max_age=COOKIE_MAX_AGE_S,
            path="/",
            domain=settings.visitor_cookie_domain or None,
            secure=_is_https(request),
            httponly=True,
            samesite="Lax",
        )
    cors.add_headers(request, response)
    request[EVENTS_KEY] = outcome.events
    request[OUTCOME_KEY] = outcome.reason
