"""Merging partials: counters and revenue add up, visitors sketches are unioned.

A partial (`Agg`) is what one source holds for one bucket (or one breakdown value): the
counters of footfall.metrics.COUNTERS (sums of sample rates, `duration_sum` in ms),
revenue per currency in millionths, the highest sample rate, and the visitors as one
DataSketches HLL sketch per sample rate (footfall.visitors says why per rate). Any number
of partials of any sources and partitions become one with `AggBuilder`: counters by sum,
sketches by `hll_union`, so `visitors` of a bucket or a whole range is the estimate of
one merged sketch over that span, never a sum of smaller buckets' estimates.

InfluxDB holds no sketches, only each minute's estimate (partitions summed: their visitors
are disjoint). Such "loose" estimates answer a bucket of one minute; a longer span that
holds any of them has no visitors figure (None), rather than a sum that over-counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import datasketches as ds

from footfall.metrics import COUNTERS, REVENUE_SCALE, derived_metrics
from footfall.visitors import SketchConfig
from tables.codec import CodecError, Reader, Writer

N_COUNTERS: Final = len(COUNTERS)
_INDEX: Final = {name: i for i, name in enumerate(COUNTERS)}
_WIRE_VERSION: Final = 1


@dataclass(slots=True)
class Agg:
    """A finished partial; see the module docstring."""

    counts: list[int] = field(default_factory=lambda: [0] * N_COUNTERS)
    revenue: dict[str, int] = field(default_factory=dict)
    rate_max: int = 1
    sketches: dict[int, ds.hll_sketch] = field(default_factory=dict)
    loose: float = 0.0
    loose_minutes: int = 0

    @property
    def empty(self) -> bool:
        return not any(self.counts) and not self.revenue and not self.sketches and not self.loose


def counts_of(counters: Mapping[str, int]) -> list[int]:
    """A counters mapping (any subset of COUNTERS) as a list in COUNTERS order."""
    counts = [0] * N_COUNTERS
    for name, n in counters.items():
        index = _INDEX.get(name)
        if index is not None:
            counts[index] = n
    return counts


class AggBuilder:
    """Adds partials up; `build()` makes the merged `Agg` (one union result per rate).

    A builder given a single finished `Agg` only holds it: a bucket that one source answers
    whole (the common case) costs no union at all.
    """

    __slots__ = (
        "_config",
        "_counts",
        "_held",
        "_loose",
        "_loose_minutes",
        "_pristine",
        "_rate_max",
        "_revenue",
        "_target",
        "_unions",
    )

    def __init__(self, config: SketchConfig) -> None:
        self._config = config
        self._target = getattr(ds.tgt_hll_type, config.hll_type)
        self._held: Agg | None = None
        self._pristine = True
        self._counts = [0] * N_COUNTERS
        self._revenue: dict[str, int] = {}
        self._rate_max = 1
        self._unions: dict[int, ds.hll_union] = {}
        self._loose = 0.0
        self._loose_minutes = 0

    # --- adding ---------------------------------------------------------------------------------
    def add(
        self,
        counts: Sequence[int],
        revenue: Mapping[str, int] | None,
        rate_max: int,
        sketches: Mapping[int, ds.hll_sketch],
    ) -> None:
        self._pristine = False
        if self._held is not None:
            self._take_held()
        own = self._counts
        for i, n in enumerate(counts):
            own[i] += n
        if revenue:
            for currency, units in revenue.items():
                self._revenue[currency] = self._revenue.get(currency, 0) + units
        if rate_max > self._rate_max:
            self._rate_max = rate_max
        unions = self._unions
        for rate, sketch in sketches.items():
            union = unions.get(rate)
            if union is None:
                union = unions[rate] = ds.hll_union(self._config.lg_k)
            union.update(sketch)

    def add_agg(self, agg: Agg) -> None:
        if self._pristine:
            self._pristine = False
            self._held = agg
            return
        self.add(agg.counts, agg.revenue, agg.rate_max, agg.sketches)
        self._loose += agg.loose
        self._loose_minutes += agg.loose_minutes

    def add_loose(self, estimate: float, minutes: int = 1) -> None:
        """A visitors estimate without a sketch (one InfluxDB minute)."""
        self.add((), None, 1, {})
        self._loose += estimate
        self._loose_minutes += minutes

    def _take_held(self) -> None:
        held, self._held = self._held, None
        assert held is not None
        self.add(held.counts, held.revenue, held.rate_max, held.sketches)
        self._loose += held.loose
        self._loose_minutes += held.loose_minutes

    # --- reading ---------------------------------------------------------------------------------
    @property
    def counts(self) -> list[int]:
        return self._held.counts if self._held is not None else self._counts

    @property
    def revenue(self) -> dict[str, int]:
        return self._held.revenue if self._held is not None else self._revenue

    @property
    def rate_max(self) -> int:
        return self._held.rate_max if self._held is not None else self._rate_max

    def visitors(self) -> float | None:
        """Σ rate x estimate of the merged sketches; None when it cannot be told."""
        held = self._held
        if held is not None:
            loose, minutes = held.loose, held.loose_minutes
            merged = sum(rate * s.get_estimate() for rate, s in held.sketches.items())
            has_sketches = bool(held.sketches)
        else:
            loose, minutes = self._loose, self._loose_minutes
            merged = sum(rate * u.get_estimate() for rate, u in self._unions.items())
            has_sketches = bool(self._unions)
        if minutes and (has_sketches or minutes > 1):
            return None
        return float(merged + loose)

    def build(self) -> Agg:
        if self._held is not None:
            return self._held
        return Agg(
            list(self._counts),
            dict(self._revenue),
            self._rate_max,
            {rate: union.get_result(self._target) for rate, union in self._unions.items()},
            self._loose,
            self._loose_minutes,
        )


def merge(config: SketchConfig, aggs: Iterable[Agg]) -> AggBuilder:
    builder = AggBuilder(config)
    for agg in aggs:
        builder.add_agg(agg)
    return builder


# --- what a report shows ------------------------------------------------------------------------
def metric_values(builder: AggBuilder, metrics: Sequence[str]) -> dict[str, Any]:
    """The asked metrics of a merged partial, in the spec's units (seconds, currency units)."""
    counts = dict(zip(COUNTERS, builder.counts, strict=True))
    derived = derived_metrics(counts)
    out: dict[str, Any] = {}
    for name in metrics:
        if name == "visitors":
            estimate = builder.visitors()
            out[name] = None if estimate is None else round(estimate)
        elif name == "duration_sum":
            out[name] = counts[name] / 1000
        elif name in counts:
            out[name] = counts[name]
        elif name == "revenue":
            out[name] = {c: u / REVENUE_SCALE for c, u in sorted(builder.revenue.items())}
        elif name in derived:
            out[name] = derived[name]
    return out


