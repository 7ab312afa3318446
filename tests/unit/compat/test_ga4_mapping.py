"""GA4 Measurement Protocol payloads, field by field, onto our wire format (docs/tracker.md)."""

from __future__ import annotations

from typing import Any

import pytest

from footfall.events import validate_events
from web.gateway.compat.common import DEDUPE_WINDOW_MS
from web.gateway.compat.ga4 import map_request

AT = 1_767_225_600_000  # 2026-01-01T00:00Z
MICROS = 1_767_225_000_123_456
PAGE = "https://shop.example.com/products"


def one(event: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"client_id": "123456.7654321", "events": [event], **top}


# (the request as the Measurement Protocol reference writes it, what our event holds)
MAPPED: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "page_view with page params",
        one(
            {
                "name": "page_view",
                "params": {
                    "page_location": PAGE,
                    "page_referrer": "https://www.google.com/",
                    "page_title": "Products",
                    "engagement_time_msec": 100,
                    "session_id": "1767225000",
                },
            }
        ),
        {
            "name": "pageview",
            "url": PAGE,
            "referrer": "https://www.google.com/",
            "title": "Products",
            "visitor": "123456.7654321",
            "props": None,
            "ts": None,
        },
    ),
    (
        "custom event: scalar params become props",
        one({"name": "login", "params": {"method": "Google", "engagement_time_msec": "100"}}),
        {"name": "login", "url": None, "props": {"method": "Google"}},
    ),
    (
        "purchase: value and currency become revenue, items dropped",
        one(
            {
                "name": "purchase",
                "params": {
                    "transaction_id": "T_12345",
                    "value": 30.03,
                    "currency": "USD",
                    "tax": 4.9,
                    "items": [{"item_id": "SKU_12345", "price": 10.01, "quantity": 3}],
                },
            }
        ),
        {
            "name": "purchase",
            "revenue": {"amount": 30.03, "currency": "USD"},
            "props": {"transaction_id": "T_12345", "tax": 4.9},
        },
    ),
    (
        "value on other events stays a prop",
        one({"name": "add_to_cart", "params": {"value": 7.5, "currency": "EUR"}}),
        {"revenue": None, "props": {"value": 7.5, "currency": "EUR"}},
    ),
    (
        "timestamp_micros of the request",
        one({"name": "login"}, timestamp_micros=MICROS),
        {"ts": MICROS // 1000},
    ),
    (
        "timestamp_micros as a string (proto3 JSON)",
        one({"name": "login"}, timestamp_micros=str(MICROS)),
        {"ts": MICROS // 1000},
    ),
    (
        "timestamp_micros of the event wins",
        one({"name": "login", "timestamp_micros": MICROS + 5000}, timestamp_micros=MICROS),
        {"ts": (MICROS + 5000) // 1000},
    ),
    (
        "user_id, user_properties, consent and the like are dropped",
        one(
            {"name": "login"},
            user_id="u-1",
            user_properties={"tier": {"value": "gold"}},
            consent={"ad_user_data": "GRANTED"},
            non_personalized_ads=True,
            user_location={"city": "Mumbai"},
        ),
        {"visitor": "123456.7654321", "props": None},
    ),
]


@pytest.mark.parametrize(
    ("sent", "expected"), [(s, e) for _, s, e in MAPPED], ids=[m[0] for m in MAPPED]
)
def test_mapping(sent: dict[str, Any], expected: dict[str, Any]) -> None:
    mapped = map_request(sent, "shop", AT)
    assert mapped.messages == []
    [wire] = mapped.events
    assert {k: wire[k] for k in expected} == expected
    assert wire["site"] == "shop"
    _, errors = validate_events([wire])
    assert errors == []


# (request, the validationMessages' fieldPath and code; the event is dropped)
REFUSED: list[tuple[str, Any, str, str]] = [
    ("not an object", [1], "", "VALUE_INVALID"),
    ("no client_id", {"events": [{"name": "login"}]}, "client_id", "VALUE_REQUIRED"),
    ("bad client_id", one({"name": "login"}, client_id="\n"), "client_id", "VALUE_INVALID"),
    ("no events", {"client_id": "1.2", "events": []}, "events", "VALUE_REQUIRED"),
    (
        "26 events",
        {"client_id": "1.2", "events": [{"name": "login"}] * 26},
        "events",
        "EXCEEDED_MAX_ENTITIES",
    ),
    (
        "bad timestamp",
        one({"name": "login"}, timestamp_micros="soon"),
        "timestamp_micros",
        "VALUE_INVALID",
    ),
    ("name starting with _", one({"name": "_badEventName"}), "events[0].name", "NAME_INVALID"),
    ("name too long", one({"name": "a" * 41}), "events[0].name", "NAME_INVALID"),
    ("reserved name", one({"name": "session_start"}), "events[0].name", "NAME_RESERVED"),
    ("reserved prefix", one({"name": "firebase_thing"}), "events[0].name", "NAME_RESERVED"),
    (
        "params not an object",
        one({"name": "login", "params": [1]}),
        "events[0].params",
        "VALUE_INVALID",
    ),
    (
        "26 params",
        one({"name": "login", "params": {f"p{i}": i for i in range(26)}}),
        "events[0].params",
        "EXCEEDED_MAX_ENTITIES",
    ),
    (
        "bad param name",
        one({"name": "login", "params": {"ga_x": 1}}),
        "events[0].params.ga_x",
        "NAME_INVALID",
    ),
    (
        "purchase value without currency",
        one({"name": "purchase", "params": {"value": 3}}),
        "events[0].params.currency",
        "VALUE_REQUIRED",
    ),
    (
        "purchase value not a number",
        one({"name": "purchase", "params": {"value": "lots", "currency": "USD"}}),
        "events[0].params.value",
        "VALUE_INVALID",
    ),
]


@pytest.mark.parametrize(
    ("sent", "path", "code"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_refused(sent: Any, path: str, code: str) -> None:
    mapped = map_request(sent, "shop", AT)
    assert mapped.events == []
    assert [(m.field_path, m.code) for m in mapped.messages] == [(path, code)]


def test_one_bad_event_does_not_drop_the_others() -> None:
    doc = {"client_id": "1.2", "events": [{"name": "login"}, {"name": "_bad"}, {"name": "signup"}]}
    mapped = map_request(doc, "shop", AT)
    assert [e["name"] for e in mapped.events] == ["login", "signup"]
    assert mapped.sources == [0, 2]
    assert [m.field_path for m in mapped.messages] == ["events[1].name"]


def test_page_view_without_page_location_fails_the_wire_format() -> None:
    [wire] = map_request(one({"name": "page_view"}), "shop", AT).events
    _, errors = validate_events([wire])
    assert [e.field for e in errors] == ["url"]


def ids(doc: dict[str, Any], at: int = AT, site: str = "shop") -> list[str]:
    return [e["id"] for e in map_request(doc, site, at).events]


def test_ids_dedupe_retries() -> None:
    timed = one({"name": "login"}, timestamp_micros=MICROS)
    assert ids(timed) == ids(timed, AT + 3_600_000)  # same timestamp: same event, any time
    assert ids(timed) != ids(one({"name": "login"}, timestamp_micros=MICROS + 1))
    assert ids(timed) != ids(timed, site="other")
    untimed = one({"name": "login"})
    assert ids(untimed) == ids(untimed, AT + DEDUPE_WINDOW_MS - 1)
    assert ids(untimed) != ids(untimed, AT + DEDUPE_WINDOW_MS)
    twice = {"client_id": "1.2", "events": [{"name": "login"}, {"name": "login"}]}
    first, second = ids(twice)
    assert first != second  # two events of one request are two events


def test_purchases_dedupe_by_transaction_id() -> None:
    def purchase(client: str, micros: int) -> dict[str, Any]:
        params = {"transaction_id": "T_1", "value": 1, "currency": "USD"}
        return one(
            {"name": "purchase", "params": params}, client_id=client, timestamp_micros=micros
        )

    assert ids(purchase("1.2", MICROS)) == ids(purchase("3.4", MICROS + 10**6))
