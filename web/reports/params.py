"""Query parameters of the report endpoints: parsed, validated, and named in every error.

Every refusal is a `ParamError` that names the parameter and says what is allowed; the
views turn it into a 400. Nothing here reads data: the values are checked against the
definitions of footfall.metrics and the limits of web.reports.intervals only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, Final, Literal, cast
from zoneinfo import ZoneInfo, available_timezones

from footfall.metrics import (
    DIMENSIONS,
    EVENT_COUNTERS,
    EVENT_DIMENSION_METRICS,
    EVENT_DIMENSIONS,
    METRICS,
    SESSION_COUNTERS,
    SESSION_DIMENSION_METRICS,
)
from web.reports.intervals import (
    INTERVALS,
    MAX_RANGE_DAYS,
    Interval,
    ceil_minute,
    day_start,
    floor_minute,
    local,
    to_ms,
)

DAY_MS: Final = 86_400_000
#: Metrics a filtered series or a breakdown row can have: the dimension's own rows hold
#: visitors and the counters of its kind (footfall.metrics: EVENT_/SESSION_COUNTERS).
EVENT_SCOPED_METRICS: Final = ("visitors", *EVENT_COUNTERS)
SESSION_SCOPED_METRICS: Final = ("visitors", *SESSION_COUNTERS, "bounce_rate", "avg_duration")
DEFAULT_RANGE_DAYS: Final = 7
DEFAULT_LIMIT: Final = 10
MAX_LIMIT: Final = 1000
MAX_BREAKDOWN_DAYS: Final = 366
MAX_FILTER_CONDITIONS: Final = 20
_EARLIEST: Final = datetime(1970, 1, 2).date()
_LATEST: Final = datetime(9998, 12, 31).date()

Op = Literal["==", "!="]


class ParamError(ValueError):
    """A parameter the endpoint cannot take: which one, why, and what it would take."""

    def __init__(
        self,
        param: str,
        message: str,
        allowed: str,
        *,
        code: str = "bad_parameter",
        limit: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message
        self.allowed = allowed
        self.code = code
        self.limit = dict(limit) if limit is not None else None

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.code,
            "param": self.param,
            "message": self.message,
            "allowed": self.allowed,
        }
        if self.limit is not None:
            error["limit"] = self.limit
        return {"error": error}


def is_event_scoped(dimension: str) -> bool:
    return dimension in EVENT_DIMENSIONS


def scoped_metrics(dimension: str) -> tuple[str, ...]:
    """The metrics rows of a dimension hold (a filter on it, or its breakdown)."""
    return EVENT_SCOPED_METRICS if is_event_scoped(dimension) else SESSION_SCOPED_METRICS


# --- filters -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Filter:
    """Conditions on one dimension, all of which a value must meet."""

    dimension: str
    conditions: tuple[tuple[Op, str], ...]

    def matches(self, value: str) -> bool:
        return all((value == wanted) == (op == "==") for op, wanted in self.conditions)

    @property
    def text(self) -> str:
        """The filter as the `filters` parameter would give it."""
        return ";".join(f"{self.dimension}{op}{value}" for op, value in self.conditions)

    def as_json(self) -> dict[str, Any]:
        return {"dimension": self.dimension, "conditions": [list(c) for c in self.conditions]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Filter:
        conditions = tuple((cast(Op, op), str(v)) for op, v in data["conditions"])
        if data["dimension"] not in DIMENSIONS or any(
            op not in ("==", "!=") for op, _ in conditions
        ):
            raise ValueError("not a filter")
        return cls(str(data["dimension"]), conditions)


_FILTER_ALLOWED = (
    "conditions `dimension==value` or `dimension!=value` joined by `;`, any number of them, "
    f"all on one dimension of: {', '.join(DIMENSIONS)} (an absent value is the empty string); "
    "a breakdown takes conditions on its own dimension only"
)
#: Why combinations are refused rather than estimated (docs/reports.md, "Filters").
_ONE_DIMENSION = (
    "the stream and batch layers keep rows per dimension, not per combination of "
    "dimensions, so this cannot be answered exactly"
)


def parse_filters(text: str | None) -> Filter | None:
    if text is None or not text.strip(";"):
        return None
    conditions: list[tuple[Op, str]] = []
    dimensions: list[str] = []
    for part in text.split(";"):
        if not part:
            continue
        eq, ne = part.find("=="), part.find("!=")
        positions = [p for p in (eq, ne) if p >= 0]
        if not positions:
            raise ParamError("filters", f"{part!r} is not a condition", _FILTER_ALLOWED)
        at = min(positions)
        dimension, op, value = part[:at].strip(), cast(Op, part[at : at + 2]), part[at + 2 :]
        if dimension not in DIMENSIONS:
            raise ParamError("filters", f"unknown dimension {dimension!r}", _FILTER_ALLOWED)
        dimensions.append(dimension)
        conditions.append((op, value))
    if len(set(dimensions)) > 1:
        raise ParamError(
            "filters",
            f"conditions on {len(set(dimensions))} dimensions "
            f"({', '.join(sorted(set(dimensions)))}): {_ONE_DIMENSION}",
            _FILTER_ALLOWED,
            code="filter_not_supported",
            limit={"dimensions": 1},
        )
    if len(conditions) > MAX_FILTER_CONDITIONS:
        raise ParamError(
            "filters",
            f"{len(conditions)} conditions",
            f"at most {MAX_FILTER_CONDITIONS} conditions",
            limit={"conditions": MAX_FILTER_CONDITIONS},
        )
    return Filter(dimensions[0], tuple(conditions))


# --- time ------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def known_zones() -> frozenset[str]:
    return frozenset(available_timezones() | {"UTC"})


def parse_tz(text: str | None, default: str) -> ZoneInfo:
    name = text if text is not None else default
    if name not in known_zones():
        raise ParamError(
            "tz", f"unknown time zone {name!r}", "an IANA time zone name such as Asia/Kolkata"
        )
    return ZoneInfo(name)


_TIME_ALLOWED = (
    "an ISO 8601 date (YYYY-MM-DD: midnight in tz) or date-time (with an offset, or in tz "
    "without one), from 1970-01-02 to 9998-12-31"
)


def parse_instant(param: str, text: str, zone: ZoneInfo) -> int:
    """Epoch ms of a date (its first instant in `zone`) or a date-time."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if not _EARLIEST <= day <= _LATEST:
                raise ValueError
            return day_start(day, zone)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ParamError(param, f"{text!r} is not a date or date-time", _TIME_ALLOWED) from None
    if not _EARLIEST <= moment.date() <= _LATEST:
        raise ParamError(param, f"{text!r} is out of range", _TIME_ALLOWED)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return to_ms(moment)


