"""The UTC days the batch layer recomputes, and how much of each it may take as final.

A day is the unit of recomputation (spec: sessions never cross 00:00 UTC). A day counts as
*closed* once `batch_close_delay_s` have passed since its end: by then the archive holds its
events (the archive agent flushes within `archive_flush_s`). Only a closed day gets its
completion marker. A day still open ("today so far", or yesterday just after midnight) is
recomputed up to a cutoff `batch_close_delay_s` before now: the minutes after the cutoff
stay the stream layer's, in InfluxDB and in the reporting API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from footfall.metrics import DAY_MS, minute_of

_EPOCH = date(1970, 1, 1)


def day_start_ms(day: date) -> int:
    """00:00 UTC of a day, epoch ms."""
    return (day - _EPOCH).days * DAY_MS


def day_of_ms(epoch_ms: int) -> date:
    """The UTC date holding an instant."""
    return _EPOCH + timedelta(days=epoch_ms // DAY_MS)


def parse_day(text: str) -> date:
    """A `YYYY-MM-DD` day (UTC); ValueError otherwise."""
    return date.fromisoformat(text)


def days_between(first: date, last: date) -> list[date]:
    """Every day from `first` to `last`, both included."""
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class DayWindow:
    """What of one UTC day a run recomputes: events with start_ms <= event_time < cutoff_ms."""

    day: date
    start_ms: int
    end_ms: int
    cutoff_ms: int
    closed: bool

    @property
    def empty(self) -> bool:
        """Nothing of the day can be recomputed yet (it has not begun, or began just now)."""
        return self.cutoff_ms <= self.start_ms

    @property
    def label(self) -> str:
        return self.day.isoformat()


def day_window(day: date, now: int, close_delay_s: int) -> DayWindow:
    """The window of `day` for a run starting at `now` (epoch ms); see the module docstring."""
    start = day_start_ms(day)
    end = start + DAY_MS
    settled = now - close_delay_s * 1000
    if settled >= end:
        return DayWindow(day, start, end, end, closed=True)
    return DayWindow(day, start, end, max(start, minute_of(settled)), closed=False)
