"""Minute buckets through the counting agent: sampling, revenue, breakdowns, replays."""

from __future__ import annotations

from collections import Counter

import orjson

from agents import count
from footfall.events import kafka_key
from footfall.visitors import SketchConfig
from tables.buckets import Bucket
from tests.reference import compare, envelope, merge_buckets, reference
from tests.unit.stream.conftest import Harness
from tests.workload import workload

MIN = 60_000
T0 = 1_764_000_000_000 // 86_400_000 * 86_400_000 + 10 * 3_600_000


async def test_sampled_events_and_sessions_count_n_times(harness: Harness) -> None:
    events = [
        envelope("shop", "s1", T0, path="/a", rate=4),
        envelope("shop", "s1", T0 + MIN, path="/b", rate=4),
        envelope("shop", "u1", T0, path="/a"),
    ]
    await harness.feed(events)
    merged = merge_buckets(harness.buckets())
    first = merged[("shop", T0)]
    assert first.counts["events"] == 5
    assert first.counts["sessions"] == 5
    assert first.counts["bounces"] == 1  # only u1's session is still a bounce
    assert first.counts["duration_sum"] == 4 * MIN
    assert first.visitors == 5  # s1 stands for 4 visitors
    assert merged[("shop", T0 + MIN)].counts["pageviews"] == 4
    bucket = harness.buckets()[("shop", T0, 0)]
    assert sorted(bucket.total.visitors.by_rate) == [1, 4]
    assert bucket.total.visitors.max_rate() == 4
    assert compare(merged, reference(events)) == []


async def test_revenue_is_kept_per_currency_in_millionths(harness: Harness) -> None:
    events = [
        envelope("shop", "v1", T0, name="purchase", revenue=(19.99, "USD")),
        envelope("shop", "v2", T0 + 1000, name="purchase", revenue=(0.1, "USD")),
        envelope("shop", "v3", T0 + 2000, name="purchase", revenue=(1499.5, "INR"), rate=2),
    ]
    await harness.feed(events)
    bucket = merge_buckets(harness.buckets())[("shop", T0)]
    assert bucket.revenue == Counter({"USD": 20_090_000, "INR": 2_999_000_000})
    assert bucket.counts["transactions"] == 4
    assert compare(merge_buckets(harness.buckets()), reference(events)) == []


async def test_every_event_and_session_is_in_one_row_of_each_breakdown(harness: Harness) -> None:
    events = workload(600, seed=3, sites=("one",))
    await harness.feed(events)
    for bucket in harness.buckets().values():
        total = bucket.total.as_dict()
        for dim, rows in bucket.breakdowns.items():
            summed = Counter[str]()
            for stats in rows.values():
                summed.update(stats.as_dict())
            event_scoped = dim in ("page", "event", "page+source+country+device")
            names = ("events", "pageviews") if event_scoped else ("sessions",)
            for name in names:
                assert summed[name] == total[name], (dim, name)


async def test_a_workload_matches_the_reference(harness: Harness) -> None:
    events = workload(3000, seed=11)
    await harness.feed(events[:1700], partition=0)
    await harness.feed(events[1700:], partition=0)
    assert compare(merge_buckets(harness.buckets()), reference(events), tolerance=0.02) == []


async def test_replaying_the_same_offsets_changes_nothing(harness: Harness) -> None:
    events = workload(800, seed=5)
    await harness.feed(events)
    before = harness.raw_buckets()
    harness.replay_from(0)
    await harness.feed(events)
    assert harness.raw_buckets() == before
    harness.replay_from(400)
    await harness.feed(events[400:])
    assert harness.raw_buckets() == before
    assert compare(merge_buckets(harness.buckets()), reference(events)) == []


def test_bucket_values_round_trip() -> None:
    config = SketchConfig(12, "HLL_4")
    bucket = Bucket(config, offset=41)
    bucket.total.counts[:] = [5, 4, 1, 2, 1, -3]
    bucket.total.visitors.add("a", 1)
    bucket.total.visitors.add("b", 8)
    bucket.revenue["EUR"] = 1_250_000
    bucket.row("page", "/ä").visitors.add("a", 1)
    bucket.row("country", "").counts[0] = 2**40
    again = Bucket.decode(bucket.encode(), config)
    assert again.offset == 41
    assert again.total.counts == [5, 4, 1, 2, 1, -3]
    assert again.total.visitors.estimate() == bucket.total.visitors.estimate() == 9
    assert again.revenue == {"EUR": 1_250_000}
    assert again.row("country", "").counts[0] == 2**40
    assert again.encode() == bucket.encode()


async def test_values_that_are_not_countable_envelopes_are_skipped_and_counted(
    harness: Harness,
) -> None:
    good = envelope("shop", "u1", T0, path="/a")
    missing = {k: v for k, v in envelope("shop", "u2", T0, path="/a").items() if k != "bot"}
    null_id = {**envelope("shop", "u3", T0, path="/a"), "id": None}
    # Revenue the gateway refuses, from another producer: left out, not a stopped worker.
    huge = envelope("shop", "u4", T0, name="purchase", revenue=(1e40, "USD"))
    text_amount = {**good, "id": "t", "revenue": {"amount": "5", "currency": "USD"}}
    no_currency = {**good, "id": "c", "revenue": {"amount": 5.0}}
    key = kafka_key("shop", "x")
    values = [
        (key, orjson.dumps(good)),
        (key, orjson.dumps(missing)),
        (key, orjson.dumps(null_id)),
        (key, orjson.dumps(["not", "an", "object"])),
        (key, b"{not json"),
        *((key, orjson.dumps(e)) for e in (huge, text_amount, no_currency)),
    ]
    before = count.STATS.malformed
    await harness.feed_values(values)
    assert count.STATS.malformed - before == 7
    merged = merge_buckets(harness.buckets())
    assert merged[("shop", T0)].counts["events"] == 1
    assert compare(merged, reference([good])) == []
