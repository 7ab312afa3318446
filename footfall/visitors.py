"""Distinct visitors as Apache DataSketches HLL sketches, one per sample rate.

A sampled visitor stands for `rate` visitors (spec: Sampling). A bucket can hold visitors
kept at different rates (the gateway raises N under overload), and one sketch cannot say
which of its members stood for how many, so there is one sketch per rate and the estimate
is the sum of rate x estimate. The sketches of one rate merge across buckets and ranges as
usual; a visitor seen at two rates in the same range counts in both (rare: rates change
seldom, and a power-of-two N keeps the sampled sets nested). With no sampling there is one
sketch, rate 1, which is exactly the spec's per-bucket sketch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import datasketches as ds

HllType = Literal["HLL_4", "HLL_6", "HLL_8"]
# Looked up once: a new sketch per breakdown row is on the counting's hot path.
_TARGET_TYPES: dict[str, ds.tgt_hll_type] = {
    name: getattr(ds.tgt_hll_type, name) for name in ("HLL_4", "HLL_6", "HLL_8")
}


@dataclass(frozen=True, slots=True)
class SketchConfig:
    """How new sketches are made: lg_k and register width (both from settings)."""

    lg_k: int = 14
    hll_type: HllType = "HLL_8"

    def new(self) -> ds.hll_sketch:
        return ds.hll_sketch(self.lg_k, _TARGET_TYPES[self.hll_type])

    def __reduce__(self) -> tuple[type[SketchConfig], tuple[int, HllType]]:
        # Spark ships it to its executors: compiled (footfall/native.py), a frozen
        # dataclass cannot be rebuilt by setting its fields one by one.
        return (SketchConfig, (self.lg_k, self.hll_type))


class Visitors:
    """The visitors of one bucket or breakdown row: an HLL sketch per sample rate.

    Most breakdown rows of a minute (a product page, an entry page, a combination) see one
    visitor, so a row's first visitor is held as the text and rate alone (`_sole`), and
    the sketch is made only when a second one comes. Its stored form is the one-visitor
    sketch's bytes all the same (the same bytes as a sketch updated once: `_sole_sketch`),
    so nothing outside this class can tell: it saves the counting a sketch object per such
    row, and the writes a serialization per row (one per visitor, cached).
    """

    __slots__ = ("_by_rate", "_sole", "_sole_rate", "config")

    def __init__(
        self, config: SketchConfig, by_rate: dict[int, ds.hll_sketch] | None = None
    ) -> None:
        self.config = config
        # None while the set is empty or holds only `_sole`.
        self._by_rate: dict[int, ds.hll_sketch] | None = by_rate
        self._sole: str | None = None
        self._sole_rate = 0

    @property
    def by_rate(self) -> dict[int, ds.hll_sketch]:
        """rate -> sketch (the sole visitor, if any, made into a sketch first).

        A write as much as a read: not for a Visitors that another thread may be adding
        to (the reports read buckets they decoded themselves).
        """
        by_rate = self._by_rate
        if by_rate is None:
            by_rate = self._by_rate = {}
            sole = self._sole
            if sole is not None:
                sketch = by_rate[self._sole_rate] = self.config.new()
                sketch.update(sole)
                self._sole = None
        return by_rate

    def add(self, visitor: str, rate: int) -> None:
        by_rate = self._by_rate
        if by_rate is None:
            sole = self._sole
            if sole is None:
                # An empty text is no visitor to DataSketches (its update ignores it): that
                # one takes the sketch's path, which stores an empty sketch of its rate.
                if visitor:
                    self._sole = visitor
                    self._sole_rate = rate
                    return
            elif rate == self._sole_rate and visitor == sole:
                return  # a sketch updated twice with one value is unchanged
            by_rate = self.by_rate
        sketch = by_rate.get(rate)
        if sketch is None:
            sketch = by_rate[rate] = self.config.new()
        sketch.update(visitor)

    def estimate(self) -> float:
        """Estimated visitors, each sampled visitor counted `rate` times."""
        if self._by_rate is None:
            return float(self._sole_rate) if self._sole is not None else 0.0
        # In rate order: a float sum's last bits depend on the order, and footfall._core
        # (native/) sums in this one too.
        by_rate = self._by_rate
        return float(sum(rate * by_rate[rate].get_estimate() for rate in sorted(by_rate)))

    def max_rate(self) -> int:
        """The highest sample rate present (1 when unsampled or empty)."""
        if self._by_rate is None:
            return self._sole_rate if self._sole is not None else 1
        return max(self._by_rate, default=1)

    def merge(self, other: Visitors) -> None:
        """Add another set's visitors (union per rate): how ranges are answered."""
        mine_by_rate = self.by_rate
        for rate, sketch in other.by_rate.items():
            union = ds.hll_union(self.config.lg_k)
            mine = mine_by_rate.get(rate)
            if mine is not None:
                union.update(mine)
            union.update(sketch)
            mine_by_rate[rate] = union.get_result(_TARGET_TYPES[self.config.hll_type])

    def items(self) -> Iterator[tuple[int, bytes]]:
        """(rate, compact sketch bytes) pairs, in rate order: the stored form."""
        by_rate = self._by_rate
        if by_rate is None:
            if self._sole is not None:
                yield self._sole_rate, _sole_sketch(self.config, self._sole)
            return
        for rate in sorted(by_rate):
            yield rate, by_rate[rate].serialize_compact()

    @classmethod
    def from_items(cls, config: SketchConfig, items: Iterator[tuple[int, bytes]]) -> Visitors:
        return cls(config, {rate: ds.hll_sketch.deserialize(raw) for rate, raw in items})


# The compact bytes of one-visitor sketches, by (visitor, lg_k, register width): a visitor's
# events put it alone in several rows of every minute it is in (its pages, entry and exit
# page, their combinations), each written at least once. Bounded: cleared when full.
_SOLE_SKETCHES: dict[tuple[str, int, str], bytes] = {}
_SOLE_SKETCHES_MAX = 50_000


def _sole_sketch(config: SketchConfig, visitor: str) -> bytes:
    key = (visitor, config.lg_k, config.hll_type)
    raw = _SOLE_SKETCHES.get(key)
    if raw is None:
        if len(_SOLE_SKETCHES) >= _SOLE_SKETCHES_MAX:
            _SOLE_SKETCHES.clear()
        sketch = config.new()
        sketch.update(visitor)
        raw = _SOLE_SKETCHES[key] = sketch.serialize_compact()
    return raw
