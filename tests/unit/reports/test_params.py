"""Query parameters: every refusal names its parameter and says what is allowed."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from web.reports.filters import Filter, grouper, parse_filters
from web.reports.params import (
    ParamError,
    breakdown_query,
    realtime_query,
    series_query,
)

NOW = 1_795_500_000_000  # 2026-11-25 04:40 UTC


def refused(
    fun: object, query: dict[str, str], param: str, code: str = "bad_parameter"
) -> ParamError:
    with pytest.raises(ParamError) as caught:
        fun(query, "UTC", NOW)  # type: ignore[operator]
    assert caught.value.param == param
    assert caught.value.code == code
    assert caught.value.allowed
    return caught.value


def test_defaults_are_the_last_seven_local_days_by_day() -> None:
    q = series_query({}, "Asia/Kolkata", NOW)
    assert q.interval == "day"
    assert q.span.zone == ZoneInfo("Asia/Kolkata")
    assert q.span.end_ms - q.span.start_ms == 7 * 86_400_000
    assert (q.span.end_ms + 5.5 * 3_600_000) % 86_400_000 == 0  # local midnight
    assert "visitors" in q.metrics
    assert "revenue" in q.metrics


def test_dates_are_local_midnights_and_datetimes_keep_their_offset() -> None:
    q = series_query({"from": "2026-11-01", "to": "2026-11-02T06:00:00+00:00"}, "Asia/Kolkata", NOW)
    assert q.span.start_ms == 1_793_471_400_000  # 2026-10-31T18:30Z
    assert q.span.end_ms == 1_793_599_200_000  # 2026-11-02T06:00Z
    naive = series_query(
        {"from": "2026-11-01T10:00", "to": "2026-11-01T11:00"}, "Asia/Kolkata", NOW
    )
    assert naive.span.start_ms == 1_793_471_400_000 + 10 * 3_600_000


def test_minutes_are_whole() -> None:
    q = series_query(
        {"from": "2026-11-01T10:00:30Z", "to": "2026-11-01T10:05:01Z", "interval": "minute"},
        "UTC",
        NOW,
    )
    assert q.span.start_ms % 60_000 == 0
    assert q.span.end_ms % 60_000 == 0
    assert (q.span.end_ms - q.span.start_ms) // 60_000 == 6


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"from": "yesterday"}, "from"),
        ({"from": "1969-12-31"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"to": "10000-01-01"}, "to"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "to"),
        ({"from": "2026-11-01", "to": "2026-11-01"}, "to"),
        ({"interval": "fortnight"}, "interval"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"tz": "../../etc/passwd"}, "tz"),
        ({"metrics": "visitors,hits"}, "metrics"),
        ({"filters": "page"}, "filters"),
        ({"filters": "planet==mars"}, "filters"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_series_refusals_name_the_parameter(query: dict[str, str], param: str) -> None:
    refused(series_query, query, param)


def test_range_too_large_names_the_limit() -> None:
    error = refused(
        series_query,
        {"from": "2026-11-01", "to": "2026-11-04", "interval": "minute"},
        "from",
        "range_too_large",
    )
    assert error.limit == {"interval": "minute", "max_days": 2}
    assert "at most 2 days" in error.message
    refused(
        series_query,
        {"from": "2026-01-01", "to": "2026-06-01", "interval": "hour"},
        "from",
        "range_too_large",
    )
    refused(
        series_query,
        {"from": "2000-01-01", "to": "2026-06-01", "interval": "day"},
        "from",
        "range_too_large",
    )
    series_query({"from": "2010-01-01", "to": "2026-06-01", "interval": "month"}, "UTC", NOW)


@pytest.mark.parametrize(
    ("filters", "rows"),
    [
        ("country==IN", "country"),
        ("country==IN;country!=US", "country"),
        ("browser==Firefox", "browser"),
        ("country==IN;device==mobile", "source+country+device"),
        ("source!=direct;device==mobile;country!=US", "source+country+device"),
        ("page==/;country==IN", "page+source+country+device"),
        ("device==mobile;page!=/cart;page!=/", "page+source+country+device"),
    ],
)
def test_filters_are_answered_by_the_smallest_rows_holding_them(filters: str, rows: str) -> None:
    assert series_query({"filters": filters}, "UTC", NOW).rows == rows


@pytest.mark.parametrize(
    "filters",
    [
        "page==/;browser==Firefox",
        "country==IN;os==iOS",
        "event==signup;page==/",
        "page==/;event==x",
    ],
)
def test_filters_on_dimensions_that_do_not_combine_are_refused(filters: str) -> None:
    error = refused(series_query, {"filters": filters}, "filters", "filter_not_supported")
    assert error.limit == {"dimensions": 1, "combinable": ["page", "source", "country", "device"]}
    assert "cannot be answered exactly" in error.message
    assert "page, source, country, device" in error.allowed


@pytest.mark.parametrize(
    ("dimension", "filters", "rows", "metrics"),
    [
        ("page", "page!=/", "page", ("visitors", "pageviews", "events")),
        ("page", "country==IN", "page+source+country+device", ("visitors", "pageviews", "events")),
        ("country", "page==/", "page+source+country+device", ("visitors", "pageviews", "events")),
        (
            "device",
            "country==IN;source!=direct",
            "source+country+device",
            ("visitors", "sessions", "bounce_rate", "avg_duration"),
        ),
        (
            "device",
            "device!=mobile;country==IN",
            "source+country+device",
            ("visitors", "sessions", "bounce_rate", "avg_duration"),
        ),
    ],
)
def test_breakdowns_filtered_by_other_dimensions(
    dimension: str, filters: str, rows: str, metrics: tuple[str, ...]
) -> None:
    q = breakdown_query({"dimension": dimension, "filters": filters}, "UTC", NOW)
    assert (q.rows, q.metrics) == (rows, metrics)


def test_breakdown_by_an_event_combination_offers_event_metrics_only() -> None:
    query = {"dimension": "country", "filters": "page==/", "metrics": "sessions"}
    error = refused(breakdown_query, query, "metrics")
    assert "in a breakdown by country with a filter on page" in error.message
    q = breakdown_query({**query, "metrics": "transactions,visitors"}, "UTC", NOW)
    assert q.metrics == ("transactions", "visitors")


@pytest.mark.parametrize(
    ("dimension", "filters"),
    [("browser", "country==IN"), ("page", "browser==Firefox"), ("event", "page==/")],
)
def test_breakdowns_by_or_filtered_by_dimensions_that_do_not_combine_are_refused(
    dimension: str, filters: str
) -> None:
    query = {"dimension": dimension, "filters": filters}
    error = refused(breakdown_query, query, "filters", "filter_not_supported")
    assert error.limit is not None
    assert error.limit["dimension"] == dimension
    assert error.limit["dimensions"] == 1


def test_combination_rows_match_and_group_by_member() -> None:
    flt = parse_filters("country==IN;device!=mobile;page!=/")
    assert flt is not None
    assert flt.dimensions == ("country", "device", "page")
    matches = flt.matcher("page+source+country+device")
    assert matches("/a\x1fgoogle\x1fIN\x1fdesktop")
    assert not matches("/\x1fgoogle\x1fIN\x1fdesktop")
    assert not matches("/a\x1fgoogle\x1fIN\x1fmobile")
    assert not matches("/a\x1fgoogle\x1fUS\x1fdesktop")
    assert not matches("/a\x1fgoogle\x1fIN")  # not a row of these members
    group = grouper("page+source+country+device", "country")
    assert group("/a\x1fgoogle\x1fIN\x1fdesktop") == "IN"
    assert grouper("country", "country")("IN") == "IN"
    # A value holding the separator is stored with its stand-in (combination_value).
    odd = parse_filters("source==a\x1fb;country==")
    assert odd is not None
    assert odd.matcher("source+country+device")("a\ufffdb\x1f\x1fmobile")


def test_filtered_series_offers_the_dimensions_metrics_only() -> None:
    q = series_query({"filters": "country==IN"}, "UTC", NOW)
    assert q.metrics == (
        "visitors",
        "sessions",
        "bounces",
        "duration_sum",
        "bounce_rate",
        "avg_duration",
    )
    q = series_query({"filters": "page!=/"}, "UTC", NOW)
    assert q.metrics == ("visitors", "events", "pageviews", "transactions")
    error = refused(series_query, {"filters": "page==/", "metrics": "sessions"}, "metrics")
    assert "not available with a filter on page" in error.message


def test_filter_syntax() -> None:
    assert parse_filters(None) is None
    assert parse_filters(";") is None
    flt = parse_filters("page==/a=b;page!=/c;")
    assert flt == Filter((("page", "==", "/a=b"), ("page", "!=", "/c")))
    matches = flt.matcher("page")
    assert matches("/a=b")
    assert not matches("/c")
    assert not matches("/d")
    assert flt.text == "page==/a=b;page!=/c"
    absent = parse_filters("utm_campaign==")
    assert absent is not None
    assert absent.matcher("utm_campaign")("")
    assert not absent.matcher("utm_campaign")("spring")
    assert Filter.from_json(flt.as_json()) == flt
    both = parse_filters("country==IN;device!=mobile")
    assert both is not None
    assert Filter.from_json(both.as_json()) == both
    # What a worker of the one-dimension version sends.
    old = {"dimension": "page", "conditions": [["==", "/a=b"], ["!=", "/c"]]}
    assert Filter.from_json(old) == flt
    with pytest.raises(ValueError, match="not a filter"):
        Filter.from_json({"conditions": [["page", "<>", "x"]]})
    with pytest.raises(ValueError, match="not a filter"):
        Filter.from_json({"conditions": [["source+country+device", "==", "x"]]})


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({}, "dimension"),
        ({"dimension": "planet"}, "dimension"),
        ({"dimension": "page", "limit": "0"}, "limit"),
        ({"dimension": "page", "limit": "1001"}, "limit"),
        ({"dimension": "page", "limit": "ten"}, "limit"),
        ({"dimension": "page", "metrics": "sessions"}, "metrics"),
        ({"dimension": "country", "metrics": "pageviews"}, "metrics"),
        ({"dimension": "page", "filters": "browser==Firefox"}, "filters"),
        ({"dimension": "source+country+device"}, "dimension"),
        ({"dimension": "page", "tz": "Nowhere"}, "tz"),
        ({"dimension": "page", "from": "2020-01-01", "to": "2026-01-01"}, "from"),
        ({"dimension": "page", "interval": "day"}, "interval"),
    ],
)
def test_breakdown_refusals_name_the_parameter(query: dict[str, str], param: str) -> None:
    with pytest.raises(ParamError) as caught:
        breakdown_query(query, "UTC", NOW)
    assert caught.value.param == param


def test_breakdown_defaults_follow_the_spec() -> None:
    assert breakdown_query({"dimension": "page"}, "UTC", NOW).metrics == (
        "visitors",
        "pageviews",
        "events",
    )
    q = breakdown_query({"dimension": "source"}, "UTC", NOW)
    assert q.metrics == ("visitors", "sessions", "bounce_rate", "avg_duration")
    assert q.limit == 10


def test_realtime_takes_tz_only() -> None:
    assert realtime_query({}, "Asia/Kolkata").zone == ZoneInfo("Asia/Kolkata")
    with pytest.raises(ParamError) as caught:
        realtime_query({"from": "2026-01-01"}, "UTC")
    assert caught.value.param == "from"
    with pytest.raises(ParamError):
        realtime_query({"tz": "x"}, "UTC")
