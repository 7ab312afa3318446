"""The gateway's HTTP behaviour without a broker: a recording publisher and a held registry.

What Kafka itself does (acks, outages) is in tests/integration/test_gateway.py; here are
the answers, headers, cookies, CORS, logs and metrics of every case of the spec's table.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request
from pytest_aiohttp.plugin import AiohttpClient

from footfall.events import ENVELOPE_FIELD_NAMES, kafka_key
from footfall.settings import Settings, get_settings
from footfall.sites.registry import SiteRecord, SiteRegistry
from web.enrich import Enricher
from web.gateway.app import create_app
from web.gateway.collect import client_ip, event_from_query
from web.gateway.limits import keep
from web.gateway.logs import ACCESS_LOGGER
from web.gateway.producer import Publisher, Record, Unavailable

SITE = "shop"
ANON = "anon-shop"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
Client = TestClient[web.Request, web.Application]


class RecordingPublisher(Publisher):
    """Publishes into a list; `fail` makes every publish answer as if Kafka were away."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.records: list[Record] = []
        self.fail = False

    async def run(self) -> None:
        self._producer = object()
        self._ready.set()
        await asyncio.Event().wait()

    async def close(self) -> None:
        self._producer = None

    async def probe(self) -> bool:
        return not self.fail

    async def publish(
        self, records: Sequence[Record], headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        if self.fail:
            raise Unavailable("test: Kafka is away")
        self.records.extend(records)

    def envelopes(self) -> list[dict[str, Any]]:
        return [orjson.loads(value) for _, value in self.records]


class HeldRegistry(SiteRegistry):
    """A registry holding what it was given; it never reads Kafka (so never loads itself)."""

    async def run(self, retry_max_s: float = 10.0) -> None:
        await asyncio.Event().wait()


def record(site: str, cookieless: bool = False) -> SiteRecord:
    return SiteRecord(site, "UTC", ("shop.example.com",), cookieless, "0" * 64, "2026-01-01T00:00Z")


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return Enricher("unit-test-secret-0123456789")


Build = Callable[..., Awaitable[tuple[Client, RecordingPublisher]]]


@pytest.fixture
def build(aiohttp_client: AiohttpClient, enricher: Enricher) -> Build:
    async def make(*, loaded: bool = True, **overrides: Any) -> tuple[Client, RecordingPublisher]:
        settings = get_settings().model_copy(update=overrides)
        registry = HeldRegistry(settings)
        if loaded:
            registry.preload([record(SITE), record(ANON, cookieless=True)])
        publisher = RecordingPublisher(settings)
        app = create_app(settings, registry=registry, publisher=publisher, enricher=enricher)
        return await aiohttp_client(app), publisher

    return make


def pageview(event_id: str = "e1", **fields: Any) -> dict[str, Any]:
    return {
        "site": SITE,
        "name": "pageview",
        "url": "https://shop.example.com/",
        "id": event_id,
        **fields,
    }


async def post(
    client: Client, body: Any, content_type: str = "application/json", **headers: str
) -> Any:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post(
        "/v1/collect",
        data=raw,
        headers={"Content-Type": content_type, "User-Agent": CHROME, **headers},
    )


# --- 202 ---------------------------------------------------------------------------------------
async def test_accepted_events_are_published_keyed_by_site_and_visitor(build: Build) -> None:
    client, publisher = await build()
    response = await post(client, {"events": [pageview("a"), pageview("b")]}, "text/plain")
    assert response.status == 202
    assert await response.json() == {"accepted": 2}
    cookie = response.cookies["ff_vid"]
    envelopes = publisher.envelopes()
    assert [e["id"] for e in envelopes] == ["a", "b"]
    assert {e["visitor"] for e in envelopes} == {cookie.value}
    assert all(tuple(e) == ENVELOPE_FIELD_NAMES for e in envelopes)
    assert [key for key, _ in publisher.records] == [kafka_key(SITE, cookie.value)] * 2


async def test_cookie_is_reused_and_not_set_again(build: Build) -> None:
    client, publisher = await build()
    client.session.cookie_jar.update_cookies({"ff_vid": "known-visitor"})
    response = await post(client, pageview())
    assert response.status == 202
    assert "ff_vid" not in response.cookies
    assert publisher.envelopes()[0]["visitor"] == "known-visitor"


async def test_an_emitter_visitor_needs_no_cookie(build: Build) -> None:
    client, publisher = await build()
    response = await post(client, {**pageview(), "visitor": "device-42"})
    assert "ff_vid" not in response.cookies
    assert publisher.envelopes()[0]["visitor"] == "device-42"


@pytest.mark.parametrize(
    ("headers", "secure"),
    [({}, False), ({"X-Forwarded-Proto": "https"}, True), ({"X-Forwarded-Proto": "http"}, False)],
)
async def test_cookie_is_secure_behind_https(
    build: Build, headers: dict[str, str], secure: bool
) -> None:
    client, _ = await build()
    response = await post(client, pageview(), **headers)
    cookie = response.cookies["ff_vid"]
    assert bool(cookie["secure"]) is secure
    assert cookie["samesite"] == "Lax"
    assert cookie["max-age"] == str(2 * 365 * 86400)


async def test_cookieless_site_sets_no_cookie(build: Build) -> None:
    client, publisher = await build()
    response = await post(client, {**pageview(), "site": ANON})
    assert response.status == 202
    assert "ff_vid" not in response.cookies
    assert len(publisher.envelopes()[0]["visitor"]) == 32


async def test_pixel_accepts_one_event_from_the_query(build: Build) -> None:
    client, publisher = await build()
    response = await client.get(
        "/v1/collect.gif",
        params={
            "site": SITE,
            "name": "signup",
            "ts": "1700000000000",
            "props": '{"plan": "pro", "seats": 3}',
        },
    )
    assert response.status == 202
    assert response.headers["Content-Type"] == "image/gif"
    assert response.headers["Cache-Control"] == "no-store"
    assert (await response.read()).startswith(b"GIF89a")
    [envelope] = publisher.envelopes()
    assert envelope["ts"] == 1_700_000_000_000
    assert envelope["props"] == {"plan": "pro", "seats": 3.0}


async def test_pixel_refusal_is_the_json_answer(build: Build) -> None:
    client, publisher = await build()
    response = await client.get("/v1/collect.gif", params={"site": SITE, "name": "pageview"})
    assert response.status == 400
    assert (await response.json())["errors"][0]["field"] == "url"
    assert publisher.records == []


async def test_head_on_the_pixel_records_nothing(build: Build) -> None:
    client, publisher = await build()
    response = await client.head("/v1/collect.gif", params={"site": SITE, "name": "signup"})
    assert response.status == 405
    assert publisher.records == []


# --- refusals -----------------------------------------------------------------------------------
async def test_any_invalid_event_refuses_all_and_lists_each_error(build: Build) -> None:
    client, publisher = await build()
    body = {"events": [pageview("ok"), {"site": SITE, "name": "x y"}, pageview("ok2")]}
    response = await post(client, body)
    assert response.status == 400
    assert (await response.json()) == {
        "errors": [
            {
                "index": 1,
                "field": "name",
                "error": 'must be "pageview" or match ^[A-Za-z0-9_.:-]{1,64}$',
            }
        ]
    }
    assert publisher.records == []


async def test_unknown_site_is_named(build: Build) -> None:
    client, publisher = await build()
    response = await post(client, {"events": [pageview(), {**pageview(), "site": "ghost"}]})
    assert response.status == 400
    assert (await response.json())["errors"] == [
        {"index": 1, "field": "site", "error": "unknown site 'ghost'"}
    ]
    assert publisher.records == []


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{", "application/json", 400),
        (b"\xff\xfe", "text/plain", 400),
        (b'{"events": []}', "application/json", 400),
        (b"{}", "application/x-www-form-urlencoded", 415),
        (b"{}", "", 415),
        (b'{"a": "' + b"x" * (1024 * 1024) + b'"}', "application/json", 413),
    ],
)
async def test_body_errors(build: Build, body: bytes, content_type: str, status: int) -> None:
    client, publisher = await build()
    response = await client.post("/v1/collect", data=body, headers={"Content-Type": content_type})
    assert response.status == status
    assert "error" in await response.json()
    assert publisher.records == []


