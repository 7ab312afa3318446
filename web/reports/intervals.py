"""Report buckets: minute, hour, day, week and month intervals in any IANA time zone.

The stored grain is the UTC minute (footfall.metrics); a report's buckets are runs of
minutes that start where the interval starts in the report's zone:

- `minute`: every UTC minute (every zone in use today is offset by whole minutes);
- `hour`: every instant at which the zone's clock shows HH:00, so Asia/Kolkata hours
  start at :30 UTC and a DST change makes no two-hour or zero-hour bucket;
- `day`, `week` (ISO, from Monday) and `month`: the first instant of that local date,
  which is local midnight (18:30 UTC the day before, in Asia/Kolkata) or, where a DST
  change skips midnight, the instant the clock jumps.

A range [from, to) is cut at the bucket starts inside it: the first and last buckets
hold only their part inside the range, and each bucket is labelled with its start in
the zone (ISO 8601 with the zone's offset at that instant).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Final, Literal, get_args
from zoneinfo import ZoneInfo

from footfall.metrics import MINUTE_MS

Interval = Literal["minute", "hour", "day", "week", "month"]
INTERVALS: Final[tuple[Interval, ...]] = get_args(Interval)

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 86_400_000
_QUARTER_MS: Final = 15 * MINUTE_MS
#: The longest range each interval answers, in days, and the bucket count that makes:
#: enough for a screen of points, small enough to compute on a request.
MAX_RANGE_DAYS: Final[dict[Interval, int]] = {
    "minute": 2,
    "hour": 92,
    "day": 1100,
    "week": 3660,
    "month": 7320,
}


@dataclass(frozen=True, slots=True)
class Buckets:
    """A range cut into buckets: `bounds` has one more entry than `starts`.

    Bucket i holds the minutes in [bounds[i], bounds[i + 1]) and is labelled `starts[i]`
    (the interval's start, which for the first bucket may lie before the range's `from`).
    """

    starts: tuple[int, ...]
    bounds: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.starts)


def floor_minute(ms: int) -> int:
    return ms - ms % MINUTE_MS


def ceil_minute(ms: int) -> int:
    return -((-ms) // MINUTE_MS) * MINUTE_MS


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return round(moment.timestamp() * 1000)


def local(ms: int, zone: ZoneInfo) -> datetime:
    """The instant `ms` on the zone's clock."""
    return datetime.fromtimestamp(ms / 1000, tz=zone)


def day_start(day: date, zone: ZoneInfo) -> int:
    """The first instant of a local date: midnight, or the end of a DST gap holding it.

    zoneinfo maps a wall time inside a gap with fold=0 using the offset before the gap,
    which lands on the instant the clock jumps: the first instant the date has.
    """
    return to_ms(datetime.combine(day, time(0), tzinfo=zone))


def iso(ms: int, zone: ZoneInfo) -> str:
    """An instant as ISO 8601 with the zone's offset at that instant (seconds dropped)."""
    return local(ms, zone).isoformat(timespec="minutes")


def _is_hour_start(ms: int, zone: ZoneInfo) -> bool:
    moment = local(ms, zone)
    return moment.minute == 0 and moment.second == 0


def _hour_floor(ms: int, zone: ZoneInfo) -> int:
    # Offsets of zones in use are whole quarter hours, so an hour start is on a quarter.
    t = ms - ms % _QUARTER_MS
    while not _is_hour_start(t, zone):
        t -= _QUARTER_MS
    return t


def _next_hour(ms: int, zone: ZoneInfo) -> int:
    candidate = ms + HOUR_MS
    if zone.utcoffset(local(candidate, zone)) == zone.utcoffset(local(ms, zone)):
        return candidate
    t = ms + _QUARTER_MS  # an offset change inside the hour: find the next HH:00
    while not _is_hour_start(t, zone):
        t += _QUARTER_MS
    return t


def _first_day(d: date, interval: Interval) -> date:
    if interval == "week":
        return d - timedelta(days=d.weekday())
    if interval == "month":
        return d.replace(day=1)
    return d


def _next_day(d: date, interval: Interval) -> date:
    if interval == "day":
        return d + timedelta(days=1)
    if interval == "week":
        return d + timedelta(days=7)
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def floor_to_interval(ms: int, interval: Interval, zone: ZoneInfo) -> int:
    """The start of the bucket holding the instant `ms`."""
    if interval == "minute":
        return floor_minute(ms)
    if interval == "hour":
        return _hour_floor(ms, zone)
    first = _first_day(local(ms, zone).date(), interval)
    start = day_start(first, zone)
    return start if start <= ms else day_start(first - timedelta(days=1), zone)


def bucket_range(start_ms: int, end_ms: int, interval: Interval, zone: ZoneInfo) -> Buckets:
    """The buckets of [start_ms, end_ms) (whole minutes; end > start); see the module doc."""
    return _bucket_range(start_ms, end_ms, interval, zone.key)


@lru_cache(maxsize=512)
def _bucket_range(start_ms: int, end_ms: int, interval: Interval, zone_key: str) -> Buckets:
    zone = ZoneInfo(zone_key)
    first = floor_to_interval(start_ms, interval, zone)
    starts = [first]
    if interval == "minute":
        starts.extend(range(first + MINUTE_MS, end_ms, MINUTE_MS))
    elif interval == "hour":
        t = _next_hour(first, zone)
        while t < end_ms:
            starts.append(t)
            t = _next_hour(t, zone)
    else:
        d = _first_day(local(first, zone).date(), interval)
        if day_start(d, zone) != first:  # `first` was the previous date's start
            d = local(first, zone).date()
        while True:
            d = _next_day(d, interval)
            t = day_start(d, zone)
            if t >= end_ms:
                break
            if t > starts[-1]:
                starts.append(t)
    bounds = (start_ms, *starts[1:], end_ms)
    return Buckets(tuple(starts), bounds)


def now_ms() -> int:
    return to_ms(datetime.now(UTC))
