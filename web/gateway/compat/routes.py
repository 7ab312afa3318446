"""`POST /api/event` (Plausible) and `POST /mp/collect`, `/debug/mp/collect` (GA4).

Both publish through web.gateway.collect.ingest, the pipeline of `POST /v1/collect`
(registry, rate limit, enrichment with bot flags, sampling, 503 unless Kafka acked), and
answer in the dialect of the tracker they stand in for:

| case | Plausible | GA4 |
|------|-----------|-----|
| published | 202 `ok` | 204 |
| nothing to publish (engagement; unknown domain) | 202 `ok`, `X-Plausible-Dropped: 1` | |
| invalid event | 400 `{"errors": {field: [message]}}` | dropped, 204; `/debug/...` says why |
| unknown measurement_id, wrong api_secret | | 403 (GA answers 2xx and drops) |
| Kafka late, registry loading | 503 + Retry-After | 503 + Retry-After |
| rate limited | 429 + Retry-After | 429 + Retry-After |
"""

from __future__ import annotations

import time
from typing import Any, Final

import orjson
from aiohttp import hdrs, web

from footfall.events import MAX_BODY_BYTES, validate_events
from web.gateway import collect, cors
from web.gateway.compat import ga4, plausible
from web.gateway.keys import ENRICHER, METRICS, REGISTRY, SETTINGS

DROPPED_HEADER: Final = "X-Plausible-Dropped"


def add_compat_routes(app: web.Application) -> None:
    app.router.add_post("/api/event", plausible_event)
    app.router.add_route("OPTIONS", "/api/event", cors.preflight)
    app.router.add_post("/mp/collect", ga4_collect)
    app.router.add_post("/debug/mp/collect", ga4_debug)


# --- shared ------------------------------------------------------------------------------
async def _read_json(request: web.Request, limit: int) -> tuple[Any, str | None]:
    """The decoded body whatever its Content-Type (both trackers send text/plain too)."""
    if request.content_length is not None and request.content_length > limit:
        return None, "too_large"
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return None, "too_large"
    if len(body) > limit:
        return None, "too_large"
    try:
        return orjson.loads(body.removeprefix(b"\xef\xbb\xbf")), None
    except orjson.JSONDecodeError:
        return None, "bad_body"


def _finish(
    request: web.Request, response: web.Response, events: int, outcome: str
) -> web.Response:
    cors.add_headers(request, response)
    request[collect.EVENTS_KEY] = events
    request[collect.OUTCOME_KEY] = outcome
    return response


def _unavailable(request: web.Request, events: int) -> web.Response:
    settings = request.app[SETTINGS]
    request.app[METRICS].reject("unavailable", events)
    response = web.json_response(
        {"error": "the site registry is not loaded yet"},
        status=503,
        headers={hdrs.RETRY_AFTER: str(settings.gateway_retry_after_s)},
    )
    return _finish(request, response, events, "unavailable")


def _from_outcome(request: web.Request, outcome: collect.Outcome) -> web.Response:
    """A refusal of the shared pipeline (429, 503), as it answers /v1/collect."""
    response = web.json_response(outcome.body, status=outcome.status)
    if outcome.retry_after is not None:
        response.headers[hdrs.RETRY_AFTER] = str(outcome.retry_after)
    return _finish(request, response, outcome.events, outcome.reason)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- Plausible -------------------------------------------------------------------------------
async def plausible_event(request: web.Request) -> web.Response:
    """`POST /api/event`: one Plausible event (`n`, `u`, `d`, `r`, `p`, `$`/`revenue`)."""
    app = request.app
    metrics = app[METRICS]
    doc, problem = await _read_json(request, MAX_BODY_BYTES)
    if problem is not None:
        metrics.reject("too_large" if problem == "too_large" else "bad_body", 1)
        status = 413 if problem == "too_large" else 400
        body = {"errors": {"request": ["body too large" if status == 413 else "invalid JSON"]}}
        return _finish(request, web.json_response(body, status=status), 0, problem)
    try:
        event = plausible.parse(doc)
    except plausible.PlausibleError as exc:
        metrics.reject("invalid", 1)
        return _finish(request, web.json_response(exc.as_body(), status=400), 1, "invalid")
    if event.dropped is not None:
        return _plausible_dropped(request, event.dropped)

    registry = app[REGISTRY]
    if not registry.loaded:
        return _unavailable(request, 1)
    sites = []
    for domain in event.domains:
        config = registry.resolve(domain)
        if config is not None and config not in sites:
            sites.append(config)
    if not sites:
        metrics.reject("unknown_site", 1)
        return _plausible_dropped(request, "unknown_site")

    settings = app[SETTINGS]
    received_at = _now_ms()
    ip = collect.client_ip(request, settings.gateway_trust_forwarded_for)
    user_agent = request.headers.get(hdrs.USER_AGENT, "")
    enricher = app[ENRICHER]
    raw = []
    for config in sites:
        # Plausible counts visitors by this daily hash; so do we, whatever the site's mode.
        visitor = enricher.cookieless_visitor(config.site, ip, user_agent, received_at)
        raw.append(plausible.to_wire(event, config.site, visitor, received_at))
    _, errors = validate_events(raw)
    if errors:
        metrics.reject("invalid", len(raw))
        first = errors[0]
        body = plausible.PlausibleError(first.field.split(".")[0], first.error).as_body()
        return _finish(request, web.json_response(body, status=400), len(raw), "invalid")
    outcome = await collect.ingest(request, raw, received_at=received_at)
    if outcome.status != 202:
        return _from_outcome(request, outcome)
    response = web.Response(status=202, text="ok")
    return _finish(request, response, outcome.events, "accepted")


