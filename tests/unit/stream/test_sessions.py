"""Sessions through the counting agent: gaps, midnight, bounces, durations, entry and exit."""

from __future__ import annotations

from tests.reference import compare, envelope, merge_buckets, reference
from tests.unit.stream.conftest import Harness

MIN = 60_000
DAY = 86_400_000
MIDNIGHT = 1_764_000_000_000 // DAY * DAY
T0 = MIDNIGHT + 10 * 3_600_000  # 10:00 UTC


async def test_a_gap_over_the_timeout_starts_a_new_session(harness: Harness) -> None:
    events = [
        envelope("shop", "v1", T0, path="/a"),
        envelope("shop", "v1", T0 + 10 * MIN, path="/b"),
        envelope("shop", "v1", T0 + 40 * MIN + 1, path="/c"),  # 30 min + 1 ms later: new
        envelope("shop", "v1", T0 + 70 * MIN + 1, path="/d"),  # exactly 30 min: same session
    ]
    await harness.feed(events)
    merged = merge_buckets(harness.buckets())
    assert merged[("shop", T0)].counts["sessions"] == 1
    assert merged[("shop", T0)].counts["duration_sum"] == 10 * MIN
    assert merged[("shop", T0 + 40 * MIN)].counts["sessions"] == 1
    assert merged[("shop", T0 + 40 * MIN)].counts["bounces"] == 0
    assert merged[("shop", T0 + 40 * MIN)].counts["duration_sum"] == 30 * MIN
    assert compare(merged, reference(events)) == []


async def test_midnight_utc_ends_a_session(harness: Harness) -> None:
    events = [
        envelope("shop", "v1", MIDNIGHT - 5 * MIN, path="/a"),
        envelope("shop", "v1", MIDNIGHT - 1, path="/b"),
        envelope("shop", "v1", MIDNIGHT, path="/c"),  # 1 ms later, but a new day
        envelope("shop", "v1", MIDNIGHT + 2 * MIN, path="/d"),
    ]
    await harness.feed(events)
    merged = merge_buckets(harness.buckets())
    before, after = merged[("shop", MIDNIGHT - 5 * MIN)], merged[("shop", MIDNIGHT)]
    assert (before.counts["sessions"], before.counts["duration_sum"]) == (1, 5 * MIN - 1)
    assert (after.counts["sessions"], after.counts["duration_sum"]) == (1, 2 * MIN)
    assert compare(merged, reference(events)) == []


async def test_a_second_event_undoes_the_bounce_of_an_open_session(harness: Harness) -> None:
    await harness.feed([envelope("shop", "v1", T0, path="/a")])
    bucket = merge_buckets(harness.buckets())[("shop", T0)]
    assert (bucket.counts["sessions"], bucket.counts["bounces"]) == (1, 1)
    assert bucket.rows[("entry_page", "/a")][0]["bounces"] == 1

    await harness.feed([envelope("shop", "v1", T0 + 3 * MIN, name="signup", path=None)])
    bucket = merge_buckets(harness.buckets())[("shop", T0)]
    assert (bucket.counts["sessions"], bucket.counts["bounces"]) == (1, 0)
    assert bucket.counts["duration_sum"] == 3 * MIN
    assert bucket.rows[("entry_page", "/a")][0]["bounces"] == 0
    assert bucket.rows[("source", "direct")][0]["duration_sum"] == 3 * MIN


async def test_entry_and_exit_pages_and_attributes_of_the_first_event(harness: Harness) -> None:
    events = [
        envelope("shop", "v1", T0, path="/landing", source="google.com", country="DE"),
        envelope("shop", "v1", T0 + MIN, path="/pricing", source="twitter.com", country="US"),
        envelope("shop", "v1", T0 + 2 * MIN, name="purchase", path="/checkout"),
        envelope("shop", "v1", T0 + 3 * MIN, name="signup", path=None),
    ]
    await harness.feed(events)
    rows = merge_buckets(harness.buckets())[("shop", T0)].rows
    assert rows[("entry_page", "/landing")][0]["sessions"] == 1
    # The exit page is the last *pageview*'s path; it moved off /landing as the session grew.
    assert rows[("exit_page", "/pricing")][0]["sessions"] == 1
    # (No row at all when the session's events came in one batch: moved once, at its end.)
    left = rows.get(("exit_page", "/landing"))
    assert left is None or left[0]["sessions"] == 0
    assert rows[("source", "google.com")][0]["sessions"] == 1
    assert ("source", "twitter.com") not in rows
    assert rows[("country", "DE")][0]["duration_sum"] == 3 * MIN
    merged = merge_buckets(harness.buckets())
    assert merged[("shop", T0 + 2 * MIN)].rows[("page", "/checkout")][0]["events"] == 1
    # Event-scoped rows are in the event's minute; no url is the absent value "".
    assert merged[("shop", T0 + 3 * MIN)].rows[("page", "")][0]["events"] == 1
    assert merged[("shop", T0 + 3 * MIN)].rows[("event", "signup")][0]["events"] == 1
    assert compare(merge_buckets(harness.buckets()), reference(events)) == []


