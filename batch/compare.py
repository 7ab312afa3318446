"""`--dry-run`: a day's recomputed totals next to the stored ones, per site and metric.

"Stored" is what the reporting API would answer for the day today: the batch rows in HBase
when a run wrote the site's day (source `hbase`), else the stream's points in InfluxDB
(source `influx`; no visitors there, as per-minute estimates do not add up to a day's),
else nothing (`none`, zeros).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import happybase

from batch import hbase
from batch.days import DayWindow
from batch.influx import stored_totals as influx_totals
from batch.influx import visitors_of
from batch.store import BatchStore
from footfall.influx import InfluxClient
from footfall.metrics import COUNTERS, REVENUE_SCALE, derived_metrics
from footfall.series import REVENUE_PREFIX
from footfall.settings import Settings
from footfall.visitors import SketchConfig

Number = int | float | None
SOURCES: Final = ("hbase", "influx", "none")


@dataclass(slots=True)
class DayTotals:
    """A site's day: counters, revenue (currency -> millionths), visitors estimate."""

    counters: dict[str, int] = field(default_factory=dict)
    revenue: dict[str, int] = field(default_factory=dict)
    visitors: float | None = 0.0
    source: str = "batch"

    def metrics(self) -> dict[str, Number]:
        c = {name: self.counters.get(name, 0) for name in COUNTERS}
        values: dict[str, Number] = {"visitors": self.visitors, **c}
        values.update(derived_metrics(c))
        for currency, units in sorted(self.revenue.items()):
            values[REVENUE_PREFIX + currency] = units
        return values


@dataclass(frozen=True, slots=True)
class Comparison:
    """One line of the dry run's output."""

    day: str
    site: str
    metric: str
    stored: Number
    recomputed: Number
    source: str

    @property
    def diff(self) -> Number:
        if self.stored is None or self.recomputed is None:
            return None
        return self.recomputed - self.stored


def recomputed_totals(sketch: SketchConfig, rows: Iterable[Any]) -> dict[str, DayTotals]:
    """batch.compute's `totals` rows as DayTotals per site."""
    totals: dict[str, DayTotals] = {}
    for row in rows:
        totals[row["site"]] = DayTotals(
            counters={name: int(row[name]) for name in COUNTERS},
            revenue={k: int(v) for k, v in (row["revenue"] or {}).items()},
            visitors=visitors_of(sketch, row["sketches"]).estimate(),
        )
    return totals


async def stored_totals(
    settings: Settings,
    connection: happybase.Connection,
    window: DayWindow,
    sites: Sequence[str],
    sketch: SketchConfig,
) -> dict[str, DayTotals]:
    """What is stored for each site's day (module docstring)."""
    store = BatchStore(settings, connection)
    days = connection.table(hbase.DAYS)
    found: dict[str, DayTotals] = {}
    for site in sites:
        total = store.total(site, window.start_ms, window.cutoff_ms)
        if total.rows or days.row(hbase.day_key(site, window.label)):
            found[site] = DayTotals(
                counters=total.counters,
                revenue=total.revenue,
                visitors=total.visitors(sketch).estimate(),
                source="hbase",
            )
    missing = [site for site in sites if site not in found]
    if missing:
        async with InfluxClient.from_settings(settings, timeout_s=60) as client:
            points = await influx_totals(client, window, missing)
        for site in missing:
            values = points.get(site)
            if values is None:
                found[site] = DayTotals(source="none")
                continue
            found[site] = DayTotals(
                counters={n: v for n, v in values.items() if n in COUNTERS},
                revenue={
                    n.removeprefix(REVENUE_PREFIX): v
                    for n, v in values.items()
                    if n.startswith(REVENUE_PREFIX)
                },
                visitors=None,
                source="influx",
            )
    return found


def compare_day(
    day: str,
    sites: Sequence[str],
    stored: Mapping[str, DayTotals],
    recomputed: Mapping[str, DayTotals],
) -> list[Comparison]:
    """Every metric of every site, stored next to recomputed."""
    lines: list[Comparison] = []
    for site in sites:
        before = stored.get(site, DayTotals(source="none"))
        after = recomputed.get(site, DayTotals())
        old, new = before.metrics(), after.metrics()
        for metric in [*new, *(m for m in old if m not in new)]:
            lines.append(
                Comparison(day, site, metric, old.get(metric, 0), new.get(metric, 0), before.source)
            )
    return lines


def _show(metric: str, value: Number) -> str:
    if value is None:
        return "-"
    if metric.startswith(REVENUE_PREFIX):
        return f"{Decimal(int(value)) / REVENUE_SCALE:.6f}"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


HEADER: Final = ("day", "site", "metric", "stored", "recomputed", "difference", "source")


def format_comparisons(comparisons: Sequence[Comparison]) -> list[str]:
    """A fixed-width table, one line per comparison, under a header."""
    cells = [HEADER] + [
        (
            c.day,
            c.site,
            c.metric,
            _show(c.metric, c.stored),
            _show(c.metric, c.recomputed),
            _show(c.metric, c.diff),
            c.source,
        )
        for c in comparisons
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]
    right = {3, 4, 5}
    return [
        "  ".join(
            text.rjust(widths[i]) if i in right else text.ljust(widths[i])
            for i, text in enumerate(row)
        ).rstrip()
        for row in cells
    ]
