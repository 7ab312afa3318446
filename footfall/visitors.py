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
    """The visitors of one bucket or breakdown row: an HLL sketch per sample rate."""

    __slots__ = ("by_rate", "config")

    def __init__(
        self, config: SketchConfig, by_rate: dict[int, ds.hll_sketch] | None = None
    ) -> None:
        self.config = config
        self.by_rate: dict[int, ds.hll_sketch] = by_rate if by_rate is not None else {}

    def add(self, visitor: str, rate: int) -> None:
        sketch = self.by_rate.get(rate)
        if sketch is None:
            sketch = self.by_rate[rate] = self.config.new()
        sketch.update(visitor)

    def estimate(self) -> float:
        """Estimated visitors, each sampled visitor counted `rate` times."""
        return float(sum(rate * sketch.get_estimate() for rate, sketch in self.by_rate.items()))

    def max_rate(self) -> int:
        """The highest sample rate present (1 when unsampled or empty)."""
        return max(self.by_rate, default=1)

    def merge(self, other: Visitors) -> None:
        """Add another set's visitors (union per rate): how ranges are answered."""
        for rate, sketch in other.by_rate.items():
            union = ds.hll_union(self.config.lg_k)
            mine = self.by_rate.get(rate)
            if mine is not None:
                union.update(mine)
            union.update(sketch)
            self.by_rate[rate] = union.get_result(_TARGET_TYPES[self.config.hll_type])

    def items(self) -> Iterator[tuple[int, bytes]]:
        """(rate, compact sketch bytes) pairs, in rate order: the stored form."""
        for rate in sorted(self.by_rate):
            yield rate, self.by_rate[rate].serialize_compact()

    @classmethod
    def from_items(cls, config: SketchConfig, items: Iterator[tuple[int, bytes]]) -> Visitors:
        return cls(config, {rate: ds.hll_sketch.deserialize(raw) for rate, raw in items})
