"""The event wire format, version 1: what emitters send and what the gateway publishes.

This module is the one home of /work/shared/spec/events.md in code: its limits, the
validation of every field of the table "What an emitter sends", the ``event_time``
rule and the ordered field list of the envelope published to ``events.raw``. The
gateway, the batch layer and the archive all import it, so that a change to the
contract is one change.

Normalisation, applied by :func:`validate_events`:

- a field sent as JSON ``null`` is treated as absent (required fields then fail);
- ``ts`` becomes integer epoch milliseconds (RFC 3339 strings are converted,
  fractions below a millisecond truncated);
- ``referrer`` ``""`` becomes absent (it is what ``document.referrer`` holds when
  there is none);
- ``props`` numbers and ``revenue.amount`` become floats (JSON numbers are
  doubles to the browser that sent them, and the archive wants one type);
- ``lang`` gets the canonical BCP 47 casing (``en-us`` -> ``en-US``,
  ``zh-hant-tw`` -> ``zh-Hant-TW``).

Lengths are counted in Unicode code points.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, Final, Literal, TypedDict
from urllib.parse import urlsplit

import orjson

# --- limits ----------------------------------------------------------------------------

MAX_EVENTS_PER_REQUEST: Final = 500
MAX_BODY_BYTES: Final = 1024 * 1024
MAX_SITE_CHARS: Final = 64
MAX_NAME_CHARS: Final = 64
MAX_URL_CHARS: Final = 2048
MAX_VISITOR_CHARS: Final = 128
MAX_ID_CHARS: Final = 64
MAX_REFERRER_CHARS: Final = 2048
MAX_TITLE_CHARS: Final = 512
MAX_PROPS: Final = 30
MAX_PROP_KEY_CHARS: Final = 64
MAX_PROP_VALUE_CHARS: Final = 256
MAX_LANG_CHARS: Final = 35
# The largest revenue amount accepted: a quadrillion units of any currency (~24 billion USD
# in rials, the smallest unit in use). Sums are kept in integer millionths
# (footfall.metrics.revenue_units); beyond this a sum could leave the counting core's
# 128-bit integers, and no real transaction comes near it.
MAX_REVENUE_AMOUNT: Final = 1e15
# ts as integer epoch ms is kept to what a date can hold (up to 9999-12-31T23:59:59.999Z),
# which also keeps it inside int64 for every consumer.
MAX_TS_MS: Final = 253_402_300_799_999
# The event_time window around received_at within which the emitter's clock is trusted.
TS_PAST_WINDOW_MS: Final = 72 * 3600 * 1000
TS_FUTURE_WINDOW_MS: Final = 5 * 60 * 1000

PAGEVIEW: Final = "pageview"
ACCEPTED_CONTENT_TYPES: Final = frozenset({"application/json", "text/plain"})

# --- the envelope ------------------------------------------------------------------------

FieldKind = Literal["string", "int64", "float64", "bool", "props", "revenue"]
"""Type of one envelope field.

