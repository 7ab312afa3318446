"""Buckets in IANA zones: whole-minute offsets, DST changes, ISO weeks, months."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from web.reports.intervals import MAX_RANGE_DAYS, bucket_range, floor_to_interval, iso, to_ms

KOLKATA = ZoneInfo("Asia/Kolkata")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
KATHMANDU = ZoneInfo("Asia/Kathmandu")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
HOUR = 3_600_000


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return to_ms(datetime(year, month, day, hour, minute, tzinfo=UTC))


def labels(start: int, end: int, interval: str, zone: ZoneInfo) -> list[str]:
    return [iso(t, zone) for t in bucket_range(start, end, interval, zone).starts]  # type: ignore[arg-type]


def test_kolkata_days_start_at_local_midnight() -> None:
    start = to_ms(datetime(2026, 11, 1, tzinfo=KOLKATA))
    end = to_ms(datetime(2026, 11, 4, tzinfo=KOLKATA))
    buckets = bucket_range(start, end, "day", KOLKATA)
    assert buckets.starts == (
        utc(2026, 10, 31, 18, 30),
        utc(2026, 11, 1, 18, 30),
        utc(2026, 11, 2, 18, 30),
    )
    assert labels(start, end, "day", KOLKATA) == [
        "2026-11-01T00:00+05:30",
        "2026-11-02T00:00+05:30",
        "2026-11-03T00:00+05:30",
    ]
    assert buckets.bounds == (*buckets.starts, end)


def test_kolkata_hours_start_at_half_past_utc() -> None:
    buckets = bucket_range(utc(2026, 11, 1, 0, 0), utc(2026, 11, 1, 3, 0), "hour", KOLKATA)
    assert buckets.starts == (
        utc(2026, 10, 31, 23, 30),
        utc(2026, 11, 1, 0, 30),
        utc(2026, 11, 1, 1, 30),
        utc(2026, 11, 1, 2, 30),
    )
    # the first bucket is labelled with its start but holds only the range's part
    assert buckets.bounds[0] == utc(2026, 11, 1, 0, 0)
    assert buckets.bounds[-1] == utc(2026, 11, 1, 3, 0)


def test_kathmandu_quarter_hour_offset() -> None:
    start = to_ms(datetime(2026, 5, 1, tzinfo=KATHMANDU))
    buckets = bucket_range(start, start + 3 * HOUR, "hour", KATHMANDU)
    assert [iso(t, KATHMANDU) for t in buckets.starts] == [
        "2026-05-01T00:00+05:45",
        "2026-05-01T01:00+05:45",
        "2026-05-01T02:00+05:45",
    ]


def test_spring_forward_day_has_23_hours_and_no_empty_bucket() -> None:
    day = to_ms(datetime(2026, 3, 8, tzinfo=NEW_YORK))
    next_day = to_ms(datetime(2026, 3, 9, tzinfo=NEW_YORK))
    assert next_day - day == 23 * HOUR
    hours = bucket_range(day, next_day, "hour", NEW_YORK)
    assert len(hours) == 23
    assert all(b - a == HOUR for a, b in zip(hours.bounds, hours.bounds[1:], strict=False))
    assert "2026-03-08T02:00-05:00" not in [iso(t, NEW_YORK) for t in hours.starts]
    days = bucket_range(day, next_day + 86_400_000, "day", NEW_YORK)
    assert [iso(t, NEW_YORK) for t in days.starts] == [
        "2026-03-08T00:00-05:00",
        "2026-03-09T00:00-04:00",
    ]


def test_fall_back_day_has_25_hours_both_one_oclocks() -> None:
    day = to_ms(datetime(2026, 11, 1, tzinfo=NEW_YORK))
    next_day = to_ms(datetime(2026, 11, 2, tzinfo=NEW_YORK))
    hours = bucket_range(day, next_day, "hour", NEW_YORK)
    assert len(hours) == 25
    shown = [iso(t, NEW_YORK) for t in hours.starts]
    assert "2026-11-01T01:00-04:00" in shown
    assert "2026-11-01T01:00-05:00" in shown


def test_half_hour_dst_zone_keeps_local_hours() -> None:
    # Lord Howe moves its clocks by 30 minutes: every bucket still starts at HH:00 local.
    start = to_ms(datetime(2026, 4, 4, 22, tzinfo=LORD_HOWE))
    hours = bucket_range(start, start + 6 * HOUR, "hour", LORD_HOWE)
    for t in hours.starts:
        local = datetime.fromtimestamp(t / 1000, LORD_HOWE)
        assert (local.minute, local.second) == (0, 0)


def test_weeks_start_on_monday_and_months_on_the_first() -> None:
    start = to_ms(datetime(2026, 11, 12, 15, tzinfo=BERLIN))  # a Thursday
    end = to_ms(datetime(2026, 12, 2, tzinfo=BERLIN))
    assert labels(start, end, "week", BERLIN) == [
        "2026-11-09T00:00+01:00",
        "2026-11-16T00:00+01:00",
        "2026-11-23T00:00+01:00",
        "2026-11-30T00:00+01:00",
    ]
    months = labels(
        to_ms(datetime(2026, 1, 31, tzinfo=BERLIN)),
        to_ms(datetime(2027, 1, 2, tzinfo=BERLIN)),
        "month",
        BERLIN,
    )
    assert months[0] == "2026-01-01T00:00+01:00"
    assert months[3] == "2026-04-01T00:00+02:00"  # summer time
    assert months[-1] == "2027-01-01T00:00+01:00"
    assert len(months) == 13


def test_minutes_are_utc_minutes() -> None:
    start = utc(2026, 11, 1, 10, 0)
    buckets = bucket_range(start, start + 5 * 60_000, "minute", KOLKATA)
    assert buckets.starts == tuple(start + i * 60_000 for i in range(5))


@pytest.mark.parametrize("interval", ["hour", "day", "week", "month"])
def test_floor_is_at_or_before_the_instant(interval: str) -> None:
    for zone in (KOLKATA, NEW_YORK, LORD_HOWE):
        t = utc(2026, 3, 8, 7, 13)
        floor = floor_to_interval(t, interval, zone)  # type: ignore[arg-type]
        assert floor <= t
        assert bucket_range(t, t + 60_000, interval, zone).starts == (floor,)  # type: ignore[arg-type]


def test_limits_are_days_per_interval() -> None:
    assert MAX_RANGE_DAYS["minute"] == 2
    assert list(MAX_RANGE_DAYS) == ["minute", "hour", "day", "week", "month"]