@dataclass(frozen=True, slots=True)
class Range:
    """[start_ms, end_ms) in whole minutes, and the zone buckets and labels use."""

    start_ms: int
    end_ms: int
    zone: ZoneInfo

    @property
    def days(self) -> float:
        return (self.end_ms - self.start_ms) / DAY_MS


def parse_range(query: Mapping[str, str], zone: ZoneInfo, now_ms: int) -> Range:
    """`from` (floored to its minute) and `to` (exclusive, raised to a whole minute).

    Defaults: `to` = the end of today in `zone`, `from` = 7 days before `to`.
    """
    raw_to = query.get("to")
    if raw_to is not None:
        end = parse_instant("to", raw_to, zone)
    else:
        end = day_start(local(now_ms, zone).date() + timedelta(days=1), zone)
    raw_from = query.get("from")
    if raw_from is not None:
        start = parse_instant("from", raw_from, zone)
    else:
        start = day_start(local(end, zone).date() - timedelta(days=DEFAULT_RANGE_DAYS), zone)
    start, end = floor_minute(start), ceil_minute(end)
    if end <= start:
        raise ParamError("to", "is not after from", "an instant after from (to is exclusive)")
    return Range(start, end, zone)


def parse_interval(text: str | None, default: Interval = "day") -> Interval:
    value = text if text is not None else default
    if value not in INTERVALS:
        raise ParamError("interval", f"{value!r} is not an interval", " | ".join(INTERVALS))
    return value


def check_range_for_interval(span: Range, interval: Interval) -> None:
    limit = MAX_RANGE_DAYS[interval]
    if span.end_ms - span.start_ms > limit * DAY_MS:
        raise ParamError(
            "from",
            f"a range of {span.days:.2f} days is too large for interval={interval}: "
            f"at most {limit} days",
            f"a range of at most {limit} days with interval={interval}, or a longer interval",
            code="range_too_large",
            limit={"interval": interval, "max_days": limit},
        )


# --- metrics, dimensions, limits ------------------------------------------------------------
def parse_metrics(
    text: str | None,
    allowed: tuple[str, ...],
    context: str,
    default: tuple[str, ...] | None = None,
) -> tuple[str, ...]:
    """Requested metrics (default: `default`, else all of `allowed`), in order, no repeats."""
    if text is None or not text.strip(","):
        return default if default is not None else allowed
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in allowed:
            known = "unknown metric" if name not in METRICS else f"not available {context}"
            raise ParamError(
                "metrics",
                f"{name!r}: {known}",
                f"a comma-separated list of: {', '.join(allowed)}",
            )
    return tuple(dict.fromkeys(names))


