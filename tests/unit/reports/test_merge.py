"""Merging partials: counters add, sketches union, loose estimates only answer one minute."""

from __future__ import annotations

import datasketches as ds
import pytest

from footfall.metrics import COUNTERS
from footfall.visitors import SketchConfig
from web.reports.accumulate import SeriesAcc
from web.reports.history import BatchSpan
from web.reports.merge import Agg, AggBuilder, decode_partials, encode_partials, metric_values
from web.reports.service import Segment, plan

CONFIG = SketchConfig(14, "HLL_8")


def sketch(*visitors: str) -> ds.hll_sketch:
    s = ds.hll_sketch(14, ds.tgt_hll_type.HLL_8)
    for v in visitors:
        s.update(v)
    return s


def counts(**named: int) -> list[int]:
    return [named.get(name, 0) for name in COUNTERS]


def test_visitors_are_a_union_not_a_sum() -> None:
    b = AggBuilder(CONFIG)
    b.add(counts(events=2), {"USD": 5}, 1, {1: sketch("a", "b")})
    b.add(counts(events=3), {"USD": 7, "INR": 1}, 1, {1: sketch("b", "c")})
    assert b.visitors() == pytest.approx(3)
    assert b.counts[COUNTERS.index("events")] == 5
    assert b.revenue == {"USD": 12, "INR": 1}


def test_sample_rates_keep_their_own_sketch() -> None:
    b = AggBuilder(CONFIG)
    b.add(counts(), None, 4, {4: sketch("a", "b"), 1: sketch("c")})
    b.add(counts(), None, 1, {1: sketch("c", "d")})
    assert b.visitors() == pytest.approx(4 * 2 + 2)
    assert b.rate_max == 4


def test_a_single_partial_is_held_without_a_union() -> None:
    agg = Agg(counts(pageviews=3), {}, 1, {1: sketch("a")})
    b = AggBuilder(CONFIG)
    b.add_agg(agg)
    assert b.build() is agg
    assert b.visitors() == pytest.approx(1)
    b.add_agg(Agg(counts(pageviews=1), {}, 2, {1: sketch("a", "z")}))
    assert b.visitors() == pytest.approx(2)
    assert b.counts[COUNTERS.index("pageviews")] == 4
    assert agg.counts[COUNTERS.index("pageviews")] == 3  # the held partial is not changed
    assert b.rate_max == 2


def test_loose_estimates_answer_one_minute_only() -> None:
    one = AggBuilder(CONFIG)
    one.add_loose(12.0)
    assert one.visitors() == 12.0
    two = AggBuilder(CONFIG)
    two.add_loose(12.0)
    two.add_loose(3.0)
    assert two.visitors() is None
    mixed = AggBuilder(CONFIG)
    mixed.add_loose(1.0)
    mixed.add((), None, 1, {1: sketch("a")})
    assert mixed.visitors() is None
    assert metric_values(two, ("visitors", "sessions")) == {"visitors": None, "sessions": 0}


def test_metric_values_in_spec_units() -> None:
    b = AggBuilder(CONFIG)
    b.add(
        counts(sessions=4, bounces=1, duration_sum=90_000, pageviews=10), {"EUR": 2_500_000}, 1, {}
    )
    values = metric_values(
        b, ("duration_sum", "avg_duration", "bounce_rate", "views_per_session", "revenue")
    )
    assert values == {
        "duration_sum": 90.0,
        "avg_duration": 22.5,
        "bounce_rate": 0.25,
        "views_per_session": 2.5,
        "revenue": {"EUR": 2.5},
    }
    assert metric_values(AggBuilder(CONFIG), ("bounce_rate",)) == {"bounce_rate": None}


def test_wire_round_trip() -> None:
    aggs = [Agg(counts(events=1), {"USD": 3}, 2, {1: sketch("a"), 2: sketch("b", "c")}), Agg()]
    data = encode_partials([3, 1], aggs, {"/x": Agg(counts(pageviews=2), {}, 1, {1: sketch("q")})})
    back = decode_partials(data)
    assert back.partitions == [1, 3]
    assert back.buckets[0].counts == aggs[0].counts
    assert back.buckets[0].revenue == {"USD": 3}
    assert back.buckets[0].sketches[2].get_estimate() == pytest.approx(2)
    assert back.buckets[1].empty
    assert back.values["/x"].sketches[1].get_estimate() == pytest.approx(1)


def test_accumulator_cuts_sub_ranges() -> None:
    acc = SeriesAcc(CONFIG, [0, 100, 200, 300])
    assert acc.sub_bounds(150, 300) == (1, [150, 200, 300])
    assert acc.sub_bounds(0, 100) == (0, [0, 100])
    acc.add_buckets(1, [Agg(counts(events=1)), Agg(counts(events=2))])
    assert [b.counts[0] for b in acc.buckets] == [0, 1, 2]
    assert acc.total.counts[0] == 3


def test_plan_sources() -> None:
    day = 86_400_000
    batch = BatchSpan(10 * day, 20 * day)
    assert plan(0, 30 * day, batch, 28 * day) == [
        Segment("influxdb", 0, 10 * day),
        Segment("hbase", 10 * day, 20 * day),
        Segment("influxdb", 20 * day, 28 * day),
        Segment("tables", 28 * day, 30 * day),
    ]
    assert plan(12 * day, 30 * day, batch, 19 * day) == [
        Segment("hbase", 12 * day, 20 * day),
        Segment("tables", 20 * day, 30 * day),
    ]
    assert plan(25 * day, 26 * day, None, 0) == [Segment("tables", 25 * day, 26 * day)]
