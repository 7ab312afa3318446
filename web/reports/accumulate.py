"""One report's partials as they come in from every source: per bucket, per value, in total.

A series request adds each partial to its bucket and to the range's total (both unions,
so the total's visitors is one sketch over the whole range); a breakdown adds each to its
value. Sources add in turn, never at the same time (one may run in a thread).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence

import datasketches as ds

from footfall.visitors import SketchConfig
from web.reports.merge import Agg, AggBuilder


class SeriesAcc:
    """Bucket partials of [bounds[0], bounds[-1]) and the partial of the whole range."""

    def __init__(self, config: SketchConfig, bounds: Sequence[int]) -> None:
        self.config = config
        self.bounds = tuple(bounds)
        self.buckets = [AggBuilder(config) for _ in range(len(bounds) - 1)]
        self.total = AggBuilder(config)

    def index(self, minute: int) -> int:
        """The bucket of a minute inside the range."""
        return bisect_right(self.bounds, minute) - 1

    def add(
        self,
        minute: int,
        counts: Sequence[int],
        revenue: Mapping[str, int] | None,
        rate_max: int,
        sketches: Mapping[int, ds.hll_sketch],
    ) -> None:
        self.buckets[self.index(minute)].add(counts, revenue, rate_max, sketches)
        self.total.add(counts, revenue, rate_max, sketches)

    def add_loose(self, minute: int, agg: Agg) -> None:
        self.buckets[self.index(minute)].add_agg(agg)
        self.total.add_agg(agg)

    def add_buckets(self, first: int, aggs: Sequence[Agg], total: Agg | None = None) -> None:
        """Partials of buckets first, first + 1, ... (a sub-range's), and their total.

        Without `total` every bucket partial also goes into the range's total.
        """
        for offset, agg in enumerate(aggs):
            self.buckets[first + offset].add_agg(agg)
            if total is None:
                self.total.add_agg(agg)
        if total is not None:
            self.total.add_agg(total)

    def sub_bounds(self, start: int, end: int) -> tuple[int, list[int]]:
        """The index of the first bucket meeting [start, end), and the bounds cut to it."""
        first = self.index(start)
        inner = [b for b in self.bounds[first + 1 :] if b < end]
        return first, [start, *inner, end]


class ValuesAcc:
    """Breakdown partials per dimension value."""

    def __init__(self, config: SketchConfig) -> None:
        self.config = config
        self.values: dict[str, AggBuilder] = {}

    def builder(self, value: str) -> AggBuilder:
        found = self.values.get(value)
        if found is None:
            found = self.values[value] = AggBuilder(self.config)
        return found

    def add(
        self,
        value: str,
        counts: Sequence[int],
        rate_max: int,
        sketches: Mapping[int, ds.hll_sketch],
    ) -> None:
        self.builder(value).add(counts, None, rate_max, sketches)

    def add_values(self, values: Mapping[str, Agg]) -> None:
        for value, agg in values.items():
            self.builder(value).add_agg(agg)