def parse_dimension(text: str | None) -> str:
    if text is None or text not in DIMENSIONS:
        what = "is required" if text is None else f"{text!r} is not a dimension"
        raise ParamError("dimension", what, " | ".join(DIMENSIONS))
    return text


def parse_limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    allowed = f"an integer from 1 to {MAX_LIMIT}"
    try:
        limit = int(text)
    except ValueError:
        raise ParamError("limit", f"{text!r} is not an integer", allowed) from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ParamError("limit", f"{limit} is out of range", allowed)
    return limit


def check_breakdown_range(span: Range) -> None:
    if span.end_ms - span.start_ms > MAX_BREAKDOWN_DAYS * DAY_MS:
        raise ParamError(
            "from",
            f"a range of {span.days:.2f} days is too large for a breakdown: "
            f"at most {MAX_BREAKDOWN_DAYS} days",
            f"a range of at most {MAX_BREAKDOWN_DAYS} days",
            code="range_too_large",
            limit={"max_days": MAX_BREAKDOWN_DAYS},
        )


def check_known(query: Mapping[str, str], known: frozenset[str]) -> None:
    """Unknown parameters are refused, so a typo never silently means a default."""
    for name in query:
        if name not in known:
            raise ParamError(name, "unknown parameter", ", ".join(sorted(known)))


# --- the requests ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SeriesQuery:
    span: Range
    interval: Interval
    metrics: tuple[str, ...]
    filter: Filter | None = None


@dataclass(frozen=True, slots=True)
class BreakdownQuery:
    span: Range
    dimension: str
    metrics: tuple[str, ...]
    limit: int
    filter: Filter | None = None


@dataclass(frozen=True, slots=True)
class RealtimeQuery:
    zone: ZoneInfo


SERIES_PARAMS: Final = frozenset({"from", "to", "interval", "tz", "metrics", "filters"})
BREAKDOWN_PARAMS: Final = frozenset(
    {"dimension", "from", "to", "metrics", "limit", "tz", "filters"}
)
REALTIME_PARAMS: Final = frozenset({"tz"})


def series_query(query: Mapping[str, str], site_tz: str, now_ms: int) -> SeriesQuery:
    check_known(query, SERIES_PARAMS)
    zone = parse_tz(query.get("tz"), site_tz)
    interval = parse_interval(query.get("interval"))
    span = parse_range(query, zone, now_ms)
    check_range_for_interval(span, interval)
    flt = parse_filters(query.get("filters"))
    if flt is None:
        metrics = parse_metrics(query.get("metrics"), METRICS, "")
    else:
        context = f"with a filter on {flt.dimension}"
        metrics = parse_metrics(query.get("metrics"), scoped_metrics(flt.dimension), context)
    return SeriesQuery(span, interval, metrics, flt)


def breakdown_query(query: Mapping[str, str], site_tz: str, now_ms: int) -> BreakdownQuery:
    check_known(query, BREAKDOWN_PARAMS)
    dimension = parse_dimension(query.get("dimension"))
    zone = parse_tz(query.get("tz"), site_tz)
    span = parse_range(query, zone, now_ms)
    check_breakdown_range(span)
    metrics = parse_metrics(
        query.get("metrics"),
        scoped_metrics(dimension),
        f"in a breakdown by {dimension}",
        EVENT_DIMENSION_METRICS if is_event_scoped(dimension) else SESSION_DIMENSION_METRICS,
    )
    limit = parse_limit(query.get("limit"))
    flt = parse_filters(query.get("filters"))
    if flt is not None and flt.dimension != dimension:
        raise ParamError(
            "filters",
            f"a filter on {flt.dimension} in a breakdown by {dimension}: {_ONE_DIMENSION}",
            f"conditions `{dimension}==value` or `{dimension}!=value` joined by `;` (a "
            f"breakdown takes conditions on its own dimension only); for {flt.dimension} "
            f"alone, a timeseries with this filter or a breakdown by {flt.dimension}",
            code="filter_not_supported",
            limit={"dimensions": 1, "dimension": dimension},
        )
    return BreakdownQuery(span, dimension, metrics, limit, flt)


def realtime_query(query: Mapping[str, str], site_tz: str) -> RealtimeQuery:
    check_known(query, REALTIME_PARAMS)
    return RealtimeQuery(parse_tz(query.get("tz"), site_tz))
