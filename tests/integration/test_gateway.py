"""The gateway against the real broker: what got a 202 is on the topic, what did not is not.

Each test builds the app with settings of its own: a fresh events topic and a fresh
registry topic, so tests see neither each other's events nor each other's sites.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given
from hypothesis import event as event_label
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pytest_aiohttp.plugin import AiohttpClient

from footfall.events import ENVELOPE_FIELD_NAMES, kafka_key
from footfall.settings import Settings, get_settings
from footfall.sites.registry import add_site
from footfall.stack.kafka import Kafka
from footfall.topics import ensure_topic
from tests.integration.streamkit import topic_records
from web.enrich import Enricher
from web.gateway.app import create_app
from web.gateway.limits import keep

pytestmark = pytest.mark.integration

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
READY_TIMEOUT_S = 30.0
Client = TestClient[web.Request, web.Application]
GatewayFactory = Callable[..., Awaitable[tuple[Client, Settings, str]]]


# --- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def kafka() -> Kafka:
    service = Kafka(get_settings())
    service.start()  # idempotent: a no-op when the stack is up
    return service


@pytest.fixture(scope="session")
def enricher() -> Enricher:
    return Enricher("integration-test-secret-0123456789")


def unique_settings(**overrides: Any) -> Settings:
    tag = uuid.uuid4().hex[:12]
    values: dict[str, Any] = {
        "events_topic": f"footfall-test-events-{tag}",
        "sites_topic": f"footfall-test-sites-{tag}",
        "topic_partitions": 4,
        "gateway_publish_timeout_s": 3.0,
        **overrides,
    }
    return get_settings().model_copy(update=values)


@pytest.fixture
async def gateway(
    kafka: Kafka, enricher: Enricher, aiohttp_client: AiohttpClient
) -> AsyncIterator[GatewayFactory]:
    """Builds a ready gateway on fresh topics, with one registered site; deletes the topics."""
    topics: list[str] = []
    clients: list[Client] = []

    async def build(*, cookieless: bool = False, **overrides: Any) -> tuple[Client, Settings, str]:
        settings = unique_settings(**overrides)
        topics.extend([settings.events_topic, settings.sites_topic])
        site = f"shop-{uuid.uuid4().hex[:8]}"
        await add_site(settings, site, domains=["shop.example.com"], cookieless=cookieless)
        client = await aiohttp_client(create_app(settings, enricher=enricher))
        clients.append(client)
        await wait_ready(client)
        return client, settings, site

    yield build
    for client in clients:
        await client.close()  # stop following the topics before they go
    admin = AIOKafkaAdminClient(bootstrap_servers=get_settings().kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(topics)
    finally:
        await admin.close()


async def wait_ready(client: Client, timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    body: Any = None
    while time.monotonic() < deadline:
        response = await client.get("/readyz")
        body = await response.json()
        if response.status == 200:
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"gateway not ready after {timeout_s}s: {body}")


async def read_topic(settings: Settings) -> list[tuple[bytes | None, dict[str, Any]]]:
    """Every record of the events topic, from the beginning to the current end."""
    await ensure_topic(settings.kafka_bootstrap, settings.events_topic, partitions=1)
    return await topic_records(settings.events_topic, timeout_s=30)


def event(site: str, event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "site": site,
        "name": "pageview",
        "url": "https://shop.example.com/products/1?utm_source=newsletter",
        "id": event_id,
        **fields,
    }


def post(
    client: Client,
    body: Any,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Any:
    return client.post(
        "/v1/collect",
        data=orjson.dumps(body),
        headers={"Content-Type": content_type, "User-Agent": FIREFOX, **(headers or {})},
    )


# --- 202: every accepted event is published with the whole envelope ---------------------------
async def test_accepted_events_are_on_the_topic_with_the_full_envelope(
    gateway: GatewayFactory,
) -> None:
    client, settings, site = await gateway()
    single = event(site, "single-1", referrer="https://www.google.com/search?q=x", ts=1)
    response = await post(client, single, "text/plain", {"Origin": "https://shop.example.com"})
    assert response.status == 202
    assert await response.json() == {"accepted": 1}
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    cookie = response.cookies["ff_vid"]
    assert cookie["samesite"] == "Lax"
    assert cookie["httponly"]
    assert not cookie["secure"]
    assert int(cookie["max-age"]) == 2 * 365 * 86400
    visitor_cookie = cookie.value

    batch = [event(site, f"batch-{i}", name="signup") for i in range(20)]
    for item in batch:
        del item["url"]  # not required for custom events
    batch[0]["visitor"] = "emitter-visitor-1"
    response = await post(
        client,
        {"events": batch},
        headers={"Cookie": f"ff_vid={visitor_cookie}", "X-Forwarded-Proto": "https"},
    )
    assert response.status == 202, await response.text()
    assert await response.json() == {"accepted": 20}
    assert "ff_vid" not in response.cookies  # the browser already has one

    client.session.cookie_jar.clear()  # a new browser
    pixel = await client.get(
        "/v1/collect.gif",
        params={"site": site, "name": "pageview", "url": "https://shop.example.com/", "id": "px-1"},
        headers={"User-Agent": FIREFOX, "X-Forwarded-Proto": "https"},
    )
    assert pixel.status == 202
    assert pixel.headers["Content-Type"] == "image/gif"
    assert pixel.cookies["ff_vid"]["secure"]  # behind an https proxy

    records = await read_topic(settings)
    by_id = {value["id"]: (key, value) for key, value in records}
    assert len(records) == len(by_id) == 22
    assert set(by_id) == {"single-1", "px-1"} | {f"batch-{i}" for i in range(20)}
    for key, value in by_id.values():
        assert tuple(value) == ENVELOPE_FIELD_NAMES
        assert key == kafka_key(site, value["visitor"])
        assert value["sample_rate"] == 1
        assert value["browser"] == "Firefox"
        assert value["device"] == "desktop"
        assert value["bot"] is False
        assert isinstance(value["received_at"], int)
        assert b"127.0.0.1" not in orjson.dumps(value)  # the client IP is never published
    first = by_id["single-1"][1]
    assert first["visitor"] == visitor_cookie
    assert first["source"] == "newsletter"
    assert first["ts"] == 1
    assert first["event_time"] == first["received_at"]  # ts far outside the 72 h window
    assert by_id["batch-0"][1]["visitor"] == "emitter-visitor-1"
    assert {by_id[f"batch-{i}"][1]["visitor"] for i in range(1, 20)} == {visitor_cookie}
    assert by_id["px-1"][1]["visitor"] == pixel.cookies["ff_vid"].value


async def test_cookieless_site_gets_the_daily_hash_and_no_cookie(
    gateway: GatewayFactory,
) -> None:
    client, settings, site = await gateway(cookieless=True)
    for i in range(2):
        response = await post(
            client, event(site, f"anon-{i}"), headers={"Cookie": "ff_vid=ignored-cookie"}
        )
        assert response.status == 202
        assert "ff_vid" not in response.cookies
    values = [value for _, value in await read_topic(settings)]
    assert len(values) == 2
    assert values[0]["visitor"] == values[1]["visitor"] != "ignored-cookie"
    assert len(values[0]["visitor"]) == 32


# --- 400: all or nothing ------------------------------------------------------------------------
async def test_a_bad_event_refuses_the_whole_request(gateway: GatewayFactory) -> None:
    client, settings, site = await gateway()
    bad = {
        "events": [
            event(site, "a"),
            event(site, "b", url="ftp://x", colour="red"),
            event(site, "c"),
        ]
    }
    response = await post(client, bad)
    assert response.status == 400
    errors = (await response.json())["errors"]
    assert {(e["index"], e["field"]) for e in errors} == {(1, "url"), (1, "colour")}

    unknown = {"events": [event(site, "d"), event("no-such-site", "e")]}
    response = await post(client, unknown)
    assert response.status == 400
    assert (await response.json())["errors"] == [
        {"index": 1, "field": "site", "error": "unknown site 'no-such-site'"}
    ]

    for body, content_type, status in [
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "text/plain", 400),
        (b'{"site": "x"}', "application/xml", 415),
        (b"{" + b" " * (1024 * 1024) + b"}", "application/json", 413),
    ]:
        raw = await client.post("/v1/collect", data=body, headers={"Content-Type": content_type})
        assert raw.status == status, (body[:20], await raw.text())

    response = await post(client, event(site, "marker"))
    assert response.status == 202
    assert [value["id"] for _, value in await read_topic(settings)] == ["marker"]


async def test_site_added_while_running_is_accepted(gateway: GatewayFactory) -> None:
    client, settings, _ = await gateway()
    late = f"late-{uuid.uuid4().hex[:8]}"
    response = await post(client, event(late, "before"))
    assert response.status == 400
    await add_site(settings, late)
    deadline = time.monotonic() + 15
    while (response := await post(client, event(late, "after"))).status == 400:
        assert time.monotonic() < deadline, "the registry did not follow the new site"
        await asyncio.sleep(0.2)
    assert response.status == 202
    assert [value["id"] for _, value in await read_topic(settings)] == ["after"]


# --- 429 and sampling -----------------------------------------------------------------------------
async def test_rate_limit_answers_429_and_publishes_nothing(gateway: GatewayFactory) -> None:
    client, settings, site = await gateway(rate_limit_events_per_s=0.5, rate_limit_burst=5)
    response = await post(client, {"events": [event(site, f"ok-{i}") for i in range(5)]})
    assert response.status == 202
    response = await post(client, {"events": [event(site, "over-1"), event(site, "over-2")]})
    assert response.status == 429
    assert int(response.headers["Retry-After"]) >= 1
    ids = {value["id"] for _, value in await read_topic(settings)}
    assert ids == {f"ok-{i}" for i in range(5)}


async def test_sampling_keeps_whole_visitors_and_marks_sample_rate(
    gateway: GatewayFactory,
) -> None:
    client, settings, site = await gateway(sample_rate=4)
    events = [event(site, f"s-{i}", visitor=f"v-{i % 100}") for i in range(400)]
    response = await post(client, {"events": events})
    assert response.status == 202
    assert await response.json() == {"accepted": 400}  # dropped ones are stood for
    values = [value for _, value in await read_topic(settings)]
    expected = {e["id"] for e in events if keep(site, e["visitor"], 4)}
    assert {v["id"] for v in values} == expected
    assert 0 < len(expected) < 400
    assert {v["sample_rate"] for v in values} == {4}
    metrics = await (await client.get("/metrics")).text()
    assert "footfall_gateway_sample_rate 4.0" in metrics
    assert f"footfall_gateway_events_sampled_out_total {400 - len(expected)}.0" in metrics


# --- never a 5xx, whatever arrives ----------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def valid_event(site: str) -> st.SearchStrategy[dict[str, Any]]:
    """Events that pass validation, with every optional field in play (they get a 202)."""
    text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=64)
    return st.fixed_dictionaries(
        {
            "site": st.just(site),
            "name": st.sampled_from(["pageview", "signup", "add_to_cart"]),
            "url": st.sampled_from(
                [
                    "https://shop.example.com/",
                    "https://www.shop.example.com/p/1?utm_source=mail&utm_campaign=x",
                    "http://localhost:8080/a b",
                ]
            ),
        },
        optional={
            "visitor": st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1),
            "id": text,
            "ts": st.integers(0, 2**41) | st.just(int(time.time() * 1000)),
            "referrer": st.sampled_from(
                ["", "https://www.google.com/", "https://shop.example.com/x", "android-app://g"]
            ),
            "title": st.text(max_size=100),
            "props": st.dictionaries(
                text,
                st.text(max_size=256)
                | st.booleans()
                | st.floats(allow_nan=False, allow_infinity=False),
                max_size=30,
            ),
            "revenue": st.fixed_dictionaries(
                {
                    "amount": st.floats(min_value=0, allow_nan=False, allow_infinity=False),
                    "currency": st.sampled_from(["INR", "USD"]),
                }
            ),
            "screen": st.just("1920x1080"),
            "lang": st.sampled_from(["en-US", "hi-in", "zh-hant-tw"]),
        },
    )


def event_like(site: str) -> st.SearchStrategy[dict[str, Any]]:
    """Objects close to events, so that validation and enrichment get exercised deeply."""
    return valid_event(site) | st.fixed_dictionaries(
        {},
        optional={
            "site": st.sampled_from([site, "unknown-site", ""]) | st.text(max_size=5),
            "name": st.sampled_from(["pageview", "signup", "a b"]) | json_values,
            "url": st.sampled_from(["https://shop.example.com/x?utm_source=a", "nope"])
            | json_values,
            "visitor": st.text(max_size=130) | json_values,
            "id": st.text(max_size=70),
            "ts": st.integers() | st.text(max_size=30),
            "referrer": st.sampled_from(["", "https://www.google.com/", "android-app://x"])
            | st.text(max_size=30),
            "props": st.dictionaries(st.text(max_size=70), json_values, max_size=32),
            "revenue": st.fixed_dictionaries(
                {"amount": json_values | st.floats(), "currency": st.text(max_size=4)}
            ),
            "screen": st.text(max_size=12),
            "lang": st.text(max_size=40),
        },
    )


def json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def json_bytes(value: Any) -> bytes:
    # The stdlib encoder: big integers, NaN and lone surrogates (escaped) all get through.
    return json.dumps(value).encode()


@pytest.fixture
async def fuzz_target(gateway: GatewayFactory) -> tuple[Client, str]:
    client, _, site = await gateway()
    return client, site


@hypothesis_settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_arbitrary_input_never_gets_a_5xx(
    fuzz_target: tuple[Client, str], data: st.DataObject
) -> None:
    client, site = fuzz_target
    kind = data.draw(st.sampled_from(["bytes", "json", "event", "batch", "pixel"]))
    content_type = data.draw(
        st.sampled_from(
            ["application/json", "text/plain;charset=UTF-8", "application/json", "text/html", ""]
        )
    )
    if kind == "pixel":
        params = data.draw(
            st.dictionaries(st.text(max_size=10), st.text(max_size=40), max_size=6)
            | valid_event(site).map(lambda e: {k: json_text(v) for k, v in e.items()})
        )
        response = await client.get("/v1/collect.gif", params=params)
    else:
        if kind == "bytes":
            body = data.draw(st.binary(max_size=300))
        elif kind == "json":
            body = json_bytes(data.draw(json_values))
        elif kind == "event":
            body = json_bytes(data.draw(event_like(site)))
        else:
            batch = data.draw(st.lists(event_like(site) | json_values, max_size=5))
            body = json_bytes({"events": batch})
        headers = {"Content-Type": content_type} if content_type else {}
        response = await client.post("/v1/collect", data=body, headers=headers)
    event_label(f"status {response.status}")
    assert response.status < 500, await response.text()


# --- the broker goes away and comes back ---------------------------------------------------------
async def test_broker_outage_never_loses_a_202_and_never_publishes_a_503(
    gateway: GatewayFactory, kafka: Kafka
) -> None:
    deadline_s = 2.0
    client, settings, site = await gateway(gateway_publish_timeout_s=deadline_s)
    accepted: list[str] = []
    refused: list[str] = []
    counter = iter(range(10**6))

    async def send(batch_size: int = 3) -> tuple[int, float]:
        ids = [f"o-{next(counter)}" for _ in range(batch_size)]
        started = time.monotonic()
        response = await post(client, {"events": [event(site, i) for i in ids]})
        elapsed = time.monotonic() - started
        assert response.status in (202, 503), await response.text()
        if response.status == 202:
            accepted.extend(ids)
        else:
            assert int(response.headers["Retry-After"]) >= 1
            refused.extend(ids)
        return response.status, elapsed

    statuses = await asyncio.gather(*(send() for _ in range(20)))
    assert {status for status, _ in statuses} == {202}

    try:
        assert await asyncio.to_thread(kafka.stop), "the test expected to stop a running broker"
        # While it is down: 503 within the deadline, concurrently and one after another.
        outage = await asyncio.gather(*(send() for _ in range(10)))
        outage += [await send() for _ in range(3)]
        assert {status for status, _ in outage} == {503}
        assert max(elapsed for _, elapsed in outage) <= deadline_s + 1.0
        assert (await client.get("/readyz")).status == 503
        health = await client.get("/healthz")
        assert health.status == 200
    finally:
        await asyncio.to_thread(kafka.start)

    # Back: requests may fail until the producer reconnects, then they pass again.
    recovery_deadline = time.monotonic() + 60
    while (await send())[0] != 202:
        assert time.monotonic() < recovery_deadline, "no 202 within 60 s of the restart"
        await asyncio.sleep(0.2)
    statuses = await asyncio.gather(*(send() for _ in range(20)))
    assert {status for status, _ in statuses} == {202}

    published = [value["id"] for _, value in await read_topic(settings)]
    assert len(published) == len(set(published)), "an event was published twice"
    assert set(published) == set(accepted), {
        "lost (202 but not on the topic)": sorted(set(accepted) - set(published))[:10],
        "published although answered 503": sorted(set(published) & set(refused))[:10],
    }
    assert len(published) == len(accepted)