async def test_a_body_of_exactly_the_limit_is_read(build: Build) -> None:
    client, _ = await build()
    event = orjson.dumps({**pageview(), "title": ""})
    body = event[:-1] + b" " * (1024 * 1024 - len(event)) + b"}"
    assert len(body) == 1024 * 1024
    response = await client.post("/v1/collect", data=body, headers={"Content-Type": "text/plain"})
    assert response.status == 202


async def test_rate_limit_429_with_retry_after(build: Build) -> None:
    client, publisher = await build(rate_limit_events_per_s=1.0, rate_limit_burst=2)
    assert (await post(client, {"events": [pageview("1"), pageview("2")]})).status == 202
    response = await post(client, pageview("3"))
    assert response.status == 429
    assert response.headers["Retry-After"] == "1"
    assert len(publisher.records) == 2


async def test_kafka_away_is_503_with_retry_after_and_counts_nothing(build: Build) -> None:
    client, publisher = await build(gateway_retry_after_s=7)
    publisher.fail = True
    response = await post(client, pageview())
    assert response.status == 503
    assert response.headers["Retry-After"] == "7"
    assert "ff_vid" not in response.cookies
    metrics = await (await client.get("/metrics")).text()
    assert "footfall_gateway_events_accepted_total 0.0" in metrics
    assert 'footfall_gateway_events_rejected_total{reason="unavailable"} 1.0' in metrics
    readyz = await client.get("/readyz")
    assert readyz.status == 503
    assert await readyz.json() == {"ready": False, "kafka": False, "registry": True}


async def test_registry_not_loaded_is_503(build: Build) -> None:
    client, _ = await build(loaded=False)
    response = await post(client, pageview())
    assert response.status == 503
    assert "Retry-After" in response.headers
    assert (await client.get("/readyz")).status == 503
    assert (await client.get("/healthz")).status == 200