async def test_a_session_without_pageviews_has_the_absent_exit_page(harness: Harness) -> None:
    events = [envelope("shop", "v1", T0, name="signup", path=None)]
    await harness.feed(events)
    rows = merge_buckets(harness.buckets())[("shop", T0)].rows
    assert rows[("exit_page", "")][0]["sessions"] == 1
    assert rows[("entry_page", "")][0]["sessions"] == 1
    assert compare(merge_buckets(harness.buckets()), reference(events)) == []


async def test_retried_sends_count_once(harness: Harness) -> None:
    first = envelope("shop", "v1", T0, path="/a", event_id="same")
    retry = {**first, "received_at": first["received_at"] + 2000}
    other = envelope("shop", "v1", T0 + MIN, path="/b")
    await harness.feed([first, retry, other, retry])
    merged = merge_buckets(harness.buckets())
    assert merged[("shop", T0)].counts["events"] == 1
    assert merged[("shop", T0)].counts["bounces"] == 0
    assert compare(merged, reference([first, retry, other, retry])) == []


async def test_the_dedupe_window_is_kept_per_visitor_and_bounded(harness: Harness) -> None:
    events = [envelope("shop", "v1", T0 + i * 1000, path="/a") for i in range(5)]
    await harness.feed(events)
    session = harness.session("shop", "v1")
    assert session is not None
    assert list(session.ids) == [e["id"] for e in events]
    # 25 h later the first ids are out of the window.
    late = envelope("shop", "v1", T0 + 25 * 3_600_000, path="/a")
    await harness.feed([late])
    session = harness.session("shop", "v1")
    assert session is not None
    assert list(session.ids) == [late["id"]]


async def test_bots_count_in_no_metric(harness: Harness) -> None:
    events = [
        envelope("shop", "crawler", T0, path="/a", bot=True, device="bot"),
        envelope("shop", "crawler", T0 + MIN, path="/b", bot=True, device="bot"),
        envelope("shop", "v1", T0, path="/a"),
    ]
    await harness.feed(events)
    merged = merge_buckets(harness.buckets())
    assert merged[("shop", T0)].counts["events"] == 1
    assert merged[("shop", T0)].visitors == 1
    assert ("shop", T0 + MIN) not in merged
    assert harness.session("shop", "crawler") is None
    assert compare(merged, reference(events)) == []


async def test_a_late_event_inside_the_session_joins_it(harness: Harness) -> None:
    a = envelope("shop", "v1", T0, path="/a")
    c = envelope("shop", "v1", T0 + 10 * MIN, path="/c")
    b = envelope("shop", "v1", T0 + 5 * MIN, path="/b")  # arrives after c
    await harness.feed([a, c, b])
    merged = merge_buckets(harness.buckets())
    start = merged[("shop", T0)]
    assert (start.counts["sessions"], start.counts["duration_sum"]) == (1, 10 * MIN)
    assert start.rows[("exit_page", "/c")][0]["sessions"] == 1  # /b is not the last pageview
    assert merged[("shop", T0 + 5 * MIN)].counts["events"] == 1
    assert compare(merged, reference([a, c, b])) == []


async def test_an_event_before_its_session_counts_as_an_event_only(harness: Harness) -> None:
    a = envelope("shop", "v1", T0, path="/a")
    early = envelope("shop", "v1", T0 - 5 * MIN, path="/early")
    await harness.feed([a, early])
    merged = merge_buckets(harness.buckets())
    assert merged[("shop", T0)].counts["sessions"] == 1
    assert merged[("shop", T0 - 5 * MIN)].counts["events"] == 1
    assert merged[("shop", T0 - 5 * MIN)].counts["sessions"] == 0
    assert merged[("shop", T0 - 5 * MIN)].visitors == 1
