"""footfall.visitors: the sole-visitor form is indistinguishable from a sketch."""

from __future__ import annotations

import datasketches as ds
import pytest

from footfall.visitors import SketchConfig, Visitors

CONFIGS = [SketchConfig(), SketchConfig(lg_k=12, hll_type="HLL_4")]


def sketched(config: SketchConfig, adds: list[tuple[str, int]]) -> dict[int, ds.hll_sketch]:
    """What the visitors' sketches are when every add updates a sketch right away."""
    by_rate: dict[int, ds.hll_sketch] = {}
    for visitor, rate in adds:
        by_rate.setdefault(rate, config.new()).update(visitor)
    return by_rate


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize(
    "adds",
    [
        [],
        [("v1", 1)],
        [("v1", 1), ("v1", 1)],
        [("v1", 4)],
        [("v1", 1), ("v2", 1)],
        [("v1", 1), ("v1", 2)],
        [("v1", 2), ("v2", 1), ("v1", 2)],
        [(f"v{i}", 1) for i in range(50)],
        [("", 1)],
        [("", 1), ("v1", 1)],
        [("v1", 1), ("", 1)],
        [("", 2), ("v1", 1)],
    ],
)
def test_stored_form_and_answers_match_plain_sketches(
    config: SketchConfig, adds: list[tuple[str, int]]
) -> None:
    visitors = Visitors(config)
    for visitor, rate in adds:
        visitors.add(visitor, rate)
    expected = sketched(config, adds)
    stored = list(visitors.items())
    assert stored == [(rate, expected[rate].serialize_compact()) for rate in sorted(expected)]
    assert visitors.estimate() == sum(r * s.get_estimate() for r, s in expected.items())
    assert visitors.max_rate() == max(expected, default=1)
    # Made into sketches (what reports read), the same again.
    assert {r: s.serialize_compact() for r, s in visitors.by_rate.items()} == {
        r: s.serialize_compact() for r, s in expected.items()
    }
    assert list(visitors.items()) == stored


def test_a_sole_visitor_made_into_a_sketch_keeps_counting() -> None:
    visitors = Visitors(SketchConfig())
    visitors.add("v1", 1)
    assert set(visitors.by_rate) == {1}
    visitors.add("v2", 1)
    visitors.add("v1", 1)
    assert visitors.estimate() == pytest.approx(2.0)


def test_merging_sole_visitors_unions_them() -> None:
    config = SketchConfig()
    mine, other = Visitors(config), Visitors(config)
    mine.add("v1", 1)
    other.add("v2", 1)
    mine.merge(other)
    assert mine.estimate() == pytest.approx(2.0)
    other_again = Visitors(config)
    other_again.add("v2", 1)
    mine.merge(other_again)
    assert mine.estimate() == pytest.approx(2.0)
    assert other.estimate() == 1.0


def test_decoded_sketches_take_more_visitors() -> None:
    config = SketchConfig()
    first = Visitors(config)
    first.add("v1", 1)
    decoded = Visitors.from_items(config, iter(first.items()))
    decoded.add("v2", 1)
    assert decoded.estimate() == pytest.approx(2.0)
