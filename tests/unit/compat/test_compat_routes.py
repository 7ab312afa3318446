"""`/api/event` and `/mp/collect` on the gateway app, without a broker (see test_gateway_app)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp.plugin import AiohttpClient

from footfall.settings import get_settings
from footfall.sites.registry import SiteRecord, hash_key
from tests.unit.test_gateway_app import CHROME, HeldRegistry, RecordingPublisher
from web.enrich import Enricher
from web.gateway.app import create_app
from web.gateway.compat import routes
from web.gateway.compat.common import DEDUPE_WINDOW_MS

Client = TestClient[web.Request, web.Application]
Build = Callable[..., Awaitable[tuple[Client, RecordingPublisher]]]
SECRET = "mp-secret-for-tests"
MID = "G-TEST12345"
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def records() -> list[SiteRecord]:
    return [
        SiteRecord(
            "shop",
            "UTC",
            ("shop.example.com",),
            False,
            "0" * 64,
            "2026-01-01T00:00Z",
            aliases=(MID, "com.example.app"),
            mp_secret_hash=hash_key(SECRET),
        ),
        SiteRecord("blog", "UTC", ("blog.example.com",), True, "0" * 64, "2026-01-01T00:00Z"),
    ]


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return Enricher("unit-test-secret-0123456789")


@pytest.fixture
def build(aiohttp_client: AiohttpClient, enricher: Enricher) -> Build:
    async def make(*, loaded: bool = True) -> tuple[Client, RecordingPublisher]:
        settings = get_settings().model_copy(update={"rate_limit_events_per_s": 0})
        registry = HeldRegistry(settings)
        if loaded:
            registry.preload(records())
        publisher = RecordingPublisher(settings)
        app = create_app(settings, registry=registry, publisher=publisher, enricher=enricher)
        return await aiohttp_client(app), publisher

    return make


async def plausible(client: Client, body: Any, ua: str = CHROME, **headers: str) -> Any:
    return await client.post(
        "/api/event",
        data=orjson.dumps(body),
        headers={"Content-Type": "text/plain", "User-Agent": ua, **headers},
    )


PV = {"n": "pageview", "u": "https://shop.example.com/a", "d": "shop.example.com", "r": None}


# --- Plausible -------------------------------------------------------------------------------
async def test_plausible_pageview_is_published_with_a_daily_hash_visitor(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both requests inside one dedupe window: with the real clock they straddle a window's
    # end now and then, and a retry across windows is a new event by design.
    window_middle = int(time.time() * 1000) // DEDUPE_WINDOW_MS * DEDUPE_WINDOW_MS + 5_000
    monkeypatch.setattr(routes, "_now_ms", lambda: window_middle)
    client, publisher = await build()
    response = await plausible(client, PV, Origin="https://shop.example.com")
    assert response.status == 202
    assert await response.text() == "ok"
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "Set-Cookie" not in response.headers
    [event] = publisher.envelopes()
    assert (event["site"], event["name"], event["path"], event["bot"]) == (
        "shop",
        "pageview",
        "/a",
        False,
    )
    assert event["id"].startswith("pl")
    again = await plausible(client, PV)  # a retry: same visitor hash, same id
    assert again.status == 202
    first, second = publisher.envelopes()
    assert (first["visitor"], first["id"]) == (second["visitor"], second["id"])


@pytest.mark.parametrize(
    "domain", ["shop.example.com", "www.shop.example.com", "shop", "com.example.app", "nope, shop"]
)
async def test_plausible_domain_names_a_site(build: Build, domain: str) -> None:
    client, publisher = await build()
    assert (await plausible(client, {**PV, "d": domain})).status == 202
    assert [e["site"] for e in publisher.envelopes()] == ["shop"]


async def test_plausible_rollup_domains_publish_one_event_per_site(build: Build) -> None:
    client, publisher = await build()
    response = await plausible(client, {**PV, "d": "shop.example.com,blog.example.com"})
    assert response.status == 202
    assert sorted(e["site"] for e in publisher.envelopes()) == ["blog", "shop"]


@pytest.mark.parametrize(
    "body",
    [
        {**PV, "d": "unknown.example"},
        {"n": "engagement", "u": PV["u"], "d": "shop.example.com", "sd": 50, "e": 3000},
    ],
)
async def test_plausible_drops_like_plausible(build: Build, body: Any) -> None:
    client, publisher = await build()
    response = await plausible(client, body)
    assert response.status == 202
    assert response.headers["X-Plausible-Dropped"] == "1"
    assert publisher.records == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"u": PV["u"], "d": "shop"}, "name"),
        ({**PV, "u": "app://localhost/login"}, "url"),
        ({**PV, "$": {"amount": -3, "currency": "USD"}}, "revenue"),
    ],
)
async def test_plausible_invalid_events_answer_400(build: Build, body: Any, field: str) -> None:
    client, publisher = await build()
    response = await plausible(client, body)
    assert response.status == 400
    assert list((await response.json())["errors"]) == [field]
    assert publisher.records == []


async def test_plausible_bots_are_published_flagged(build: Build) -> None:
    client, publisher = await build()
    assert (await plausible(client, PV, ua=BOT)).status == 202
    assert [e["bot"] for e in publisher.envelopes()] == [True]


async def test_plausible_revenue_and_props(build: Build) -> None:
    client, publisher = await build()
    body = {**PV, "n": "Purchase", "p": {"sku": "S1"}, "$": {"amount": "9.5", "currency": "eur"}}
    assert (await plausible(client, body)).status == 202
    [event] = publisher.envelopes()
    assert event["revenue"] == {"amount": 9.5, "currency": "EUR"}
    assert event["props"] == {"sku": "S1"}


async def test_plausible_kafka_away_is_503(build: Build) -> None:
    client, publisher = await build()
    publisher.fail = True
    response = await plausible(client, PV)
    assert response.status == 503
    assert "Retry-After" in response.headers


async def test_plausible_registry_loading_is_503(build: Build) -> None:
    client, _ = await build(loaded=False)
    assert (await plausible(client, PV)).status == 503


async def test_plausible_preflight(build: Build) -> None:
    client, _ = await build()
    response = await client.options(
        "/api/event",
        headers={"Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"


# --- GA4 ---------------------------------------------------------------------------------------
async def mp(
    client: Client, body: Any, *, debug: bool = False, mid: str = MID, secret: str = SECRET
) -> Any:
    path = "/debug/mp/collect" if debug else "/mp/collect"
    return await client.post(
        path,
        params={"measurement_id": mid, "api_secret": secret},
        data=orjson.dumps(body),
        headers={"User-Agent": CHROME},
    )


PURCHASE = {
    "client_id": "123456.7654321",
    "events": [
        {
            "name": "page_view",
            "params": {"page_location": "https://shop.example.com/cart", "page_title": "Cart"},
        },
        {
            "name": "purchase",
            "params": {"transaction_id": "T_1", "value": 30.03, "currency": "USD", "items": []},
        },
    ],
}


async def test_ga4_events_are_published_and_answered_204(build: Build) -> None:
    client, publisher = await build()
    response = await mp(client, PURCHASE)
    assert response.status == 204
    pageview, purchase = publisher.envelopes()
    assert (pageview["name"], pageview["path"], pageview["visitor"]) == (
        "pageview",
        "/cart",
        "123456.7654321",
    )
    assert purchase["revenue"] == {"amount": 30.03, "currency": "USD"}
    assert "Set-Cookie" not in response.headers


async def test_ga4_drops_invalid_events_silently_and_keeps_the_rest(build: Build) -> None:
    client, publisher = await build()
    body = {**PURCHASE, "events": [{"name": "page_view"}, {"name": "login"}]}
    assert (await mp(client, body)).status == 204
    assert [e["name"] for e in publisher.envelopes()] == ["login"]


@pytest.mark.parametrize(("mid", "secret"), [("G-NOPE", SECRET), (MID, "wrong"), (MID, "")])
async def test_ga4_unknown_measurement_id_or_wrong_secret_is_403(
    build: Build, mid: str, secret: str
) -> None:
    client, publisher = await build()
    assert (await mp(client, PURCHASE, mid=mid, secret=secret)).status == 403
    assert publisher.records == []


async def test_ga4_debug_lists_validation_messages_and_stores_nothing(build: Build) -> None:
    client, publisher = await build()
    body = {"client_id": "1.2", "events": [{"name": "_badEventName"}, {"name": "page_view"}]}
    response = await mp(client, body, debug=True)
    assert response.status == 200
    messages = (await response.json())["validationMessages"]
    assert [(m["fieldPath"], m["validationCode"]) for m in messages] == [
        ("events[0].name", "NAME_INVALID"),
        ("events[1].params.page_location", "VALUE_INVALID"),
    ]
    valid = await mp(client, PURCHASE, debug=True)
    assert await valid.json() == {"validationMessages": []}
    assert publisher.records == []


async def test_ga4_kafka_away_is_503(build: Build) -> None:
    client, publisher = await build()
    publisher.fail = True
    response = await mp(client, PURCHASE)
    assert response.status == 503
    assert "Retry-After" in response.headers


async def test_ga4_body_not_json_is_400(build: Build) -> None:
    client, _ = await build()
    response = await client.post(
        "/mp/collect", params={"measurement_id": MID, "api_secret": SECRET}, data=b"{"
    )
    assert response.status == 400
