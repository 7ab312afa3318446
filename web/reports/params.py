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
from typing import Any, Final
from zoneinfo import ZoneInfo, available_timezones

from footfall.metrics import (
    DIMENSIONS,
    EVENT_COUNTERS,
    EVENT_DIMENSION_METRICS,
    METRICS,
    SESSION_COUNTERS,
    SESSION_DIMENSION_METRICS,
)
from web.reports.filters import Filter, FilterError, is_event_scoped, parse_filters, rows_for
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
_EARLIEST: Final = datetime(1970, 1, 2).date()
_LATEST: Final = datetime(9998, 12, 31).date()


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


def scoped_metrics(rows: str) -> tuple[str, ...]:
    """The metrics rows of a dimension or combination hold (a filter on it, its breakdown)."""
    return EVENT_SCOPED_METRICS if is_event_scoped(rows) else SESSION_SCOPED_METRICS


def _filter_error(exc: FilterError) -> ParamError:
    return ParamError("filters", exc.message, exc.allowed, code=exc.code, limit=exc.limit)


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
    #: The stored rows a filtered series adds up (web.reports.filters.rows_for).
    rows: str = ""


@dataclass(frozen=True, slots=True)
class BreakdownQuery:
    span: Range
    dimension: str
    metrics: tuple[str, ...]
    limit: int
    filter: Filter | None = None
    #: The stored rows grouped by `dimension`: its own, or a combination holding it.
    rows: str = ""


@dataclass(frozen=True, slots=True)
class RealtimeQuery:
    zone: ZoneInfo


SERIES_PARAMS: Final = frozenset({"from", "to", "interval", "tz", "metrics", "filters"})
BREAKDOWN_PARAMS: Final = frozenset(
    {"dimension", "from", "to", "metrics", "limit", "tz", "filters"}
)
REALTIME_PARAMS: Final = frozenset({"tz"})


def _filter_rows(text: str | None, breakdown: str | None = None) -> tuple[Filter | None, str]:
    """The filter and the rows that answer it (with a breakdown by `breakdown`)."""
    try:
        flt = parse_filters(text)
        dimensions = flt.dimensions if flt is not None else ()
        if breakdown is None and not dimensions:
            return None, ""
        return flt, rows_for(dimensions, breakdown)
    except FilterError as exc:
        raise _filter_error(exc) from None


def series_query(query: Mapping[str, str], site_tz: str, now_ms: int) -> SeriesQuery:
    check_known(query, SERIES_PARAMS)
    zone = parse_tz(query.get("tz"), site_tz)
    interval = parse_interval(query.get("interval"))
    span = parse_range(query, zone, now_ms)
    check_range_for_interval(span, interval)
    flt, rows = _filter_rows(query.get("filters"))
    if flt is None:
        metrics = parse_metrics(query.get("metrics"), METRICS, "")
    else:
        context = f"with a filter on {', '.join(flt.dimensions)}"
        metrics = parse_metrics(query.get("metrics"), scoped_metrics(rows), context)
    return SeriesQuery(span, interval, metrics, flt, rows)


def breakdown_query(query: Mapping[str, str], site_tz: str, now_ms: int) -> BreakdownQuery:
    check_known(query, BREAKDOWN_PARAMS)
    dimension = parse_dimension(query.get("dimension"))
    zone = parse_tz(query.get("tz"), site_tz)
    span = parse_range(query, zone, now_ms)
    check_breakdown_range(span)
    # The filter first: with page in it, a breakdown by a session dimension is event-scoped.
    flt, rows = _filter_rows(query.get("filters"), dimension)
    context = f"in a breakdown by {dimension}"
    if flt is not None and rows != dimension:
        context += f" with a filter on {', '.join(flt.dimensions)}"
    metrics = parse_metrics(
        query.get("metrics"),
        scoped_metrics(rows),
        context,
        EVENT_DIMENSION_METRICS if is_event_scoped(rows) else SESSION_DIMENSION_METRICS,
    )
    limit = parse_limit(query.get("limit"))
    return BreakdownQuery(span, dimension, metrics, limit, flt, rows)


def realtime_query(query: Mapping[str, str], site_tz: str) -> RealtimeQuery:
    check_known(query, REALTIME_PARAMS)
    return RealtimeQuery(parse_tz(query.get("tz"), site_tz))
