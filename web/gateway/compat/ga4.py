"""GA4's Measurement Protocol (`POST /mp/collect`) mapped onto our wire format.

GA answers every well-formed request with 204 and silently drops what it cannot use; its
validation server (`/debug/mp/collect`) lists why, as `validationMessages`. The mapping
does the same: an event that breaks a rule is dropped and explained by a `Message`, the
others go on. `client_id` is the visitor; an event id is derived from the request (a
purchase's `transaction_id` when it has one, as GA deduplicates purchases by it), so a
retried request counts once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from footfall.events import PAGEVIEW, is_valid_visitor
from web.gateway.compat.common import (
    as_mapping,
    derived_id,
    parse_amount,
    scalar_props,
    time_window,
)

ID_PREFIX: Final = "ga"
MAX_EVENTS: Final = 25
MAX_PARAMS: Final = 25
MAX_BODY_BYTES: Final = 130_000
PAGE_VIEW: Final = "page_view"
PURCHASE: Final = "purchase"

# GA's rules for event and parameter names.
_NAME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
_RESERVED_PREFIXES: Final = ("_", "firebase_", "ga_", "google_", "gtag.")
#: Names GA reserves for its own collection; it drops them when sent by the protocol.
RESERVED_EVENTS: Final = frozenset(
    {
        "ad_activeview",
        "ad_click",
        "ad_exposure",
        "ad_impression",
        "ad_query",
        "ad_reward",
        "adunit_exposure",
        "app_clear_data",
        "app_exception",
        "app_install",
        "app_remove",
        "app_store_refund",
        "app_update",
        "app_upgrade",
        "dynamic_link_app_open",
        "dynamic_link_app_update",
        "dynamic_link_first_open",
        "error",
        "first_open",
        "first_visit",
        "in_app_purchase",
        "notification_dismiss",
        "notification_foreground",
        "notification_open",
        "notification_receive",
        "os_update",
        "screen_view",
        "session_start",
        "user_engagement",
    }
)
# Params with a field of their own, and params GA uses for its sessions and engagement,
# which we compute ourselves (spec/metrics.md): none of them becomes a prop.
_MAPPED_PARAMS: Final = frozenset({"page_location", "page_referrer", "page_title"})
_DROPPED_PARAMS: Final = frozenset(
    {"engagement_time_msec", "session_id", "session_number", "timestamp_micros", "items"}
)


@dataclass(frozen=True, slots=True)
class Message:
    """One entry of GA's `validationMessages`."""

    field_path: str
    description: str
    code: str  # GA's validationCode: VALUE_INVALID, VALUE_REQUIRED, NAME_INVALID, ...

    def as_dict(self) -> dict[str, str]:
        return {
            "fieldPath": self.field_path,
            "description": self.description,
            "validationCode": self.code,
        }


@dataclass(slots=True)
class Mapped:
    """A request's raw wire events (to be validated) and why anything was dropped.

    `sources[i]` is the index in the request's `events` of `events[i]`.
    """

    events: list[dict[str, Any]] = field(default_factory=list)
    sources: list[int] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)


def _micros(value: Any) -> int | None:
    # int64 arrives as a JSON number or, in proto3's JSON form, as a string of digits.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        return int(value)
    return None


def map_request(doc: Any, site: str, received_at: int) -> Mapped:
    """Map a decoded `/mp/collect` body for `site` (the measurement_id's site)."""
    out = Mapped()
    if not isinstance(doc, dict):
        out.messages.append(Message("", "The body must be a JSON object.", "VALUE_INVALID"))
        return out
    client_id = doc.get("client_id")
    if client_id is None:
        out.messages.append(Message("client_id", "client_id is required.", "VALUE_REQUIRED"))
        return out
    if isinstance(client_id, int | float) and not isinstance(client_id, bool):
        client_id = str(client_id)
    if not isinstance(client_id, str) or not is_valid_visitor(client_id):
        out.messages.append(
            Message("client_id", "client_id must be 1..128 printable ASCII chars.", "VALUE_INVALID")
        )
        return out
    request_micros: int | None = None
    if doc.get("timestamp_micros") is not None:
        request_micros = _micros(doc["timestamp_micros"])
        if request_micros is None:
            out.messages.append(
                Message("timestamp_micros", "Must be an integer (epoch µs).", "VALUE_INVALID")
            )
            return out
    events = doc.get("events")
    if not isinstance(events, list) or not events:
        out.messages.append(
            Message("events", "events must be a non-empty array.", "VALUE_REQUIRED")
        )
        return out
    if len(events) > MAX_EVENTS:
        out.messages.append(
            Message(
                "events",
                f"A request can have at most {MAX_EVENTS} events, not {len(events)}.",
                "EXCEEDED_MAX_ENTITIES",
            )
        )
        return out
    for index, raw in enumerate(events):
        wire = _map_event(index, raw, site, client_id, request_micros, received_at, out)
        if wire is not None:
            out.events.append(wire)
            out.sources.append(index)
    return out


