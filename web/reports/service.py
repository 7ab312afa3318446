"""Reports assembled from the sources that hold each part of a range.

Which source answers a minute (`plan`):

1. HBase, for every day the batch layer completed (`meta.batch_until` is where the unbroken
   run of them ends; a completed day after a gap is answered from HBase too);
2. the worker tables, for the last `report_tables_window_h` hours;
3. InfluxDB, for what lies between (or before the first batch day): counters exact,
   visitors only per minute, no breakdown rows.

Where no source holds what was asked (breakdowns and filtered series over 3) the part is
`unavailable`: `meta.complete` is false, a breakdown leaves it out and says so, a series
is null in the buckets that meet it and in its totals (never a number missing minutes).
Every source adds to the same per-bucket partials (web.reports.accumulate), so a bucket
that straddles two sources is still one merged sketch.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from footfall.metrics import MINUTE_MS
from footfall.settings import Settings
from footfall.visitors import SketchConfig
from web.reports.accumulate import SeriesAcc, ValuesAcc
from web.reports.gather import TablesSource
from web.reports.history import BatchSpan, HBaseSource, HistoryCache, InfluxSource, SourceError
from web.reports.intervals import bucket_range, floor_minute, iso, now_ms
from web.reports.local import Read
from web.reports.merge import AggBuilder, metric_values
from web.reports.params import BreakdownQuery, RealtimeQuery, SeriesQuery

log = logging.getLogger(__name__)

SourceName = Literal["hbase", "tables", "influxdb", "unavailable"]
REALTIME_MINUTES: Final = 30
REALTIME_VISITOR_MINUTES: Final = 5


@dataclass(frozen=True, slots=True)
class Segment:
    source: SourceName
    start: int
    end: int


def plan(start: int, end: int, batch: BatchSpan | None, tables_floor: int) -> list[Segment]:
    """The sources of [start, end), in time order (see the module docstring)."""
    cuts = {start, end, tables_floor}
    spans = batch.spans if batch is not None else ()
    for first, until in spans:
        cuts.update((first, until))
    points = sorted(c for c in cuts if start <= c <= end)
    segments: list[Segment] = []
    for a, b in itertools.pairwise(points):
        source: SourceName
        if any(first <= a and b <= until for first, until in spans):
            source = "hbase"
        elif a >= tables_floor:
            source = "tables"
        else:
            source = "influxdb"
        if segments and segments[-1].source == source:
            segments[-1] = Segment(source, segments[-1].start, b)
        else:
            segments.append(Segment(source, a, b))
    return segments


@dataclass(slots=True)
class Meta:
    batch_until: int | None = None
    sampled: bool = False
    sources: list[Segment] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: What the history cache keys on: the complete days (a newly completed one is new data).
    version: Any = None

    @property
    def complete(self) -> bool:
        return all(s.source != "unavailable" for s in self.sources)

    def unavailable(self) -> list[Segment]:
        return [s for s in self.sources if s.source == "unavailable"]

    def as_json(self, zone: ZoneInfo) -> dict[str, Any]:
        return {
            "batch_until": iso(self.batch_until, zone) if self.batch_until is not None else None,
            "sampled": self.sampled,
            "complete": self.complete,
            "sources": [
                {"from": iso(s.start, zone), "to": iso(s.end, zone), "source": s.source}
                for s in self.sources
            ],
            "warnings": self.warnings,
        }


def _missing_rows_warning(what: str, missing: list[Segment], zone: ZoneInfo, after: str) -> str:
    spans = ", ".join(f"{iso(s.start, zone)} to {iso(s.end, zone)}" for s in missing)
    return (
        f"no {what} rows for {spans}: the batch layer has not completed those days and the "
        f"worker tables hold recent hours only (InfluxDB keeps totals, no breakdowns); {after}"
    )


class Reports:
    """The report service: one per worker, shared by every request."""

    def __init__(
        self,
        settings: Settings,
        config: SketchConfig,
        tables: TablesSource,
        *,
        influx: InfluxSource | None = None,
        hbase: HBaseSource | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.settings = settings
        self.config = config
        self.tables = tables
        self.influx = influx
        self.hbase = hbase
        self.clock = clock
        self.cache = HistoryCache(
            config, settings.report_history_ttl_s, settings.report_cache_entries
        )

    def tables_floor(self, now: int) -> int:
        return floor_minute(now - int(self.settings.report_tables_window_h * 3_600_000))

    async def _segments(self, site: str, start: int, end: int, meta: Meta) -> list[Segment]:
        batch: BatchSpan | None = None
        if self.hbase is not None:
            try:
                batch = await self.hbase.batch_span(site)
            except SourceError as exc:
                # The stream's data still answers (InfluxDB holds what the batch rewrote).
                log.warning("batch_until unknown, answering from the stream: %s", exc)
                meta.warnings.append("the batch layer (HBase) is unreachable: stream data only")
        meta.batch_until = batch.until_ms if batch is not None else None
        meta.version = batch.spans if batch is not None else None
        return plan(start, end, batch, self.tables_floor(self.clock()))

    # --- timeseries ------------------------------------------------------------------------
    async def timeseries(self, site: str, q: SeriesQuery, authorization: str) -> dict[str, Any]:
        span, zone = q.span, q.span.zone
        buckets = bucket_range(span.start_ms, span.end_ms, q.interval, zone)
        acc = SeriesAcc(self.config, buckets.bounds)
        flt = q.filter
        read = Read(site, "total", "", None) if flt is None else Read(site, "filter", q.rows, flt)
        meta = Meta()
        for seg in await self._segments(site, span.start_ms, span.end_ms, meta):
            source: SourceName = seg.source
            if source == "tables":
                await self.tables.series(read, acc, seg.start, seg.end, authorization)
            elif source == "hbase" and self.hbase is not None:
                await self.cache.series(self.hbase, read, acc, seg.start, seg.end, meta.version)
            elif source == "influxdb" and self.influx is not None and read.mode == "total":
                await self.cache.series(self.influx, read, acc, seg.start, seg.end, None)
            else:
                source = "unavailable"
            meta.sources.append(Segment(source, seg.start, seg.end))

        # Per-bucket numbers and JSON-ready dicts of a long range take milliseconds of CPU:
        # off the event loop, so requests answered meanwhile do not queue behind them.
        def assemble() -> dict[str, Any]:
            meta.sampled = acc.total.rate_max > 1
            values = [metric_values(builder, q.metrics) for builder in acc.buckets]
            totals = metric_values(acc.total, q.metrics)
            missing = meta.unavailable()
            if missing:
                # Never a number that leaves minutes out: buckets meeting such a part, and the
                # totals, are null (the other buckets are exact).
                empty = dict.fromkeys(q.metrics)
                for seg in missing:
                    first, bounds = acc.sub_bounds(seg.start, seg.end)
                    for index in range(first, first + len(bounds) - 1):
                        values[index] = empty
                totals = empty
                meta.warnings.append(
                    _missing_rows_warning(
                        f"{q.rows} breakdown" if flt else "minute",
                        missing,
                        zone,
                        "buckets meeting them and the totals are null",
                    )
                )
            results = [
                {"t": iso(t, zone), **metrics}
                for t, metrics in zip(buckets.starts, values, strict=True)
            ]
            return {
                "site": site,
                "interval": q.interval,
                "tz": zone.key,
                "from": iso(span.start_ms, zone),
                "to": iso(span.end_ms, zone),
                "filters": flt.text if flt else None,
                "results": results,
                "totals": totals,
                "meta": meta.as_json(zone),
            }

        return await self.tables.run(assemble)

    # --- breakdown ---------------------------------------------------------------------------
    async def breakdown(self, site: str, q: BreakdownQuery, authorization: str) -> dict[str, Any]:
        span, zone = q.span, q.span.zone
        acc = ValuesAcc(self.config)
        group = q.dimension if q.rows != q.dimension else ""
        read = Read(site, "breakdown", q.rows, q.filter, group)
        meta = Meta()
        for seg in await self._segments(site, span.start_ms, span.end_ms, meta):
            source: SourceName = seg.source
            if source == "tables":
                await self.tables.values(read, acc, seg.start, seg.end, authorization)
            elif source == "hbase" and self.hbase is not None:
                await self.cache.values(self.hbase, read, acc, seg.start, seg.end, meta.version)
            else:
                source = "unavailable"
            meta.sources.append(Segment(source, seg.start, seg.end))

        def assemble() -> dict[str, Any]:
            missing = meta.unavailable()
            if missing:
                meta.warnings.append(
                    _missing_rows_warning(
                        f"{q.rows} breakdown",
                        missing,
                        zone,
                        "these results leave them out (meta.complete is false)",
                    )
                )
            rows = [
                (value, metric_values(builder, q.metrics)) for value, builder in acc.values.items()
            ]
            meta.sampled = any(builder.rate_max > 1 for builder in acc.values.values())
            first = q.metrics[0]
            rows.sort(key=lambda row: (row[1][first] is None, -(row[1][first] or 0), row[0]))
            return {
                "site": site,
                "dimension": q.dimension,
                "tz": zone.key,
                "from": iso(span.start_ms, zone),
                "to": iso(span.end_ms, zone),
                "results": [{"value": value, **values} for value, values in rows[: q.limit]],
                "meta": meta.as_json(zone),
            }

        return await self.tables.run(assemble)

    # --- realtime ------------------------------------------------------------------------------
    async def realtime(self, site: str, q: RealtimeQuery, authorization: str) -> dict[str, Any]:
        zone = q.zone
        now = self.clock()
        end = floor_minute(now) + MINUTE_MS
        start = end - REALTIME_MINUTES * MINUTE_MS
        bounds = list(range(start, end + 1, MINUTE_MS))
        acc = SeriesAcc(self.config, bounds)
        await self.tables.series(Read(site, "total"), acc, start, end, authorization)
        recent = AggBuilder(self.config)
        for builder in acc.buckets[-REALTIME_VISITOR_MINUTES:]:
            recent.add_agg(builder.build())
        visitors = recent.visitors()
        return {
            "site": site,
            "tz": zone.key,
            "at": iso(now, zone),
            "visitors": round(visitors) if visitors is not None else None,
            "visitors_minutes": REALTIME_VISITOR_MINUTES,
            "pageviews": [
                {"t": iso(t, zone), "pageviews": metric_values(b, ("pageviews",))["pageviews"]}
                for t, b in zip(bounds, acc.buckets, strict=False)
            ],
            "meta": {"sampled": acc.total.rate_max > 1},
        }