def _plausible_dropped(request: web.Request, why: str) -> web.Response:
    response = web.Response(status=202, text="ok", headers={DROPPED_HEADER: "1"})
    return _finish(request, response, 0, f"dropped_{why}")


# --- GA4 Measurement Protocol ----------------------------------------------------------------
async def ga4_collect(request: web.Request) -> web.Response:
    """`POST /mp/collect?measurement_id=...&api_secret=...`: GA4 events, 204 when stored."""
    return await _ga4(request, debug=False)


async def ga4_debug(request: web.Request) -> web.Response:
    """`POST /debug/mp/collect`: the same checks, nothing stored; `validationMessages`."""
    return await _ga4(request, debug=True)


async def _ga4(request: web.Request, *, debug: bool) -> web.Response:
    app = request.app
    metrics = app[METRICS]
    registry = app[REGISTRY]
    if not registry.loaded:
        return _unavailable(request, 0)
    measurement_id = request.query.get("measurement_id", "")
    config = registry.resolve(measurement_id) if measurement_id else None
    secret = request.query.get("api_secret", "")
    if config is None or not registry.check_mp_secret(config.site, secret):
        metrics.reject("unknown_site", 1)
        message = ga4.Message(
            "measurement_id" if config is None else "api_secret",
            "unknown measurement_id"
            if config is None
            else "wrong api_secret for this measurement_id",
            "VALUE_INVALID",
        )
        if debug:
            return _ga4_messages(request, [message], 0)
        body = {"error": message.description}
        return _finish(request, web.json_response(body, status=403), 0, "unknown_site")

    doc, problem = await _read_json(request, ga4.MAX_BODY_BYTES)
    if problem is not None:
        metrics.reject("too_large" if problem == "too_large" else "bad_body", 1)
        status = 413 if problem == "too_large" else 400
        if debug:
            text = "body over 130 kB" if status == 413 else "body is not JSON"
            return _ga4_messages(request, [ga4.Message("", text, "VALUE_INVALID")], 0)
        return _finish(request, web.Response(status=status), 0, problem)

    received_at = _now_ms()
    mapped = ga4.map_request(doc, config.site, received_at)
    events, messages = _checked(mapped)
    sent = (
        len(doc["events"]) if isinstance(doc, dict) and isinstance(doc.get("events"), list) else 1
    )
    if len(events) < sent:
        metrics.reject("invalid", sent - len(events))
    if debug:
        return _ga4_messages(request, messages, len(events))
    if not events:
        return _finish(request, web.Response(status=204), sent, "invalid")
    outcome = await collect.ingest(request, events, received_at=received_at)
    if outcome.status != 202:
        return _from_outcome(request, outcome)
    return _finish(request, web.Response(status=204), outcome.events, "accepted")


#: Our wire fields under the names a GA4 sender knows them by.
_GA4_NAMES: Final = {
    "url": "params.page_location",
    "referrer": "params.page_referrer",
    "title": "params.page_title",
    "revenue": "params.value",
    "ts": "timestamp_micros",
    "visitor": "client_id",
}


def _checked(mapped: ga4.Mapped) -> tuple[list[Any], list[ga4.Message]]:
    """The mapped events that pass the wire-format check, and messages for the others."""
    messages = list(mapped.messages)
    kept: list[Any] = []
    for raw, source in zip(mapped.events, mapped.sources, strict=True):
        _, errors = validate_events([raw])
        if errors:
            for error in errors:
                top, dot, rest = error.field.partition(".")
                name = _GA4_NAMES.get(top, f"params.{top}") + dot + rest
                messages.append(
                    ga4.Message(f"events[{source}].{name}", error.error, "VALUE_INVALID")
                )
        else:
            kept.append(raw)
    return kept, messages


def _ga4_messages(request: web.Request, messages: list[ga4.Message], events: int) -> web.Response:
    body = {"validationMessages": [m.as_dict() for m in messages]}
    return _finish(request, web.json_response(body, status=200), events, "debug")
