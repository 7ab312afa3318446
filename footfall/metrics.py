"""The one definition of every metric, session rule and bucket (spec/metrics.md).

The stream layer (agents/, tables/), the batch layer (batch/) and the reporting API (web/)
import these names and rules; none of them restates a definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

MINUTE_MS: Final = 60_000
DAY_MS: Final = 86_400_000

# Counters stored per site per minute (and per dimension value); sums of `sample_rate`.
# `duration_sum` is stored in integer milliseconds (exact in both layers); reports divide
# by 1000 to give the spec's seconds.
EVENT_COUNTERS: Final = ("events", "pageviews", "transactions")
SESSION_COUNTERS: Final = ("sessions", "bounces", "duration_sum")
COUNTERS: Final = EVENT_COUNTERS + SESSION_COUNTERS

# Revenue is kept per currency in integer millionths of a unit, so sums are exact and do
# not depend on the order events were added in (floats would differ between the layers).
REVENUE_SCALE: Final = 1_000_000

# Metrics a report can ask for: the counters, revenue, the visitors estimate and ratios.
DERIVED_METRICS: Final = ("bounce_rate", "avg_duration", "views_per_session")
METRICS: Final = ("visitors", *COUNTERS, "revenue", *DERIVED_METRICS)

EventDimension = Literal["page", "event"]
SessionDimension = Literal[
    "entry_page", "exit_page", "source", "utm_campaign", "country", "device", "browser", "os"
]
EVENT_DIMENSIONS: Final[tuple[EventDimension, ...]] = ("page", "event")
SESSION_DIMENSIONS: Final[tuple[SessionDimension, ...]] = (
    "entry_page",
    "exit_page",
    "source",
    "utm_campaign",
    "country",
    "device",
    "browser",
    "os",
)
DIMENSIONS: Final = EVENT_DIMENSIONS + SESSION_DIMENSIONS
# Where each dimension's value comes from: the envelope field (footfall.events) of the
# event for event-scoped ones, of the session's first event for session-scoped ones.
# `exit_page` is the `path` of the session's last pageview. An absent value (no url, no
# utm_campaign, a session without pageviews) is the value "" (as `country` already is),
# so every event and session is in exactly one row of every breakdown.
DIMENSION_FIELDS: Final[dict[str, str]] = {
    "page": "path",
    "event": "name",
    "entry_page": "path",
    "exit_page": "path",
    "source": "source",
    "utm_campaign": "utm_campaign",
    "country": "country",
    "device": "device",
    "browser": "browser",
    "os": "os",
}
ABSENT_VALUE: Final = ""

# Combinations of dimensions kept as rows of their own, as if each were one more dimension
# whose value is its members' values joined by COMBINATION_SEP. They answer filters on
# several dimensions at once, and breakdowns filtered by another dimension, exactly
# (docs/reports.md, "Filters"): the one-dimension rows cannot, since no sum or union of them
# gives an intersection. A combination holding an event-scoped dimension is event-scoped,
# its session-scoped members taken from the event's session (its first event, as the
# spec's session attributes are); the others are session-scoped.
COMBINATION_SEP: Final = "\x1f"
# What a member value's own COMBINATION_SEP becomes (a utm_source can be any decoded text),
# so that a row value always splits back into its members.
COMBINATION_SEP_STANDIN: Final = "\ufffd"
COMBINATIONS: Final[dict[str, tuple[str, ...]]] = {
    "source+country+device": ("source", "country", "device"),
    "page+source+country+device": ("page", "source", "country", "device"),
}
EVENT_COMBINATIONS: Final = tuple(
    name for name, members in COMBINATIONS.items() if set(members) & set(EVENT_DIMENSIONS)
)
SESSION_COMBINATIONS: Final = tuple(n for n in COMBINATIONS if n not in EVENT_COMBINATIONS)
# Dimensions a filter may name together (and a breakdown by one of them filter by others).
COMBINABLE_DIMENSIONS: Final = ("page", "source", "country", "device")


def combination_value(values: tuple[str, ...] | list[str]) -> str:
    """The row value of a combination: its members' values, in COMBINATIONS order."""
    joined = COMBINATION_SEP.join(values)
    if joined.count(COMBINATION_SEP) == len(values) - 1:
        return joined
    return COMBINATION_SEP.join(v.replace(COMBINATION_SEP, COMBINATION_SEP_STANDIN) for v in values)


def combination_members(value: str) -> list[str]:
    """The members' values of a combination's row value."""
    return value.split(COMBINATION_SEP)


# What each kind of breakdown reports (spec: "Breakdowns").
EVENT_DIMENSION_METRICS: Final = ("visitors", "pageviews", "events")
SESSION_DIMENSION_METRICS: Final = ("visitors", "sessions", "bounce_rate", "avg_duration")

PAGEVIEW: Final = "pageview"
DEFAULT_SESSION_TIMEOUT_S: Final = 1800
DEFAULT_HLL_LG_K: Final = 14


def minute_of(event_time_ms: int) -> int:
    """Start of the UTC minute holding this instant, epoch ms: the stored grain."""
    return event_time_ms - event_time_ms % MINUTE_MS


def utc_day_of(event_time_ms: int) -> int:
    """Days since the epoch (UTC) of this instant: the unit the batch layer recomputes."""
    return event_time_ms // DAY_MS


def starts_new_session(previous_ms: int, event_time_ms: int, timeout_s: int) -> bool:
    """Whether an event after `previous_ms` (same visitor) opens a new session.

    A gap longer than the timeout ends a session, and so does 00:00 UTC: sessions never
    cross midnight, which keeps every UTC day independent for recomputation.
    """
    if utc_day_of(event_time_ms) != utc_day_of(previous_ms):
        return True
    return event_time_ms - previous_ms > timeout_s * 1000


def counts_in_metrics(bot: bool) -> bool:
    """Bots are archived but counted in no metric."""
    return not bot


def revenue_units(amount: float) -> int:
    """A revenue amount as integer millionths, the unit sums are kept in."""
    return round(amount * REVENUE_SCALE)


def ratio(numerator: float, denominator: float) -> float | None:
    """A ratio metric; null when its denominator is zero (spec: bounce_rate)."""
    return None if denominator == 0 else numerator / denominator


def derived_metrics(counts: Mapping[str, int]) -> dict[str, float | None]:
    """The DERIVED_METRICS of a span's counters (duration_sum in ms; avg_duration in s)."""
    sessions = counts["sessions"]
    return {
        "bounce_rate": ratio(counts["bounces"], sessions),
        "avg_duration": ratio(counts["duration_sum"] / 1000, sessions),
        "views_per_session": ratio(counts["pageviews"], sessions),
    }