# --- the wire between workers -------------------------------------------------------------------
def _write_agg(w: Writer, agg: Agg) -> None:
    for n in agg.counts:
        w.sint(n)
    w.uint(len(agg.revenue))
    for currency in sorted(agg.revenue):
        w.text(currency)
        w.sint(agg.revenue[currency])
    w.uint(agg.rate_max)
    w.uint(len(agg.sketches))
    for rate in sorted(agg.sketches):
        w.uint(rate)
        w.blob(agg.sketches[rate].serialize_compact())


def _read_agg(r: Reader) -> Agg:
    counts = [r.sint() for _ in range(N_COUNTERS)]
    revenue = {}
    for _ in range(r.uint()):
        currency = r.text()
        revenue[currency] = r.sint()
    rate_max = r.uint()
    sketches = {}
    for _ in range(r.uint()):
        rate = r.uint()
        sketches[rate] = ds.hll_sketch.deserialize(r.blob())
    return Agg(counts, revenue, rate_max, sketches)


def encode_partials(
    partitions: Iterable[int], buckets: Sequence[Agg], values: Mapping[str, Agg]
) -> bytes:
    """A worker's answer: the partitions it read, per-bucket partials, per-value partials."""
    w = Writer()
    w.uint(_WIRE_VERSION)
    served = sorted(partitions)
    w.uint(len(served))
    for p in served:
        w.uint(p)
    w.uint(len(buckets))
    for agg in buckets:
        _write_agg(w, agg)
    w.uint(len(values))
    for value in sorted(values):
        w.text(value)
        _write_agg(w, values[value])
    return w.getvalue()


@dataclass(slots=True)
class Partials:
    partitions: list[int]
    buckets: list[Agg]
    values: dict[str, Agg]


def decode_partials(data: bytes) -> Partials:
    r = Reader(data)
    if r.uint() != _WIRE_VERSION:
        raise CodecError("partials: unknown version")
    partitions = [r.uint() for _ in range(r.uint())]
    buckets = [_read_agg(r) for _ in range(r.uint())]
    values: dict[str, Agg] = {}
    for _ in range(r.uint()):
        value = r.text()
        values[value] = _read_agg(r)
    if not r.at_end():
        raise CodecError("partials: trailing bytes")
    return Partials(partitions, buckets, values)


def iter_sketches(raw: Iterable[tuple[int, bytes]]) -> Iterator[tuple[int, ds.hll_sketch]]:
    for rate, image in raw:
        yield rate, ds.hll_sketch.deserialize(bytes(image))
