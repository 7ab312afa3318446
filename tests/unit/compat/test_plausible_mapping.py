"""Plausible's events API payloads, field by field, onto our wire format (docs/tracker.md)."""

from __future__ import annotations

from typing import Any

import pytest

from footfall.events import validate_events
from web.gateway.compat.common import DEDUPE_WINDOW_MS
from web.gateway.compat.plausible import PlausibleError, parse, to_wire

URL = "https://shop.example.com/products?utm_source=news"
AT = 1_767_225_600_000  # 2026-01-01T00:00Z
BASE = {"n": "pageview", "u": URL, "d": "shop.example.com"}

# (what the tracker sends, what our event holds; keys not named are as for BASE)
MAPPED: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("short names", BASE, {"name": "pageview", "url": URL, "referrer": None, "props": None}),
    (
        "long names",
        {"name": "pageview", "url": URL, "domain": "shop.example.com", "referrer": "https://t.co/"},
        {"name": "pageview", "referrer": "https://t.co/"},
    ),
    ("null referrer (the tracker's default)", {**BASE, "r": None}, {"referrer": None}),
    ("empty referrer", {**BASE, "r": ""}, {"referrer": None}),
    (
        "custom event name with spaces",
        {**BASE, "n": "Outbound Link: Click"},
        {"name": "Outbound_Link:_Click"},
    ),
    ("long custom name is cut", {**BASE, "n": "x" * 120}, {"name": "x" * 64}),
    (
        "props object, non-scalars and long keys dropped",
        {**BASE, "p": {"plan": "pro", "seats": 3, "ok": True, "list": [1], "k" * 65: "v"}},
        {"props": {"plan": "pro", "seats": 3.0, "ok": True}},
    ),
    (
        "props as JSON text (older scripts, `m`)",
        {**BASE, "m": '{"author":"Jo"}'},
        {"props": {"author": "Jo"}},
    ),
    ("props that are not JSON are ignored", {**BASE, "meta": "{nope"}, {"props": None}),
    ("long prop values are cut", {**BASE, "p": {"q": "v" * 300}}, {"props": {"q": "v" * 256}}),
    (
        "revenue under `$` (npm tracker), amount as text",
        {**BASE, "n": "Purchase", "$": {"amount": "1499.50", "currency": "inr"}},
        {"name": "Purchase", "revenue": {"amount": 1499.5, "currency": "INR"}},
    ),
    (
        "revenue under `revenue`",
        {**BASE, "revenue": {"amount": 12, "currency": "USD"}},
        {"revenue": {"amount": 12.0, "currency": "USD"}},
    ),
    ("hash mode, interactive, version dropped", {**BASE, "h": 1, "i": False, "v": 36}, {}),
]


@pytest.mark.parametrize(
    ("sent", "expected"), [(s, e) for _, s, e in MAPPED], ids=[m[0] for m in MAPPED]
)
def test_mapping(sent: dict[str, Any], expected: dict[str, Any]) -> None:
    wire = to_wire(parse(sent), "shop", "v1", AT)
    assert {k: wire[k] for k in expected} == expected
    assert wire["site"] == "shop"
    assert wire["visitor"] == "v1"
    events, errors = validate_events([wire])
    assert errors == []
    assert len(events) == 1


@pytest.mark.parametrize(
    ("sent", "domains"),
    [
        (BASE, ("shop.example.com",)),
        ({**BASE, "d": "a.example, b.example"}, ("a.example", "b.example")),
        ({"n": "pageview", "u": "https://www.shop.example.com/x"}, ("www.shop.example.com",)),
    ],
)
def test_domains(sent: dict[str, Any], domains: tuple[str, ...]) -> None:
    assert parse(sent).domains == domains


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        ([BASE], "request"),
        ({"u": URL, "d": "x"}, "name"),
        ({**BASE, "n": "   "}, "name"),
        ({**BASE, "n": "!!!"}, "name"),
        ({"n": "pageview", "d": "x"}, "url"),
        ({"n": "pageview", "u": "not a url"}, "domain"),
        ({**BASE, "d": 3}, "domain"),
        ({**BASE, "r": 3}, "referrer"),
        ({**BASE, "$": "12 USD"}, "revenue"),
        ({**BASE, "$": {"amount": "lots", "currency": "USD"}}, "revenue"),
        ({**BASE, "$": {"amount": 1}}, "revenue"),
    ],
)
def test_refused(sent: Any, field: str) -> None:
    with pytest.raises(PlausibleError) as caught:
        parse(sent)
    assert caught.value.field == field
    assert caught.value.as_body() == {"errors": {field: [caught.value.message]}}


def test_engagement_events_are_dropped() -> None:
    event = parse({"n": "engagement", "u": URL, "d": "shop.example.com", "sd": 40, "e": 1200})
    assert event.dropped == "engagement"


def test_ids_are_deterministic_within_the_dedupe_window() -> None:
    event = parse({**BASE, "p": {"a": "1"}})
    first = to_wire(event, "shop", "v1", AT)["id"]
    assert to_wire(event, "shop", "v1", AT + DEDUPE_WINDOW_MS - 1)["id"] == first  # a retry
    assert to_wire(event, "shop", "v1", AT + DEDUPE_WINDOW_MS)["id"] != first
    assert to_wire(event, "shop", "v2", AT)["id"] != first
    assert to_wire(event, "other", "v1", AT)["id"] != first
    assert to_wire(parse({**BASE, "p": {"a": "2"}}), "shop", "v1", AT)["id"] != first
    assert len(first) <= 64


def test_non_http_urls_fail_the_wire_format() -> None:
    # Plausible accepts app:// urls for mobile apps; our wire format wants http(s).
    wire = to_wire(parse({**BASE, "u": "app://localhost/login"}), "shop", "v1", AT)
    _, errors = validate_events([wire])
    assert [e.field for e in errors] == ["url"]
