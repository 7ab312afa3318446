"""The wire format of spec/events.md: body decoding, every field rule, event_time."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from footfall import events as ev
from footfall.events import (
    ENVELOPE_FIELD_NAMES,
    ENVELOPE_FIELDS,
    MAX_BODY_BYTES,
    MAX_EVENTS_PER_REQUEST,
    MAX_TS_MS,
    WIRE_FIELD_NAMES,
    BodyError,
    FieldError,
    canonical_lang,
    encode_envelope,
    event_time,
    kafka_key,
    parse_body,
    parse_rfc3339_ms,
    validate_events,
)

BASE: dict[str, Any] = {
    "site": "shop.example.in",
    "name": "pageview",
    "url": "https://shop.example.in/p/1",
}
RECEIVED = 1_778_300_000_000
HOUR_MS = 3_600_000
ABSENT = object()


def validate_one(**fields: Any) -> tuple[list[ev.WireEvent], list[FieldError]]:
    """Validate BASE changed by ``fields`` (a value of ABSENT removes the field)."""
    raw = {**BASE, **fields}
    raw = {k: v for k, v in raw.items() if v is not ABSENT}
    return validate_events([raw])


def only_value(field: str, **fields: Any) -> Any:
    events, errors = validate_one(**fields)
    assert errors == []
    assert len(events) == 1
    return events[0][field]  # type: ignore[literal-required]


def only_error(**fields: Any) -> tuple[str, str]:
    events, errors = validate_one(**fields)
    assert events == []
    assert len(errors) == 1, errors
    assert errors[0].index == 0
    return errors[0].field, errors[0].error


# --- parse_body ----------------------------------------------------------------------------

ONE = orjson.dumps(BASE)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain;charset=UTF-8",
        "TEXT/PLAIN",
        " application/json ;charset=latin-1",
        "text/plain; charset=us-ascii; foo=bar",
    ],
)
def test_parse_body_accepts_content_type(content_type: str) -> None:
    assert parse_body(ONE, content_type) == [BASE]


@pytest.mark.parametrize(
    "content_type",
    [
        "",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/html",
        "application/jsonx",
        "application/ld+json",
        "text",
    ],
)
def test_parse_body_rejects_content_type_415(content_type: str) -> None:
    with pytest.raises(BodyError) as info:
        parse_body(ONE, content_type)
    assert info.value.status == 415


def test_parse_body_checks_content_type_before_size() -> None:
    with pytest.raises(BodyError) as info:
        parse_body(b" " * (MAX_BODY_BYTES + 1), "text/html")
    assert info.value.status == 415


def _padded(doc: Any, size: int) -> bytes:
    body = orjson.dumps(doc)
    return body + b" " * (size - len(body))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(ONE, [BASE], id="one-event"),
        pytest.param(orjson.dumps({"events": [BASE, BASE]}), [BASE, BASE], id="batch"),
        pytest.param(b"\xef\xbb\xbf" + ONE, [BASE], id="utf8-bom-skipped"),
        pytest.param(
            orjson.dumps({"events": [1, "x"]}), [1, "x"], id="non-objects-left-to-validate"
        ),
        pytest.param(_padded(BASE, MAX_BODY_BYTES), [BASE], id="exactly-1MiB"),
        pytest.param(
            orjson.dumps({"events": [BASE] * MAX_EVENTS_PER_REQUEST}),
            [BASE] * MAX_EVENTS_PER_REQUEST,
            id="exactly-500-events",
        ),
        pytest.param(orjson.dumps({}), [{}], id="empty-object-is-one-event"),
    ],
)
def test_parse_body_accepts(body: bytes, expected: list[Any]) -> None:
    assert parse_body(body, "application/json") == expected


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        pytest.param(
            _padded(BASE, MAX_BODY_BYTES + 1), 413, "body over 1048576 bytes", id="1MiB+1"
        ),
        pytest.param(
            orjson.dumps({"events": [BASE] * (MAX_EVENTS_PER_REQUEST + 1)}),
            413,
            "at most 500 events per request",
            id="501-events",
        ),
        pytest.param(b"", 400, "body is not valid JSON (UTF-8)", id="empty"),
        pytest.param(b"{", 400, "body is not valid JSON (UTF-8)", id="truncated"),
        pytest.param(b"site=x", 400, "body is not valid JSON (UTF-8)", id="form"),
        pytest.param(b'{"a": NaN}', 400, "body is not valid JSON (UTF-8)", id="nan"),
        pytest.param(b'{"a": Infinity}', 400, "body is not valid JSON (UTF-8)", id="infinity"),
        pytest.param(b'{"a": 1e400}', 400, "body is not valid JSON (UTF-8)", id="overflow"),
        pytest.param(b'{"a": "\xff"}', 400, "body is not valid JSON (UTF-8)", id="bad-utf8"),
        pytest.param(
            b'{"a": "\\ud800"}', 400, "body is not valid JSON (UTF-8)", id="lone-surrogate"
        ),
        pytest.param(
            orjson.dumps([BASE]),
            400,
            'body must be an event object or {"events": [...]}',
            id="bare-array",
        ),
        pytest.param(b'"x"', 400, 'body must be an event object or {"events": [...]}', id="string"),
        pytest.param(b"null", 400, 'body must be an event object or {"events": [...]}', id="null"),
        pytest.param(
            orjson.dumps({"events": BASE}), 400, "events must be an array", id="events-object"
        ),
        pytest.param(
            orjson.dumps({"events": None}), 400, "events must be an array", id="events-null"
        ),
        pytest.param(orjson.dumps({"events": []}), 400, "events must not be empty", id="no-events"),
        pytest.param(
            orjson.dumps({"events": [BASE], "site": "x"}),
            400,
            'a batch is {"events": [...]} with no other key',
            id="batch-extra-key",
        ),
    ],
)
def test_parse_body_rejects(body: bytes, status: int, message: str) -> None:
    with pytest.raises(BodyError) as info:
        parse_body(body, "application/json")
    assert (info.value.status, info.value.message) == (status, message)


# --- validate_events: values accepted and how they are normalised ---------------------------

URL_2048 = "https://shop.example.in/" + "a" * (2048 - len("https://shop.example.in/"))
LANG_35 = "en-" + "-".join(["abcdefgh"] * 3) + "-abcde"
assert len(LANG_35) == 35


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        pytest.param("site", "a", "a", id="site-1-char"),
        pytest.param("site", "a" * 64, "a" * 64, id="site-64-chars"),
        pytest.param("site", "0shop.example-in_x", "0shop.example-in_x", id="site-charset"),
        pytest.param("name", "add_to_cart", "add_to_cart", id="name-custom"),
        pytest.param("name", "x:y.z-1_A", "x:y.z-1_A", id="name-charset"),
        pytest.param("name", "a" * 64, "a" * 64, id="name-64-chars"),
        pytest.param("url", "http://a.b", "http://a.b", id="url-http-no-path"),
        pytest.param("url", "HTTPS://A.B/x?q=1#f", "HTTPS://A.B/x?q=1#f", id="url-upper-scheme"),
        pytest.param("url", "https://a.b:8443/", "https://a.b:8443/", id="url-port"),
        pytest.param("url", "https://[2001:db8::1]/", "https://[2001:db8::1]/", id="url-ipv6"),
        pytest.param("url", URL_2048, URL_2048, id="url-2048-chars"),
        pytest.param("visitor", "v", "v", id="visitor-1-char"),
        pytest.param("visitor", "a" * 128, "a" * 128, id="visitor-128-chars"),
        pytest.param("visitor", " ~!aZ09{}", " ~!aZ09{}", id="visitor-printable-ascii"),
        pytest.param("visitor", None, None, id="visitor-null-is-absent"),
        pytest.param("id", "x", "x", id="id-1-char"),
        pytest.param("id", "é" * 64, "é" * 64, id="id-64-chars"),
        pytest.param("ts", 1_778_300_000_000, 1_778_300_000_000, id="ts-int"),
        pytest.param("ts", 0, 0, id="ts-zero"),
        pytest.param("ts", MAX_TS_MS, MAX_TS_MS, id="ts-max"),
        pytest.param("ts", "2026-05-09T04:13:20Z", 1_778_300_000_000, id="ts-rfc3339-z"),
        pytest.param("ts", "2026-05-09t04:13:20z", 1_778_300_000_000, id="ts-rfc3339-lower"),
        pytest.param("ts", "2026-05-09 04:13:20Z", 1_778_300_000_000, id="ts-rfc3339-space"),
        pytest.param("ts", "2026-05-09T09:43:20.5+05:30", 1_778_300_000_500, id="ts-offset-frac"),
        pytest.param("ts", "2026-05-08T23:13:20-05:00", 1_778_300_000_000, id="ts-negative-offset"),
        pytest.param(
            "ts", "2026-05-09T04:13:20.123987Z", 1_778_300_000_123, id="ts-frac-truncated"
        ),
        pytest.param("ts", "2016-12-31T23:59:60Z", 1_483_228_800_000, id="ts-leap-second"),
        pytest.param("ts", "1970-01-01T00:00:00Z", 0, id="ts-epoch"),
        pytest.param("ts", "9999-12-31T23:59:59.999Z", MAX_TS_MS, id="ts-rfc3339-max"),
        pytest.param("ts", None, None, id="ts-null-is-absent"),
        pytest.param("referrer", "", None, id="referrer-empty-is-absent"),
        pytest.param("referrer", "r" * 2048, "r" * 2048, id="referrer-2048-chars"),
        pytest.param("referrer", "not a url", "not a url", id="referrer-free-text"),
        pytest.param("title", "", "", id="title-empty"),
        pytest.param("title", "t" * 512, "t" * 512, id="title-512-chars"),
        pytest.param("props", {}, {}, id="props-empty"),
        pytest.param(
            "props",
            {"plan": "gold", "qty": 2, "price": 9.5, "gift": True, "none": False},
            {"plan": "gold", "qty": 2.0, "price": 9.5, "gift": True, "none": False},
            id="props-scalars-numbers-as-float",
        ),
        pytest.param(
            "props",
            {f"k{i}": i for i in range(30)},
            {f"k{i}": float(i) for i in range(30)},
            id="props-30-keys",
        ),
        pytest.param("props", {"k" * 64: "v"}, {"k" * 64: "v"}, id="props-key-64-chars"),
        pytest.param("props", {"k": "v" * 256}, {"k": "v" * 256}, id="props-value-256-chars"),
        pytest.param("props", {"k": ""}, {"k": ""}, id="props-value-empty"),
        pytest.param(
            "revenue",
            {"amount": 499, "currency": "INR"},
            {"amount": 499.0, "currency": "INR"},
            id="revenue-int-amount",
        ),
        pytest.param(
            "revenue",
            {"currency": "USD", "amount": 0},
            {"amount": 0.0, "currency": "USD"},
            id="revenue-zero",
        ),
        pytest.param(
            "revenue",
            {"amount": -0.0, "currency": "EUR"},
            {"amount": 0.0, "currency": "EUR"},
            id="revenue-negative-zero",
        ),
        pytest.param("screen", "1920x1080", "1920x1080", id="screen"),
        pytest.param("screen", "0x0", "0x0", id="screen-zero"),
        pytest.param("screen", "99999x99999", "99999x99999", id="screen-5-digits"),
        pytest.param("lang", "en", "en", id="lang-language"),
        pytest.param("lang", "en-us", "en-US", id="lang-region-cased"),
        pytest.param("lang", "ZH-HANT-TW", "zh-Hant-TW", id="lang-script-cased"),
        pytest.param("lang", "es-419", "es-419", id="lang-numeric-region"),
        pytest.param("lang", "x-private-ab", "x-private-ab", id="lang-private-use"),
        pytest.param("lang", "en-a-bbb-x-ab", "en-a-bbb-x-ab", id="lang-extension-lower"),
        pytest.param("lang", LANG_35, LANG_35, id="lang-35-chars"),
    ],
)
def test_field_accepted(field: str, value: Any, expected: Any) -> None:
    assert only_value(field, **{field: value}) == expected


def test_minimal_pageview_normalised() -> None:
    events, errors = validate_events([dict(BASE)])
    assert errors == []
    assert events == [
        {
            "site": "shop.example.in",
            "name": "pageview",
            "url": "https://shop.example.in/p/1",
            "visitor": None,
            "id": None,
            "ts": None,
            "referrer": None,
            "title": None,
            "props": None,
            "revenue": None,
            "screen": None,
            "lang": None,
        }
    ]


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(ABSENT, id="absent"),
        pytest.param(None, id="null"),
        pytest.param("https://shop.in/checkout", id="given"),
    ],
)
def test_custom_event_url_optional(url: Any) -> None:
    expected = url if isinstance(url, str) else None
    assert only_value("url", name="purchase", url=url) == expected


# --- validate_events: every rule broken -------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "error"),
    [
        pytest.param({"site": ABSENT}, "site", ev.E_REQUIRED, id="site-absent"),
        pytest.param({"site": None}, "site", ev.E_REQUIRED, id="site-null"),
        pytest.param({"site": 5}, "site", ev.E_STRING, id="site-number"),
        pytest.param({"site": ""}, "site", ev.E_SITE, id="site-empty"),
        pytest.param({"site": "a" * 65}, "site", ev.E_SITE, id="site-65-chars"),
        pytest.param({"site": "Shop"}, "site", ev.E_SITE, id="site-upper"),
        pytest.param({"site": "-shop"}, "site", ev.E_SITE, id="site-leading-dash"),
        pytest.param({"site": ".shop"}, "site", ev.E_SITE, id="site-leading-dot"),
        pytest.param({"site": "shop in"}, "site", ev.E_SITE, id="site-space"),
        pytest.param({"site": "shop\n"}, "site", ev.E_SITE, id="site-trailing-newline"),
        pytest.param({"site": "shöp"}, "site", ev.E_SITE, id="site-non-ascii"),
        pytest.param({"site": "shop:1"}, "site", ev.E_SITE, id="site-colon"),
        pytest.param({"name": ABSENT}, "name", ev.E_REQUIRED, id="name-absent"),
        pytest.param({"name": None}, "name", ev.E_REQUIRED, id="name-null"),
        pytest.param({"name": ["pageview"]}, "name", ev.E_STRING, id="name-list"),
        pytest.param({"name": ""}, "name", ev.E_NAME, id="name-empty"),
        pytest.param({"name": "a" * 65}, "name", ev.E_NAME, id="name-65-chars"),
        pytest.param({"name": "add to cart"}, "name", ev.E_NAME, id="name-space"),
        pytest.param({"name": "käufe"}, "name", ev.E_NAME, id="name-non-ascii"),
        pytest.param({"name": "a/b"}, "name", ev.E_NAME, id="name-slash"),
        pytest.param({"url": ABSENT}, "url", ev.E_URL_REQUIRED, id="url-absent-pageview"),
        pytest.param({"url": None}, "url", ev.E_URL_REQUIRED, id="url-null-pageview"),
        pytest.param({"url": 1}, "url", ev.E_STRING, id="url-number"),
        pytest.param({"url": URL_2048 + "a"}, "url", ev.E_URL_LONG, id="url-2049-chars"),
        pytest.param({"url": ""}, "url", ev.E_URL, id="url-empty"),
        pytest.param({"url": "/p/1"}, "url", ev.E_URL, id="url-relative"),
        pytest.param({"url": "shop.in/p/1"}, "url", ev.E_URL, id="url-no-scheme"),
        pytest.param({"url": "ftp://shop.in/"}, "url", ev.E_URL, id="url-ftp"),
        pytest.param({"url": "javascript:alert(1)"}, "url", ev.E_URL, id="url-javascript"),
        pytest.param({"url": "https://"}, "url", ev.E_URL, id="url-no-host"),
        pytest.param({"url": "https:///p"}, "url", ev.E_URL, id="url-empty-host"),
        pytest.param({"url": "https://sh op.in/"}, "url", ev.E_URL, id="url-space"),
        pytest.param({"url": "https://shop.in/\n"}, "url", ev.E_URL, id="url-control-char"),
        pytest.param({"url": "https://[::1/"}, "url", ev.E_URL, id="url-bad-ipv6"),
        pytest.param({"url": "https://shop.in:99999/"}, "url", ev.E_URL, id="url-bad-port"),
        pytest.param({"url": "https://shop.in:x/"}, "url", ev.E_URL, id="url-port-not-number"),
        pytest.param({"name": "buy", "url": "/cart"}, "url", ev.E_URL, id="url-custom-event-bad"),
        pytest.param({"visitor": 42}, "visitor", ev.E_STRING, id="visitor-number"),
        pytest.param({"visitor": ""}, "visitor", ev.E_VISITOR, id="visitor-empty"),
        pytest.param({"visitor": "a" * 129}, "visitor", ev.E_VISITOR, id="visitor-129-chars"),
        pytest.param({"visitor": "a\tb"}, "visitor", ev.E_VISITOR, id="visitor-tab"),
        pytest.param({"visitor": "a\x7f"}, "visitor", ev.E_VISITOR, id="visitor-del"),
        pytest.param({"visitor": "visitör"}, "visitor", ev.E_VISITOR, id="visitor-non-ascii"),
        pytest.param({"id": 7}, "id", ev.E_STRING, id="id-number"),
        pytest.param({"id": ""}, "id", ev.E_ID, id="id-empty"),
        pytest.param({"id": "a" * 65}, "id", ev.E_ID, id="id-65-chars"),
        pytest.param({"ts": True}, "ts", ev.E_TS_TYPE, id="ts-bool"),
        pytest.param({"ts": 1.778e12}, "ts", ev.E_TS_TYPE, id="ts-float"),
        pytest.param({"ts": [1]}, "ts", ev.E_TS_TYPE, id="ts-list"),
        pytest.param({"ts": -1}, "ts", ev.E_TS_RANGE, id="ts-negative"),
        pytest.param({"ts": MAX_TS_MS + 1}, "ts", ev.E_TS_RANGE, id="ts-over-max"),
        pytest.param({"ts": 2**64}, "ts", ev.E_TS_RANGE, id="ts-over-int64"),
        pytest.param({"ts": "1778300000000"}, "ts", ev.E_TS_RFC3339, id="ts-numeric-string"),
        pytest.param({"ts": "2026-05-09"}, "ts", ev.E_TS_RFC3339, id="ts-date-only"),
        pytest.param({"ts": "2026-05-09T04:13:20"}, "ts", ev.E_TS_RFC3339, id="ts-no-offset"),
        pytest.param({"ts": "2026-05-09T04:13Z"}, "ts", ev.E_TS_RFC3339, id="ts-no-seconds"),
        pytest.param(
            {"ts": "2026-05-09T04:13:20+0530"}, "ts", ev.E_TS_RFC3339, id="ts-offset-no-colon"
        ),
        pytest.param(
            {"ts": "2026-05-09T04:13:20.Z"}, "ts", ev.E_TS_RFC3339, id="ts-empty-fraction"
        ),
        pytest.param({"ts": "20260509T041320Z"}, "ts", ev.E_TS_RFC3339, id="ts-basic-format"),
        pytest.param({"ts": "2026-02-30T00:00:00Z"}, "ts", ev.E_TS_RFC3339, id="ts-feb-30"),
        pytest.param({"ts": "2026-13-01T00:00:00Z"}, "ts", ev.E_TS_RFC3339, id="ts-month-13"),
        pytest.param({"ts": "2026-05-09T24:00:00Z"}, "ts", ev.E_TS_RFC3339, id="ts-hour-24"),
        pytest.param({"ts": "2026-05-09T23:60:00Z"}, "ts", ev.E_TS_RFC3339, id="ts-minute-60"),
        pytest.param({"ts": "2026-05-09T23:59:61Z"}, "ts", ev.E_TS_RFC3339, id="ts-second-61"),
        pytest.param(
            {"ts": "2026-05-09T04:13:20+24:00"}, "ts", ev.E_TS_RFC3339, id="ts-offset-24h"
        ),
        pytest.param({"ts": "0000-01-01T00:00:00Z"}, "ts", ev.E_TS_RFC3339, id="ts-year-0"),
        pytest.param(
            {"ts": "٢٠٢٦-05-09T04:13:20Z"}, "ts", ev.E_TS_RFC3339, id="ts-non-ascii-digits"
        ),
        pytest.param({"ts": "1969-12-31T23:59:59Z"}, "ts", ev.E_TS_RANGE, id="ts-before-epoch"),
        pytest.param(
            {"ts": "1970-01-01T00:30:00+01:00"}, "ts", ev.E_TS_RANGE, id="ts-offset-before-epoch"
        ),
        pytest.param({"referrer": 1}, "referrer", ev.E_STRING, id="referrer-number"),
        pytest.param({"referrer": "r" * 2049}, "referrer", ev.E_REFERRER_LONG, id="referrer-2049"),
        pytest.param({"title": False}, "title", ev.E_STRING, id="title-bool"),
        pytest.param({"title": "t" * 513}, "title", ev.E_TITLE_LONG, id="title-513-chars"),
        pytest.param({"props": "a=1"}, "props", ev.E_OBJECT, id="props-string"),
        pytest.param({"props": [["a", 1]]}, "props", ev.E_OBJECT, id="props-list"),
        pytest.param(
            {"props": {f"k{i}": i for i in range(31)}},
            "props",
            ev.E_PROPS_COUNT,
            id="props-31-keys",
        ),
        pytest.param({"props": {"": 1}}, "props", ev.E_PROP_KEY, id="props-key-empty"),
        pytest.param({"props": {"k" * 65: 1}}, "props", ev.E_PROP_KEY, id="props-key-65-chars"),
        pytest.param(
            {"props": {"k": "v" * 257}}, "props.k", ev.E_PROP_VALUE_LONG, id="props-value-257"
        ),
        pytest.param({"props": {"k": None}}, "props.k", ev.E_PROP_VALUE, id="props-value-null"),
        pytest.param({"props": {"k": {"a": 1}}}, "props.k", ev.E_PROP_VALUE, id="props-nested"),
        pytest.param({"props": {"k": [1]}}, "props.k", ev.E_PROP_VALUE, id="props-value-list"),
        pytest.param({"props": {"k": math.nan}}, "props.k", ev.E_FINITE, id="props-value-nan"),
        pytest.param({"props": {"k": -math.inf}}, "props.k", ev.E_FINITE, id="props-value-inf"),
        pytest.param({"revenue": 10}, "revenue", ev.E_OBJECT, id="revenue-number"),
        pytest.param(
            {"revenue": {"currency": "INR"}},
            "revenue.amount",
            ev.E_REQUIRED,
            id="revenue-no-amount",
        ),
        pytest.param(
            {"revenue": {"amount": None, "currency": "INR"}},
            "revenue.amount",
            ev.E_REQUIRED,
            id="revenue-amount-null",
        ),
        pytest.param(
            {"revenue": {"amount": "10", "currency": "INR"}},
            "revenue.amount",
            ev.E_NUMBER,
            id="revenue-amount-string",
        ),
        pytest.param(
            {"revenue": {"amount": True, "currency": "INR"}},
            "revenue.amount",
            ev.E_NUMBER,
            id="revenue-amount-bool",
        ),
        pytest.param(
            {"revenue": {"amount": -0.01, "currency": "INR"}},
            "revenue.amount",
            ev.E_AMOUNT_NEGATIVE,
            id="revenue-amount-negative",
        ),
        pytest.param(
            {"revenue": {"amount": 1.0000001e15, "currency": "IRR"}},
            "revenue.amount",
            ev.E_AMOUNT_LARGE,
            id="revenue-amount-too-large",
        ),
        pytest.param(
            {"revenue": {"amount": math.nan, "currency": "INR"}},
            "revenue.amount",
            ev.E_FINITE,
            id="revenue-amount-nan",
        ),
        pytest.param(
            {"revenue": {"amount": math.inf, "currency": "INR"}},
            "revenue.amount",
            ev.E_FINITE,
            id="revenue-amount-inf",
        ),
        pytest.param(
            {"revenue": {"amount": 1}}, "revenue.currency", ev.E_REQUIRED, id="revenue-no-currency"
        ),
        pytest.param(
            {"revenue": {"amount": 1, "currency": "inr"}},
            "revenue.currency",
            ev.E_CURRENCY,
            id="revenue-currency-lower",
        ),
        pytest.param(
            {"revenue": {"amount": 1, "currency": "IN"}},
            "revenue.currency",
            ev.E_CURRENCY,
            id="revenue-currency-2-letters",
        ),
        pytest.param(
            {"revenue": {"amount": 1, "currency": "RUPEE"}},
            "revenue.currency",
            ev.E_CURRENCY,
            id="revenue-currency-word",
        ),
        pytest.param(
            {"revenue": {"amount": 1, "currency": 356}},
            "revenue.currency",
            ev.E_CURRENCY,
            id="revenue-currency-numeric",
        ),
        pytest.param(
            {"revenue": {"amount": 1, "currency": "INR", "tax": 2}},
            "revenue.tax",
            ev.E_UNKNOWN,
            id="revenue-unknown-key",
        ),
        pytest.param({"screen": 1920}, "screen", ev.E_STRING, id="screen-number"),
        pytest.param({"screen": ""}, "screen", ev.E_SCREEN, id="screen-empty"),
        pytest.param({"screen": "1920X1080"}, "screen", ev.E_SCREEN, id="screen-upper-x"),
        pytest.param({"screen": "1920*1080"}, "screen", ev.E_SCREEN, id="screen-star"),
        pytest.param({"screen": "1920x"}, "screen", ev.E_SCREEN, id="screen-no-height"),
        pytest.param({"screen": "100000x1"}, "screen", ev.E_SCREEN, id="screen-6-digits"),
        pytest.param(
            {"screen": "\uff11\uff19\uff12\uff10x1080"},
            "screen",
            ev.E_SCREEN,
            id="screen-fullwidth-digits",
        ),
        pytest.param({"screen": "-1x1"}, "screen", ev.E_SCREEN, id="screen-negative"),
        pytest.param({"lang": 1}, "lang", ev.E_STRING, id="lang-number"),
        pytest.param({"lang": ""}, "lang", ev.E_LANG, id="lang-empty"),
        pytest.param({"lang": "e"}, "lang", ev.E_LANG, id="lang-1-letter"),
        pytest.param({"lang": "en_US"}, "lang", ev.E_LANG, id="lang-underscore"),
        pytest.param({"lang": "en-"}, "lang", ev.E_LANG, id="lang-trailing-dash"),
        pytest.param({"lang": "en--us"}, "lang", ev.E_LANG, id="lang-empty-subtag"),
        pytest.param({"lang": "en-abcdefghi"}, "lang", ev.E_LANG, id="lang-9-char-subtag"),
        pytest.param({"lang": LANG_35 + "a"}, "lang", ev.E_LANG, id="lang-36-chars"),
        pytest.param({"sitee": "x"}, "sitee", ev.E_UNKNOWN, id="unknown-typo"),
        pytest.param({"country": "US"}, "country", ev.E_UNKNOWN, id="unknown-gateway-field"),
        pytest.param({"bot": False}, "bot", ev.E_UNKNOWN, id="unknown-bot"),
        pytest.param({"event_time": 1}, "event_time", ev.E_UNKNOWN, id="unknown-event-time"),
        pytest.param({"events": []}, "events", ev.E_UNKNOWN, id="unknown-events"),
    ],
)
def test_field_rejected(fields: dict[str, Any], field: str, error: str) -> None:
    assert only_error(**fields) == (field, error)


def test_not_an_object() -> None:
    for raw in (None, 1, "pageview", [BASE], True):
        assert validate_events([raw]) == ([], [FieldError(0, "", ev.E_NOT_OBJECT)])


def test_every_error_of_every_event_is_collected() -> None:
    raw_events: list[Any] = [
        {"site": "Bad", "url": "ftp://x", "ts": True, "colour": "red", "name": "pageview"},
        dict(BASE),
        "nope",
        {"name": "buy", "revenue": {"amount": -1}, "props": {"a": None, "b": [], "c": 1}},
    ]
    events, errors = validate_events(raw_events)
    assert [e["site"] for e in events] == ["shop.example.in"]
    assert [e.as_dict() for e in errors] == [
        {"index": 0, "field": "colour", "error": ev.E_UNKNOWN},
        {"index": 0, "field": "site", "error": ev.E_SITE},
        {"index": 0, "field": "url", "error": ev.E_URL},
        {"index": 0, "field": "ts", "error": ev.E_TS_TYPE},
        {"index": 2, "field": "", "error": ev.E_NOT_OBJECT},
        {"index": 3, "field": "site", "error": ev.E_REQUIRED},
        {"index": 3, "field": "props.a", "error": ev.E_PROP_VALUE},
        {"index": 3, "field": "props.b", "error": ev.E_PROP_VALUE},
        {"index": 3, "field": "revenue.amount", "error": ev.E_AMOUNT_NEGATIVE},
        {"index": 3, "field": "revenue.currency", "error": ev.E_REQUIRED},
    ]


def test_bad_props_keys_reported_once_values_each() -> None:
    _, errors = validate_one(props={"": 1, "k" * 65: 2, "a": None, "b": "v" * 257, "ok": 1})
    assert errors == [
        FieldError(0, "props", ev.E_PROP_KEY),
        FieldError(0, "props.a", ev.E_PROP_VALUE),
        FieldError(0, "props.b", ev.E_PROP_VALUE_LONG),
    ]


def test_several_unknown_fields_each_named() -> None:
    _, errors = validate_one(a=1, b=2)
    assert errors == [FieldError(0, "a", ev.E_UNKNOWN), FieldError(0, "b", ev.E_UNKNOWN)]


def test_500_events_validate() -> None:
    events, errors = validate_events([dict(BASE)] * MAX_EVENTS_PER_REQUEST)
    assert errors == []
    assert len(events) == MAX_EVENTS_PER_REQUEST


def test_field_error_as_dict() -> None:
    assert FieldError(3, "url", "required").as_dict() == {
        "index": 3,
        "field": "url",
        "error": "required",
    }


def test_body_error_str() -> None:
    error = BodyError(413, "too big")
    assert (error.status, error.message, str(error)) == (413, "too big", "413: too big")


# --- helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-05-09T04:13:20Z", 1_778_300_000_000),
        ("2026-05-09T04:13:20.001Z", 1_778_300_000_001),
        ("2026-05-09T04:13:20.1Z", 1_778_300_000_100),
        ("2026-05-09T04:13:20-00:00", 1_778_300_000_000),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000),
        ("2023-02-29T00:00:00Z", None),
        ("2026-05-09T04:13:20Z ", None),
        ("", None),
    ],
)
def test_parse_rfc3339_ms(value: str, expected: int | None) -> None:
    assert parse_rfc3339_ms(value) == expected


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("EN", "en"),
        ("en-gb", "en-GB"),
        ("sr-latn-rs", "sr-Latn-RS"),
        ("de-ch-1996", "de-CH-1996"),
        ("en-x-us", "en-x-us"),
        ("X-PRIVATE", "x-private"),
    ],
)
def test_canonical_lang(tag: str, expected: str) -> None:
    assert canonical_lang(tag) == expected


# --- event_time ------------------------------------------------------------------------------

PAST = 72 * HOUR_MS
FUTURE = 5 * 60_000


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        pytest.param(None, RECEIVED, id="no-ts"),
        pytest.param(RECEIVED, RECEIVED, id="same"),
        pytest.param(RECEIVED - 1, RECEIVED - 1, id="1ms-behind"),
        pytest.param(RECEIVED - PAST, RECEIVED - PAST, id="exactly-72h-behind"),
        pytest.param(RECEIVED - PAST - 1, RECEIVED, id="72h-1ms-behind"),
        pytest.param(RECEIVED + FUTURE, RECEIVED + FUTURE, id="exactly-5min-ahead"),
        pytest.param(RECEIVED + FUTURE + 1, RECEIVED, id="5min-1ms-ahead"),
        pytest.param(0, RECEIVED, id="epoch"),
        pytest.param(MAX_TS_MS, RECEIVED, id="far-future"),
    ],
)
def test_event_time(ts: int | None, expected: int) -> None:
    assert event_time(ts, RECEIVED) == expected


# --- envelope -------------------------------------------------------------------------------


def test_wire_fields_are_the_spec_table_in_order() -> None:
    assert WIRE_FIELD_NAMES == (
        "site",
        "name",
        "url",
        "visitor",
        "id",
        "ts",
        "referrer",
        "title",
        "props",
        "revenue",
        "screen",
        "lang",
    )


def test_envelope_fields() -> None:
    assert len(set(ENVELOPE_FIELD_NAMES)) == len(ENVELOPE_FIELDS)
    gateway = [f.name for f in ENVELOPE_FIELDS if not f.wire]
    assert gateway == [
        "received_at",
        "event_time",
        "country",
        "device",
        "browser",
        "os",
        "bot",
        "source",
        "sample_rate",
        "path",
        "utm_source",
        "utm_medium",
        "utm_campaign",
    ]
    always_set = {f.name for f in ENVELOPE_FIELDS if not f.nullable}
    assert always_set == {
        "site",
        "name",
        "visitor",
        "id",
        "received_at",
        "event_time",
        "country",
        "device",
        "browser",
        "os",
        "bot",
        "source",
        "sample_rate",
    }
    kinds = {f.name: f.kind for f in ENVELOPE_FIELDS}
    assert (kinds["ts"], kinds["event_time"], kinds["bot"], kinds["props"]) == (
        "int64",
        "int64",
        "bool",
        "props",
    )


def test_kafka_key_and_encoding() -> None:
    assert kafka_key("shop.in", "v|1") == b"shop.in|v|1"
    assert encode_envelope({"a": 1, "b": None, "c": "é"}) == '{"a":1,"b":null,"c":"é"}'.encode()


# --- properties ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
wireish_events = st.dictionaries(
    st.sampled_from([*WIRE_FIELD_NAMES, "extra"]), json_values, max_size=8
).map(lambda d: {**BASE, **d})


@given(st.lists(json_values | wireish_events, min_size=1, max_size=5))
def test_validate_never_raises_and_accounts_for_every_event(raw_events: list[Any]) -> None:
    events, errors = validate_events(raw_events)
    failed = {e.index for e in errors}
    assert len(events) + len(failed) == len(raw_events)
    for event in events:
        assert list(event) == list(WIRE_FIELD_NAMES)
        orjson.dumps(event)  # publishable: no NaN, no surrogates


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=11))]
        ),
    )
)
def test_rfc3339_matches_datetime(moment: datetime) -> None:
    """Any offset, with or without microseconds (truncated to the millisecond)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    expected = (moment - epoch) // timedelta(milliseconds=1)
    assert parse_rfc3339_ms(moment.isoformat()) == expected
    assert parse_rfc3339_ms(moment.isoformat(sep=" ", timespec="seconds")) == expected - (
        moment.microsecond // 1000
    )