def _map_event(
    index: int,
    raw: Any,
    site: str,
    client_id: str,
    request_micros: int | None,
    received_at: int,
    out: Mapped,
) -> dict[str, Any] | None:
    path = f"events[{index}]"
    event = as_mapping(raw)
    if event is None:
        out.messages.append(Message(path, "An event must be an object.", "VALUE_INVALID"))
        return None
    name = event.get("name")
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        out.messages.append(
            Message(
                f"{path}.name",
                f"Event at index: [{index}] has invalid name [{name}]. Names must start with "
                "an alphabetic character and hold at most 40 letters, digits and underscores.",
                "NAME_INVALID",
            )
        )
        return None
    if name in RESERVED_EVENTS or name.startswith(_RESERVED_PREFIXES):
        out.messages.append(
            Message(f"{path}.name", f"Event name [{name}] is reserved.", "NAME_RESERVED")
        )
        return None
    params = event.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        out.messages.append(Message(f"{path}.params", "params must be an object.", "VALUE_INVALID"))
        return None
    if len(params) > MAX_PARAMS:
        out.messages.append(
            Message(
                f"{path}.params",
                f"An event can have at most {MAX_PARAMS} params.",
                "EXCEEDED_MAX_ENTITIES",
            )
        )
        return None
    for key in params:
        if _NAME_RE.fullmatch(key) is None or key.startswith(_RESERVED_PREFIXES):
            out.messages.append(
                Message(f"{path}.params.{key}", f"Param name [{key}] is invalid.", "NAME_INVALID")
            )
            return None

    micros = request_micros
    if event.get("timestamp_micros") is not None:  # newer GA: a time per event
        micros = _micros(event["timestamp_micros"])
        if micros is None:
            out.messages.append(
                Message(f"{path}.timestamp_micros", "Must be an integer.", "VALUE_INVALID")
            )
            return None

    revenue: dict[str, Any] | None = None
    skip = set(_MAPPED_PARAMS | _DROPPED_PARAMS)
    if name == PURCHASE and params.get("value") is not None:
        amount = parse_amount(params["value"])
        currency = params.get("currency")
        if amount is None:
            out.messages.append(
                Message(f"{path}.params.value", "value must be a number.", "VALUE_INVALID")
            )
            return None
        if not isinstance(currency, str):
            out.messages.append(
                Message(
                    f"{path}.params.currency",
                    "currency is required when value is set.",
                    "VALUE_REQUIRED",
                )
            )
            return None
        revenue = {"amount": amount, "currency": currency.strip().upper()}
        skip |= {"value", "currency"}

    transaction_id = params.get("transaction_id")
    if name == PURCHASE and isinstance(transaction_id, str) and transaction_id:
        event_id = derived_id(ID_PREFIX, site, PURCHASE, transaction_id)
    else:
        when = micros if micros is not None else ("window", time_window(received_at))
        event_id = derived_id(ID_PREFIX, site, client_id, when, index, name, params)

    return {
        "site": site,
        "name": PAGEVIEW if name == PAGE_VIEW else name,
        "url": _text(params.get("page_location")),
        "visitor": client_id,
        "id": event_id,
        "ts": micros // 1000 if micros is not None else None,
        "referrer": _text(params.get("page_referrer")),
        "title": _text(params.get("page_title")),
        "props": scalar_props(params.items(), frozenset(skip)) or None,
        "revenue": revenue,
    }


def _text(value: Any) -> Any:
    # Left as sent when it is not a string: the wire-format check then names the field.
    return value if value != "" else None