``props`` is a map from string keys to scalar values, each a string, a float64 or a
bool; ``revenue`` is a struct ``{amount: float64, currency: string}``.
"""


@dataclass(frozen=True, slots=True)
class EnvelopeField:
    """One field of the event published on ``events.raw``, in publishing order."""

    name: str
    kind: FieldKind
    nullable: bool
    wire: bool  # sent by emitters; False: added by the gateway
    doc: str


ENVELOPE_FIELDS: Final[tuple[EnvelopeField, ...]] = (
    EnvelopeField("site", "string", False, True, "The merchant's property id."),
    EnvelopeField("name", "string", False, True, "`pageview` or a custom event name."),
    EnvelopeField("url", "string", True, True, "Absolute http(s) URL; set for pageviews."),
    EnvelopeField("visitor", "string", False, True, "Emitter id, cookie or daily hash."),
    EnvelopeField("id", "string", False, True, "Emitter event id or a gateway uuid4 hex."),
    EnvelopeField("ts", "int64", True, True, "The emitter's clock, epoch ms."),
    EnvelopeField("referrer", "string", True, True, "Referring URL as sent."),
    EnvelopeField("title", "string", True, True, "Page title."),
    EnvelopeField("props", "props", True, True, "Custom properties."),
    EnvelopeField("revenue", "revenue", True, True, "Amount and ISO 4217 currency."),
    EnvelopeField("screen", "string", True, True, "WIDTHxHEIGHT."),
    EnvelopeField("lang", "string", True, True, "BCP 47 tag (else from Accept-Language)."),
    EnvelopeField("received_at", "int64", False, False, "Gateway clock, epoch ms."),
    EnvelopeField("event_time", "int64", False, False, "ts if plausible, else received_at."),
    EnvelopeField("country", "string", False, False, 'ISO 3166 alpha-2, or "".'),
    EnvelopeField("device", "string", False, False, "desktop, mobile, tablet, bot or other."),
    EnvelopeField("browser", "string", False, False, "Browser family (ua-parser)."),
    EnvelopeField("os", "string", False, False, "OS family (ua-parser)."),
    EnvelopeField("bot", "bool", False, False, "Crawler or bot: counted in no metric."),
    EnvelopeField("source", "string", False, False, "utm_source, referrer domain or direct."),
    EnvelopeField("sample_rate", "int64", False, False, "This event stands for N events."),
    EnvelopeField("path", "string", True, False, "Path of url, no query string."),
    EnvelopeField("utm_source", "string", True, False, "utm_source of the url query."),
    EnvelopeField("utm_medium", "string", True, False, "utm_medium of the url query."),
    EnvelopeField("utm_campaign", "string", True, False, "utm_campaign of the url query."),
)
ENVELOPE_FIELD_NAMES: Final = tuple(f.name for f in ENVELOPE_FIELDS)
WIRE_FIELD_NAMES: Final = tuple(f.name for f in ENVELOPE_FIELDS if f.wire)
_WIRE_FIELDS: Final = frozenset(WIRE_FIELD_NAMES)

# --- types -----------------------------------------------------------------------------

PropValue = str | float | bool


class Revenue(TypedDict):
    """The ``revenue`` object of an event."""

    amount: float
    currency: str


class WireEvent(TypedDict):
    """One validated, normalised event as sent; every key present, ``None`` when absent."""

    site: str
    name: str
    url: str | None
    visitor: str | None
    id: str | None
    ts: int | None
    referrer: str | None
    title: str | None
    props: dict[str, PropValue] | None
    revenue: Revenue | None
    screen: str | None
    lang: str | None


@dataclass(frozen=True, slots=True)
class FieldError:
    """Why one field of one event of a request was rejected (the 400 answer's items).

    ``field`` is the top-level field name, a dotted path inside ``props`` or
    ``revenue`` (``revenue.amount``), or ``""`` when the event as a whole is wrong.
    """

    index: int
    field: str
    error: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "error": self.error}


class BodyError(Exception):
    """A request body the gateway refuses as a whole, with the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"


# --- error messages (part of the answer's contract, asserted by tests) --------------------

E_REQUIRED: Final = "required"
E_STRING: Final = "must be a string"
E_UNKNOWN: Final = "unknown field"
E_NOT_OBJECT: Final = "event must be a JSON object"
E_SITE: Final = "must match ^[a-z0-9][a-z0-9_.-]{0,63}$"
E_NAME: Final = 'must be "pageview" or match ^[A-Za-z0-9_.:-]{1,64}$'
E_URL_REQUIRED: Final = "required for pageview"
E_URL: Final = "must be an absolute http(s) URL"
E_URL_LONG: Final = f"at most {MAX_URL_CHARS} chars"
E_VISITOR: Final = f"must be 1..{MAX_VISITOR_CHARS} printable ASCII chars"
E_ID: Final = f"must be 1..{MAX_ID_CHARS} chars"
E_TS_TYPE: Final = "must be integer epoch ms or an RFC 3339 string"
E_TS_RFC3339: Final = "not an RFC 3339 date-time"
E_TS_RANGE: Final = f"must be within 0..{MAX_TS_MS} epoch ms"
E_REFERRER_LONG: Final = f"at most {MAX_REFERRER_CHARS} chars"
E_TITLE_LONG: Final = f"at most {MAX_TITLE_CHARS} chars"
E_OBJECT: Final = "must be an object"
E_PROPS_COUNT: Final = f"at most {MAX_PROPS} keys"
E_PROP_KEY: Final = f"keys must be 1..{MAX_PROP_KEY_CHARS} chars"
E_PROP_VALUE: Final = "must be a string, number or boolean"
E_PROP_VALUE_LONG: Final = f"at most {MAX_PROP_VALUE_CHARS} chars"
E_NUMBER: Final = "must be a number"
E_FINITE: Final = "must be finite"
E_AMOUNT_NEGATIVE: Final = "must be >= 0"
E_AMOUNT_LARGE: Final = f"must be <= {MAX_REVENUE_AMOUNT:.0e}"
E_CURRENCY: Final = "must be an ISO 4217 code (three upper-case letters)"
E_SCREEN: Final = "must be WIDTHxHEIGHT"
E_LANG: Final = f"must be a BCP 47 tag of at most {MAX_LANG_CHARS} chars"

# --- body ------------------------------------------------------------------------------------

_BOM: Final = b"\xef\xbb\xbf"


def parse_body(body: bytes, content_type: str) -> list[Any]:
    """Decode a ``POST /v1/collect`` body into its raw events, not yet validated.

    The body is one event object or ``{"events": [...]}`` (no other key). Raises
    :class:`BodyError` with status

    - 415 when the media type is neither ``application/json`` nor ``text/plain``
      (any parameters, such as ``charset``, are accepted; the body is read as UTF-8
      whatever the charset says, as JSON must be);
    - 413 when the body is over :data:`MAX_BODY_BYTES` or holds more than
      :data:`MAX_EVENTS_PER_REQUEST` events (both are "body over the limit");
    - 400 when it is not JSON, not of either shape, or holds no event.
    """
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type not in ACCEPTED_CONTENT_TYPES:
        raise BodyError(415, "Content-Type must be application/json or text/plain")
    if len(body) > MAX_BODY_BYTES:
        raise BodyError(413, f"body over {MAX_BODY_BYTES} bytes")
    if body.startswith(_BOM):
        body = body[len(_BOM) :]
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BodyError(400, "body is not valid JSON (UTF-8)") from None
    if not isinstance(doc, dict):
        raise BodyError(400, 'body must be an event object or {"events": [...]}')
    if "events" not in doc:
        return [doc]
    if len(doc) != 1:
        raise BodyError(400, 'a batch is {"events": [...]} with no other key')
    events = doc["events"]
    if not isinstance(events, list):
        raise BodyError(400, "events must be an array")
    if not events:
        raise BodyError(400, "events must not be empty")
    if len(events) > MAX_EVENTS_PER_REQUEST:
        raise BodyError(413, f"at most {MAX_EVENTS_PER_REQUEST} events per request")
    return events


# --- field rules -------------------------------------------------------------------------

# fullmatch everywhere ("$" would let a trailing newline through), ASCII classes only.
_SITE_RE: Final = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_VISITOR_RE: Final = re.compile(r"[\x20-\x7e]{1,128}")
_SCREEN_RE: Final = re.compile(r"[0-9]{1,5}x[0-9]{1,5}")
_CURRENCY_RE: Final = re.compile(r"[A-Z]{3}")
# BCP 47 well-formedness, simplified: a 2..8 letter language (or x-/i- for private use and
# the grandfathered tags) followed by 1..8 alphanumeric subtags.
_LANG_RE: Final = re.compile(r"(?:[A-Za-z]{2,8}|[xXiI])(?:-[A-Za-z0-9]{1,8})*")
_URL_BAD_CHARS_RE: Final = re.compile(r"[\x00-\x20\x7f]")
_RFC3339_RE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_DAY_MS: Final = 86_400_000


def is_valid_visitor(value: str) -> bool:
    """Whether ``value`` is a valid visitor id (the wire rule; also used for cookies)."""
    return _VISITOR_RE.fullmatch(value) is not None


@lru_cache(maxsize=8192)
def is_absolute_http_url(value: str) -> bool:
    """Whether ``value`` is an absolute http(s) URL with a host (length not checked).

    Cached: a site's pages repeat, and urlsplit's own cache is small.
    """
    if _URL_BAD_CHARS_RE.search(value) is not None:
        return False
    try:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        return False
    return True


def parse_rfc3339_ms(value: str) -> int | None:
    """Epoch ms of an RFC 3339 date-time (a time zone offset is required), else None.

    A leap second (``:60``) counts as the first millisecond of the next minute.
    """
    m = _RFC3339_RE.fullmatch(value)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if hour > 23 or minute > 59 or second > 60:
        return None
    try:
        days = date(year, month, day).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None
    fraction = m.group(7)
    millis = int((fraction[1:] + "00")[:3]) if fraction else 0
    offset_ms = 0
    if m.group(8) is None:
        off_h, off_m = int(m.group(10)), int(m.group(11))
        if off_h > 23 or off_m > 59:
            return None
        offset_ms = (off_h * 60 + off_m) * 60_000
        if m.group(9) == "-":
            offset_ms = -offset_ms
    return days * _DAY_MS + ((hour * 60 + minute) * 60 + second) * 1000 + millis - offset_ms


@lru_cache(maxsize=1024)
def canonical_lang(tag: str) -> str:
    """The canonical casing of a well-formed BCP 47 tag (RFC 5646 section 2.1.1)."""
    parts = tag.lower().split("-")
    out = [parts[0]]
    after_singleton = len(parts[0]) == 1
    for part in parts[1:]:
        if not after_singleton and len(part) == 2:
            part = part.upper()
        elif not after_singleton and len(part) == 4:
            part = part.title()
        elif len(part) == 1:
            after_singleton = True
        out.append(part)
    return "-".join(out)


def is_valid_lang(value: str) -> bool:
    """Whether ``value`` is a well-formed BCP 47 tag within the length limit."""
    return len(value) <= MAX_LANG_CHARS and _LANG_RE.fullmatch(value) is not None


def _check_ts(value: object) -> tuple[int | None, str | None]:
    if isinstance(value, bool):
        return None, E_TS_TYPE
    if isinstance(value, int):
        ms = value
    elif isinstance(value, str):
        parsed = parse_rfc3339_ms(value)
        if parsed is None:
            return None, E_TS_RFC3339
        ms = parsed
    else:
        return None, E_TS_TYPE
    if ms < 0 or ms > MAX_TS_MS:
        return None, E_TS_RANGE
    return ms, None


def _check_number(value: object) -> tuple[float | None, str | None]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, E_NUMBER
    number = float(value)
    if not math.isfinite(number):
        return None, E_FINITE
    return number, None


def _check_props(index: int, value: object, errors: list[FieldError]) -> dict[str, PropValue]:
    if not isinstance(value, dict):
        errors.append(FieldError(index, "props", E_OBJECT))
        return {}
    if len(value) > MAX_PROPS:
        errors.append(FieldError(index, "props", E_PROPS_COUNT))
        return {}
    props: dict[str, PropValue] = {}
    bad_key = False
    for key, item in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_PROP_KEY_CHARS:
            if not bad_key:  # one error for the keys: a key too long to name well
                errors.append(FieldError(index, "props", E_PROP_KEY))
                bad_key = True
            continue
        if isinstance(item, str):
            if len(item) > MAX_PROP_VALUE_CHARS:
                errors.append(FieldError(index, f"props.{key}", E_PROP_VALUE_LONG))
            else:
                props[key] = item
        elif isinstance(item, bool):
            props[key] = item
        elif isinstance(item, int | float):
            number = float(item)
            if math.isfinite(number):
                props[key] = number
            else:
                errors.append(FieldError(index, f"props.{key}", E_FINITE))
        else:
            errors.append(FieldError(index, f"props.{key}", E_PROP_VALUE))
    return props


def _check_revenue(index: int, value: object, errors: list[FieldError]) -> Revenue | None:
    if not isinstance(value, dict):
        errors.append(FieldError(index, "revenue", E_OBJECT))
        return None
    before = len(errors)
    for key in value:
        if key not in ("amount", "currency"):
            errors.append(FieldError(index, f"revenue.{key}", E_UNKNOWN))
    amount: float | None = None
    raw_amount = value.get("amount")
    if raw_amount is None:
        errors.append(FieldError(index, "revenue.amount", E_REQUIRED))
    else:
        amount, error = _check_number(raw_amount)
        if error is None and amount is not None and amount < 0:
            error = E_AMOUNT_NEGATIVE
        if error is None and amount is not None and amount > MAX_REVENUE_AMOUNT:
            error = E_AMOUNT_LARGE
        if error is not None:
            errors.append(FieldError(index, "revenue.amount", error))
    currency = value.get("currency")
    if currency is None:
        errors.append(FieldError(index, "revenue.currency", E_REQUIRED))
    elif not isinstance(currency, str) or _CURRENCY_RE.fullmatch(currency) is None:
        errors.append(FieldError(index, "revenue.currency", E_CURRENCY))
    if len(errors) != before or amount is None or not isinstance(currency, str):
        return None
    return {"amount": amount + 0.0, "currency": currency}  # + 0.0 turns -0.0 into 0.0


def _validate_one(index: int, raw: dict[Any, Any], errors: list[FieldError]) -> WireEvent | None:
    before = len(errors)
    if not raw.keys() <= _WIRE_FIELDS:
        for key in raw:
            if key not in _WIRE_FIELDS:
                errors.append(FieldError(index, str(key), E_UNKNOWN))

    site: Any = raw.get("site")
    if site is None:
        errors.append(FieldError(index, "site", E_REQUIRED))
    elif not isinstance(site, str):
        errors.append(FieldError(index, "site", E_STRING))
    elif _SITE_RE.fullmatch(site) is None:
        errors.append(FieldError(index, "site", E_SITE))

    name: Any = raw.get("name")
    if name is None:
        errors.append(FieldError(index, "name", E_REQUIRED))
    elif not isinstance(name, str):
        errors.append(FieldError(index, "name", E_STRING))
    elif name != PAGEVIEW and _NAME_RE.fullmatch(name) is None:
        errors.append(FieldError(index, "name", E_NAME))

    url = raw.get("url")
    if url is None:
        if name == PAGEVIEW:
            errors.append(FieldError(index, "url", E_URL_REQUIRED))
    elif not isinstance(url, str):
        errors.append(FieldError(index, "url", E_STRING))
    elif len(url) > MAX_URL_CHARS:
        errors.append(FieldError(index, "url", E_URL_LONG))
    elif not is_absolute_http_url(url):
        errors.append(FieldError(index, "url", E_URL))

    visitor = raw.get("visitor")
    if visitor is not None:
        if not isinstance(visitor, str):
            errors.append(FieldError(index, "visitor", E_STRING))
        elif _VISITOR_RE.fullmatch(visitor) is None:
            errors.append(FieldError(index, "visitor", E_VISITOR))

    event_id = raw.get("id")
    if event_id is not None:
        if not isinstance(event_id, str):
            errors.append(FieldError(index, "id", E_STRING))
        elif not 1 <= len(event_id) <= MAX_ID_CHARS:
            errors.append(FieldError(index, "id", E_ID))

    ts: int | None = None
    raw_ts = raw.get("ts")
    if raw_ts is not None:
        ts, error = _check_ts(raw_ts)
        if error is not None:
            errors.append(FieldError(index, "ts", error))

    referrer = raw.get("referrer")
    if referrer is not None:
        if not isinstance(referrer, str):
            errors.append(FieldError(index, "referrer", E_STRING))
        elif len(referrer) > MAX_REFERRER_CHARS:
            errors.append(FieldError(index, "referrer", E_REFERRER_LONG))
        elif not referrer:
            referrer = None

    title = raw.get("title")
    if title is not None:
        if not isinstance(title, str):
            errors.append(FieldError(index, "title", E_STRING))
        elif len(title) > MAX_TITLE_CHARS:
            errors.append(FieldError(index, "title", E_TITLE_LONG))

    props: dict[str, PropValue] | None = None
    raw_props = raw.get("props")
    if raw_props is not None:
        props = _check_props(index, raw_props, errors)

    revenue: Revenue | None = None
    raw_revenue = raw.get("revenue")
    if raw_revenue is not None:
        revenue = _check_revenue(index, raw_revenue, errors)

    screen = raw.get("screen")
    if screen is not None:
        if not isinstance(screen, str):
            errors.append(FieldError(index, "screen", E_STRING))
        elif _SCREEN_RE.fullmatch(screen) is None:
            errors.append(FieldError(index, "screen", E_SCREEN))

    lang = raw.get("lang")
    if lang is not None:
        if not isinstance(lang, str):
            errors.append(FieldError(index, "lang", E_STRING))
        elif not is_valid_lang(lang):
            errors.append(FieldError(index, "lang", E_LANG))
        else:
            lang = canonical_lang(lang)

    if len(errors) != before:
        return None
    return WireEvent(
        site=site,
        name=name,
        url=url,
        visitor=visitor,
        id=event_id,
        ts=ts,
        referrer=referrer,
        title=title,
        props=props,
        revenue=revenue,
        screen=screen,
        lang=lang,
    )


def validate_events(raw_events: list[Any]) -> tuple[list[WireEvent], list[FieldError]]:
    """Check every rule of the wire format on every event of a request.

    Returns the normalised events that passed, in order, and every error of every
    event: at most one per field (the first rule it breaks), per ``props`` value and
    per ``revenue`` member, plus one for all bad ``props`` keys. A request with any
    error must be refused whole (400, nothing published), so a caller publishes
    the events only when the error list is empty.
    """
    events: list[WireEvent] = []
    errors: list[FieldError] = []
    for index, raw in enumerate(raw_events):
        if not isinstance(raw, dict):
            errors.append(FieldError(index, "", E_NOT_OBJECT))
            continue
        event = _validate_one(index, raw, errors)
        if event is not None:
            events.append(event)
    return events, errors


# --- published event -----------------------------------------------------------------


def event_time(ts: int | None, received_at: int) -> int:
    """The time an event counts at: the emitter's ``ts`` when plausible, else ``received_at``.

    Plausible means ``received_at - 72 h <= ts <= received_at + 5 min``, bounds included.
    """
    if (
        ts is not None
        and received_at - TS_PAST_WINDOW_MS <= ts <= received_at + TS_FUTURE_WINDOW_MS
    ):
        return ts
    return received_at


def kafka_key(site: str, visitor: str) -> bytes:
    """The ``events.raw`` record key: one visitor's events stay in order on one partition.

    Spelled ``site|visitor``; ``|`` cannot occur in a site id, so the key splits unambiguously
    at its first ``|``.
    """
    return f"{site}|{visitor}".encode()


def encode_envelope(envelope: dict[str, Any]) -> bytes:
    """The ``events.raw`` record value: the envelope as compact UTF-8 JSON."""
    return orjson.dumps(envelope)
