"""Plausible's events API (`POST /api/event`) mapped onto our wire format.

A Plausible event carries no visitor id and no event id: Plausible counts visitors by a
daily-salted hash of site, IP and User-Agent, which is what our gateway does for
cookieless sites, so the visitor is that hash; the id is derived from the event's content
and a short time window, so that a retried request counts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from footfall.events import PAGEVIEW
from web.gateway.compat.common import (
    as_mapping,
    derived_id,
    event_name,
    parse_amount,
    scalar_props,
    time_window,
)

#: Sent by Plausible's tracker when a page is left (scroll depth, engaged time): not an
#: event of its own in Plausible's counts, nor in ours.
ENGAGEMENT: Final = "engagement"
ID_PREFIX: Final = "pl"

# Each field under its short name and the long names Plausible also accepts.
_NAME: Final = ("n", "name")
_URL: Final = ("u", "url")
_DOMAIN: Final = ("d", "domain")
_REFERRER: Final = ("r", "referrer")
_PROPS: Final = ("p", "props", "m", "meta")
_REVENUE: Final = ("$", "revenue")


class PlausibleError(ValueError):
    """A request Plausible would refuse, with the field to name in the 400 answer."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message)
        self.field = field
        self.message = message

    def as_body(self) -> dict[str, Any]:
        """Plausible's error answer: `{"errors": {field: [message]}}`."""
        return {"errors": {self.field: [self.message]}}


@dataclass(frozen=True, slots=True)
class PlausibleEvent:
    """One Plausible request, read; `dropped` says why it publishes nothing."""

    name: str
    url: str
    domains: tuple[str, ...]
    referrer: str | None
    props: dict[str, Any] | None
    revenue: dict[str, Any] | None
    dropped: str | None = None


def _first(doc: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = doc.get(name)
        if value is not None:
            return value
    return None


def parse(doc: Any) -> PlausibleEvent:
    """Read a decoded request body; PlausibleError when Plausible would answer 400."""
    if not isinstance(doc, dict):
        raise PlausibleError("request", "must be a JSON object")
    raw_name = _first(doc, _NAME)
    if not isinstance(raw_name, str) or not raw_name.strip():
        raise PlausibleError("name", "can't be blank")
    raw_url = _first(doc, _URL)
    if not isinstance(raw_url, str) or not raw_url:
        raise PlausibleError("url", "can't be blank")
    raw_domain = _first(doc, _DOMAIN)
    if raw_domain is None:
        try:
            host = urlsplit(raw_url).hostname
        except ValueError:
            host = None
        domains: tuple[str, ...] = (host,) if host else ()
    elif isinstance(raw_domain, str):
        domains = tuple(d.strip() for d in raw_domain.split(",") if d.strip())
    else:
        raise PlausibleError("domain", "must be a string")
    if not domains:
        raise PlausibleError("domain", "can't be blank")
    referrer = _first(doc, _REFERRER)
    if referrer is not None and not isinstance(referrer, str):
        raise PlausibleError("referrer", "must be a string")
    name = PAGEVIEW if raw_name == PAGEVIEW else event_name(raw_name)
    if not name:
        raise PlausibleError("name", "has no letter or digit")
    return PlausibleEvent(
        name=name,
        url=raw_url,
        domains=domains,
        referrer=referrer or None,
        props=_props(_first(doc, _PROPS)),
        revenue=_revenue(_first(doc, _REVENUE)),
        dropped="engagement" if raw_name == ENGAGEMENT else None,
    )


def _props(value: Any) -> dict[str, Any] | None:
    # Older Plausible scripts send props as JSON text (`m`/`meta`); the newer ones as an
    # object. Text that is not a JSON object is ignored, as Plausible does.
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    mapping = as_mapping(value)
    if mapping is None:
        return None
    return scalar_props(mapping.items()) or None


def _revenue(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    mapping = as_mapping(value)
    if mapping is None:
        raise PlausibleError("revenue", "must be an object with amount and currency")
    amount = parse_amount(mapping.get("amount"))
    if amount is None:
        raise PlausibleError("revenue", "amount must be a number")
    currency = mapping.get("currency")
    if not isinstance(currency, str):
        raise PlausibleError("revenue", "currency must be a string")
    # Left to the wire-format check: amount >= 0, currency three letters (upper-cased here,
    # as Plausible's tracker does not).
    return {"amount": amount, "currency": currency.strip().upper()}


def to_wire(event: PlausibleEvent, site: str, visitor: str, received_at: int) -> dict[str, Any]:
    """The raw wire event (to be validated) that `event` becomes for `site`."""
    return {
        "site": site,
        "name": event.name,
        "url": event.url,
        "visitor": visitor,
        "id": derived_id(
            ID_PREFIX,
            site,
            visitor,
            event.name,
            event.url,
            event.referrer,
            event.props,
            event.revenue,
            time_window(received_at),
        ),
        "referrer": event.referrer,
        "props": event.props,
        "revenue": event.revenue,
    }