# --- sampling -----------------------------------------------------------------------------------
async def test_sampling_keeps_one_in_n_visitors_and_still_answers_202(build: Build) -> None:
    client, publisher = await build(sample_rate=2)
    events = [{**pageview(f"e{i}"), "visitor": f"v{i}"} for i in range(200)]
    response = await post(client, {"events": events})
    assert response.status == 202
    assert await response.json() == {"accepted": 200}
    kept = publisher.envelopes()
    assert {e["visitor"] for e in kept} == {f"v{i}" for i in range(200) if keep(SITE, f"v{i}", 2)}
    assert {e["sample_rate"] for e in kept} == {2}


# --- CORS ---------------------------------------------------------------------------------------
async def test_preflight_on_collect(build: Build) -> None:
    client, _ = await build()
    response = await client.options(
        "/v1/collect",
        headers={
            "Origin": "https://shop.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "content-type"


async def test_cors_headers_on_refusals_too_but_not_on_other_routes(build: Build) -> None:
    client, _ = await build()
    origin = {"Origin": "https://shop.example.com"}
    refused = await post(client, b"{", **origin)
    assert refused.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert refused.headers["Access-Control-Expose-Headers"] == "Retry-After"
    for path in ("/healthz", "/metrics"):
        response = await client.get(path, headers=origin)
        assert "Access-Control-Allow-Origin" not in response.headers
    response = await client.options("/metrics", headers=origin)
    assert response.status == 405


# --- what operators see ---------------------------------------------------------------------
async def test_one_json_log_line_per_request_without_ip_or_query(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = await build()
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    await post(client, pageview(), **{"X-Forwarded-For": "203.0.113.9"})
    await client.get("/v1/collect.gif", params={"site": SITE, "name": "secret-name"})
    await post(client, b"{")
    lines = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [(r.route, r.status, r.events, r.outcome) for r in lines] == [  # type: ignore[attr-defined]
        ("/v1/collect", 202, 1, "accepted"),
        ("/v1/collect.gif", 202, 1, "accepted"),
        ("/v1/collect", 400, 0, "bad_body"),
    ]
    text = repr([vars(r) for r in lines])
    for secret in ("127.0.0.1", "203.0.113.9", "secret-name"):
        assert secret not in text


async def test_metrics_count_requests_events_and_latency(build: Build) -> None:
    client, _ = await build()
    await post(client, {"events": [pageview("1"), pageview("2")]})
    await post(client, {"events": [{"site": SITE}]})
    page = await (await client.get("/metrics")).text()
    assert 'footfall_gateway_requests_total{route="/v1/collect",status="202"} 1.0' in page
    assert 'footfall_gateway_requests_total{route="/v1/collect",status="400"} 1.0' in page
    assert "footfall_gateway_events_accepted_total 2.0" in page
    assert 'footfall_gateway_events_rejected_total{reason="invalid"} 1.0' in page
    assert "footfall_gateway_produce_seconds_count 1.0" in page
    assert "footfall_gateway_sample_rate 1.0" in page


# --- helpers --------------------------------------------------------------------------------------
def test_event_from_query_types_ts_and_json_fields() -> None:
    request = make_mocked_request(
        "GET", "/v1/collect.gif?site=s&ts=12&ts=99&props=%7B%22a%22%3A1%7D&revenue=nope&lang=en"
    )
    assert event_from_query(request.query) == {
        "site": "s",
        "ts": 12,
        "props": {"a": 1},
        "revenue": "nope",
        "lang": "en",
    }


@pytest.mark.parametrize(
    ("headers", "trust", "expected"),
    [
        ({"X-Forwarded-For": "1.2.3.4"}, False, ""),  # a mocked request has no peer
        ({"X-Forwarded-For": "6.6.6.6, 1.2.3.4"}, True, "1.2.3.4"),
        ({}, True, ""),
    ],
)
def test_client_ip(headers: dict[str, str], trust: bool, expected: str) -> None:
    request = make_mocked_request("POST", "/v1/collect", headers=headers)
    assert client_ip(request, trust) == expected


async def test_backlog_raises_the_sample_rate_automatically(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("web.gateway.app._SAMPLER_PERIOD_S", 0.01)
    client, publisher = await build(sample_rate=1, sample_rate_max=4, sample_backlog_events=10)
    publisher.backlog = 1000  # Kafka acks lag far behind
    await asyncio.sleep(0.2)
    page = await (await client.get("/metrics")).text()
    assert "footfall_gateway_sample_rate 4.0" in page
    events = [{**pageview(f"e{i}"), "visitor": f"v{i}"} for i in range(100)]
    response = await post(client, {"events": events})
    assert response.status == 202, await response.text()
    assert {e["sample_rate"] for e in publisher.envelopes()} == {4}
    publisher.backlog = 0  # caught up: back to every visitor
    await asyncio.sleep(0.2)
    assert "footfall_gateway_sample_rate 1.0" in await (await client.get("/metrics")).text()
