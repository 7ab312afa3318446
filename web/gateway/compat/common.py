"""What both compatibility mappings need: derived event ids, props and event names."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson

from footfall.events import (
    MAX_NAME_CHARS,
    MAX_PROP_KEY_CHARS,
    MAX_PROP_VALUE_CHARS,
    MAX_PROPS,
    PropValue,
)

#: Width of the time window that stands in for a timestamp the source does not send:
#: the same event re-sent within it (a retry) gets the same id and so counts once.
DEDUPE_WINDOW_MS: Final = 10_000

_NAME_JUNK: Final = re.compile(r"[^A-Za-z0-9_.:-]+")


def derived_id(prefix: str, *parts: Any) -> str:
    """A deterministic event id for a source that sends none: equal inputs, equal ids."""
    digest = hashlib.blake2b(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS), digest_size=16)
    return prefix + digest.hexdigest()


def time_window(received_at: int) -> int:
    """The dedupe window holding `received_at` (epoch ms)."""
    return received_at // DEDUPE_WINDOW_MS


def event_name(name: str) -> str:
    """A source's event name in our alphabet: each run of other characters becomes `_`.

    `Outbound Link: Click` -> `Outbound_Link:_Click`; cut to 64 chars. "" when no letter
    or digit is left (the caller refuses that).
    """
    cleaned = _NAME_JUNK.sub("_", name.strip())[:MAX_NAME_CHARS]
    return cleaned if any(c.isascii() and c.isalnum() for c in cleaned) else ""


def scalar_props(
    items: Iterable[tuple[Any, Any]], skip: frozenset[str] = frozenset()
) -> dict[str, PropValue]:
    """Props kept the way the sources keep them: scalar values only, the rest dropped.

    Keys outside 1..64 chars, `skip`ped keys, null, list and object values and non-finite
    numbers are dropped; strings are cut to 256 chars; at most 30 keys, first ones first.
    """
    props: dict[str, PropValue] = {}
    for key, value in items:
        if len(props) == MAX_PROPS:
            break
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_PROP_KEY_CHARS or key in skip:
            continue
        if isinstance(value, str):
            props[key] = value[:MAX_PROP_VALUE_CHARS]
        elif isinstance(value, bool):
            props[key] = value
        elif isinstance(value, int | float) and math.isfinite(value):
            props[key] = float(value)
    return props


def as_mapping(value: Any) -> Mapping[str, Any] | None:
    """`value` when it is a JSON object, else None."""
    return value if isinstance(value, dict) else None


def parse_amount(value: Any) -> float | None:
    """A money amount sent as a number or a numeric string; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None
