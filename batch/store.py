"""Reading the batch layer's truth from HBase: what the reporting API asks of it.

- `minutes(site, start, end)`: a site's minute rows of a time range, one contiguous scan;
- `breakdown(site, dimension, start, end)`: the rows of one dimension over a range, one
  contiguous scan, and `breakdown_totals` summing them per value (the top-N input);
- `batch_range(site)`: the unbroken run of complete days; `BatchRange.until_ms` is
  `meta.batch_until`; `complete_days(site)`: every complete day, also after a gap.

Visitors come as per-rate sketches (footfall.visitors.Visitors, the stream's own type): a
range's visitors are the union of its rows' sketches, never a sum (`merge_visitors`).
happybase is synchronous: an asyncio caller runs these in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from types import TracebackType
from typing import Self

import datasketches as ds
import happybase

from batch import hbase, markers
from batch.markers import BatchRange
from footfall.metrics import COUNTERS
from footfall.series import REVENUE_PREFIX, SAMPLE_RATE_FIELD
from footfall.settings import Settings
from footfall.visitors import SketchConfig, Visitors

_SCAN_BATCH = 2000


@dataclass(slots=True)
class Row:
    """One minute (or one minute of one dimension value): counters, revenue, sketches.

    `counters` holds the counters the row's kind has (all six for a minute; the event or
    the session ones for a breakdown row); `revenue` is currency -> millionths (minutes
    only); `sketches` is rate -> sketch image.
    """

    minute: int
    counters: dict[str, int]
    revenue: dict[str, int] = field(default_factory=dict)
    sample_rate_max: int = 1
    sketches: dict[int, bytes] = field(default_factory=dict)
    dimension: str = ""
    value: str = ""


@dataclass(slots=True)
class Totals:
    """Rows added up: counters and revenue summed, sketches merged."""

    counters: dict[str, int] = field(default_factory=dict)
    revenue: dict[str, int] = field(default_factory=dict)
    sample_rate_max: int = 1
    sketches: dict[int, list[bytes]] = field(default_factory=dict)
    rows: int = 0

    def add(self, row: Row) -> None:
        for name, n in row.counters.items():
            self.counters[name] = self.counters.get(name, 0) + n
        for currency, units in row.revenue.items():
            self.revenue[currency] = self.revenue.get(currency, 0) + units
        self.sample_rate_max = max(self.sample_rate_max, row.sample_rate_max)
        for rate, image in row.sketches.items():
            self.sketches.setdefault(rate, []).append(image)
        self.rows += 1

    def visitors(self, config: SketchConfig) -> Visitors:
        return merge_visitors(config, self.sketches)


def merge_visitors(config: SketchConfig, sketches: dict[int, list[bytes]]) -> Visitors:
    """One Visitors from many rows' images per rate (one union per rate)."""
    target = getattr(ds.tgt_hll_type, config.hll_type)
    merged: dict[int, ds.hll_sketch] = {}
    for rate, images in sketches.items():
        union = ds.hll_union(config.lg_k)
        for image in images:
            union.update(ds.hll_sketch.deserialize(image))
        merged[rate] = union.get_result(target)
    return Visitors(config, merged)


def _row(minute: int, cells: dict[bytes, bytes]) -> Row:
    counters, sketches = hbase.decode_cells(cells)
    revenue = {
        name.removeprefix(REVENUE_PREFIX): counters.pop(name)
        for name in list(counters)
        if name.startswith(REVENUE_PREFIX)
    }
    # Breakdown rows store no sample_rate_max: their sketches' rates say the same.
    rate_max = counters.pop(SAMPLE_RATE_FIELD, max(sketches, default=1))
    return Row(minute, counters, revenue, rate_max, sketches)


class BatchStore:
    """Reads of the batch tables; use as a context manager, or close()."""

    def __init__(self, settings: Settings, connection: happybase.Connection | None = None) -> None:
        self.settings = settings
        self.sketch = SketchConfig(settings.hll_lg_k, settings.hll_type)
        self._connection = connection if connection is not None else hbase.connect(settings)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    def minutes(
        self, site: str, start_ms: int, end_ms: int, *, sketches: bool = True
    ) -> Iterator[Row]:
        """The minute rows of [start_ms, end_ms) in time order (`sketches=False`: no visitors)."""
        families = None if sketches else [hbase.COUNTERS_FAMILY]
        scan = self._connection.table(hbase.MINUTES).scan(
            row_start=hbase.minute_key(site, start_ms),
            row_stop=hbase.minute_key(site, end_ms),
            columns=families,
            batch_size=_SCAN_BATCH,
        )
        for key, cells in scan:
            yield _row(hbase.parse_minute_key(key)[1], cells)

    def breakdown(
        self, site: str, dimension: str, start_ms: int, end_ms: int, *, sketches: bool = True
    ) -> Iterator[Row]:
        """The rows of one dimension in [start_ms, end_ms), by minute then value."""
        families = None if sketches else [hbase.COUNTERS_FAMILY]
        scan = self._connection.table(hbase.BREAKDOWNS).scan(
            row_start=hbase.breakdown_key(site, dimension, start_ms),
            row_stop=hbase.breakdown_key(site, dimension, end_ms),
            columns=families,
            batch_size=_SCAN_BATCH,
        )
        for key, cells in scan:
            _, dim, minute, value = hbase.parse_breakdown_key(key)
            row = _row(minute, cells)
            row.dimension = dim
            row.value = value
            yield row

    def breakdown_totals(
        self, site: str, dimension: str, start_ms: int, end_ms: int
    ) -> dict[str, Totals]:
        """A dimension's rows of a range added up per value."""
        return totals_by_value(self.breakdown(site, dimension, start_ms, end_ms))

    def total(self, site: str, start_ms: int, end_ms: int) -> Totals:
        """The minutes of a range added up."""
        totals = Totals()
        for row in self.minutes(site, start_ms, end_ms):
            totals.add(row)
        return totals

    def batch_range(self, site: str) -> BatchRange | None:
        """The complete days of a site (markers module); None before its first."""
        return markers.batch_range(self._connection, site)

    def complete_days(self, site: str) -> set[date]:
        """Every day whose truth for `site` HBase holds, the unbroken run's and later ones."""
        return markers.complete_days(self._connection, site)


def totals_by_value(rows: Iterable[Row]) -> dict[str, Totals]:
    by_value: dict[str, Totals] = {}
    for row in rows:
        by_value.setdefault(row.value, Totals()).add(row)
    return by_value


def complete(counters: dict[str, int]) -> dict[str, int]:
    """Every counter of footfall.metrics.COUNTERS, 0 where a row has none."""
    return {name: counters.get(name, 0) for name in COUNTERS}
