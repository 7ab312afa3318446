"""The sources of minutes older than the tables hold: HBase (batch truth) and InfluxDB.

- HBase (`batch.store.BatchStore`): the batch layer's rows of the days it completed,
  counters and per-rate sketches per minute and per dimension value; `batch_until` says
  how far they go. happybase is synchronous, so every call runs in one thread of its own
  (one connection, never shared between threads).
- InfluxDB (footfall.series): the `minute` points, summed over partitions per minute:
  counters, revenue and a visitors estimate per minute, no sketches and no breakdowns.

History changes seldom (a late event, a batch rerun), so `HistoryCache` keeps merged
partials of the spans asked for, for `report_history_ttl_s`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from footfall.influx import InfluxClient, InfluxError, quote_ident, quote_literal
from footfall.metrics import COUNTERS, DAY_MS
from footfall.series import MEASUREMENT, REVENUE_PREFIX, SAMPLE_RATE_FIELD, SITE_TAG, VISITORS_FIELD
from footfall.settings import Settings
from footfall.visitors import SketchConfig
from web.reports.accumulate import SeriesAcc, ValuesAcc
from web.reports.local import Read
from web.reports.merge import Agg, counts_of, iter_sketches

log = logging.getLogger(__name__)
T = TypeVar("T")
_SUM = "sum_"


class SourceError(RuntimeError):
    """A source could not answer (the report is a 503 saying which and why)."""


class HistorySource(Protocol):
    name: str

    async def series(self, read: Read, acc: SeriesAcc, start: int, end: int) -> None: ...

    async def values(self, read: Read, acc: ValuesAcc, start: int, end: int) -> None: ...


# --- HBase -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BatchSpan:
    """The days the batch layer completed for a site.

    [first_ms, until_ms) is the unbroken run from the first complete day (`until_ms` is
    `meta.batch_until`); `days` holds every complete day as merged [start, end) spans,
    those after a gap (a day being redone) included, empty meaning the run alone.
    """

    first_ms: int
    until_ms: int
    days: tuple[tuple[int, int], ...] = ()

    @property
    def spans(self) -> tuple[tuple[int, int], ...]:
        return self.days or ((self.first_ms, self.until_ms),)


def day_spans(starts: Iterable[int], day_ms: int) -> tuple[tuple[int, int], ...]:
    """Day starts (epoch ms) as merged [start, end) spans, in time order."""
    spans: list[tuple[int, int]] = []
    for start in sorted(set(starts)):
        if spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], start + day_ms)
        else:
            spans.append((start, start + day_ms))
    return tuple(spans)


class HBaseSource:
    """Reads of the batch layer's HBase tables (batch.store), in a thread of their own."""

    name = "hbase"

    def __init__(self, settings: Settings, config: SketchConfig) -> None:
        self.settings = settings
        self.config = config
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reports-hbase")
        self._store: Any = None
        self._spans: dict[str, tuple[float, BatchSpan | None]] = {}

    def _batch_store(self) -> Any:
        if self._store is None:
            from batch.store import BatchStore  # happybase and batch/ only where HBase is used

            self._store = BatchStore(self.settings)
        return self._store

    async def _call(self, fun: Callable[[Any], T]) -> T:
        def run() -> T:
            try:
                return fun(self._batch_store())
            except Exception as exc:
                # HBase's Thrift server closes connections idle for longer than its read
                # timeout (60 s by default), so the first read after a quiet minute fails
                # on a dead socket. Reads are idempotent: once more, on a new connection.
                log.info("HBase read failed (%r); retrying on a new connection", exc)
                self._reset()
            try:
                return fun(self._batch_store())
            except Exception:
                self._reset()
                raise

        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, run)
        except Exception as exc:
            raise SourceError(
                f"HBase at {self.settings.hbase_host}:{self.settings.hbase_port}: {exc!r}"
            ) from exc

    def _reset(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            try:
                store.close()
            except Exception as exc:  # a broken connection may fail to close too
                log.debug("closing the HBase connection: %r", exc)

    async def batch_span(self, site: str) -> BatchSpan | None:
        """The site's completed days (cached for report_batch_range_ttl_s); None: none yet."""
        now = time.monotonic()
        cached = self._spans.get(site)
        if cached is not None and now - cached[0] < self.settings.report_batch_range_ttl_s:
            return cached[1]

        def read(store: Any) -> BatchSpan | None:
            from batch.days import day_start_ms

            try:
                found = store.batch_range(site)
                days = store.complete_days(site) if found is not None else set()
            except Exception as exc:
                if "TableNotFoundException" in repr(exc):
                    return None  # no batch run has created its tables yet
                raise
            if found is None:
                return None
            spans = day_spans((day_start_ms(d) for d in days), DAY_MS)
            return BatchSpan(day_start_ms(found.first), found.until_ms, spans)

        span = await self._call(read)
        if len(self._spans) > 10_000:
            self._spans.clear()
        self._spans[site] = (now, span)
        return span

    async def series(self, read: Read, acc: SeriesAcc, start: int, end: int) -> None:
        def fill(store: Any) -> None:
            if read.mode == "total":
                for row in store.minutes(read.site, start, end):
                    acc.add(
                        row.minute,
                        counts_of(row.counters),
                        row.revenue,
                        row.sample_rate_max,
                        dict(iter_sketches(row.sketches.items())),
                    )
                return
            matches = read.matcher()
            for row in store.breakdown(read.site, read.dimension, start, end):
                if matches is None or matches(row.value):
                    acc.add(
                        row.minute,
                        counts_of(row.counters),
                        None,
                        row.sample_rate_max,
                        dict(iter_sketches(row.sketches.items())),
                    )

        await self._call(fill)

    async def values(self, read: Read, acc: ValuesAcc, start: int, end: int) -> None:
        def fill(store: Any) -> None:
            matches, group = read.matcher(), read.grouper()
            for row in store.breakdown(read.site, read.dimension, start, end):
                if matches is None or matches(row.value):
                    acc.add(
                        group(row.value),
                        counts_of(row.counters),
                        row.sample_rate_max,
                        dict(iter_sketches(row.sketches.items())),
                    )

        await self._call(fill)

    def close(self) -> None:
        self._executor.submit(self._reset)
        self._executor.shutdown(wait=False)


# --- InfluxDB --------------------------------------------------------------------------------
class InfluxSource:
    """Per-minute sums of the `minute` points of a site (no sketches, no breakdowns)."""

    name = "influxdb"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: InfluxClient | None = None

    def _influx(self) -> InfluxClient:
        if self._client is None:
            self._client = InfluxClient.from_settings(self.settings)
        return self._client

    async def series(self, read: Read, acc: SeriesAcc, start: int, end: int) -> None:
        if read.mode != "total":
            raise SourceError("InfluxDB holds no breakdowns")
        statement = (
            f"SELECT sum(*), max({quote_ident(SAMPLE_RATE_FIELD)}) FROM {quote_ident(MEASUREMENT)} "
            f"WHERE {quote_ident(SITE_TAG)} = {quote_literal(read.site)} "
            f"AND time >= {start}ms AND time < {end}ms GROUP BY time(1m) fill(none)"
        )
        try:
            found = await self._influx().query(statement)
        except InfluxError as exc:
            raise SourceError(str(exc)) from exc
        for series in found:
            columns = series["columns"]
            for values in series["values"]:
                row = dict(zip(columns, values, strict=True))
                counters = {name: int(row.get(_SUM + name) or 0) for name in COUNTERS}
                revenue = {
                    column[len(_SUM + REVENUE_PREFIX) :]: int(value)
                    for column, value in row.items()
                    if column.startswith(_SUM + REVENUE_PREFIX) and value is not None
                }
                visitors = float(row.get(_SUM + VISITORS_FIELD) or 0.0)
                agg = Agg(
                    counts_of(counters),
                    revenue,
                    int(row.get("max") or 1),
                    {},
                    visitors,
                    1,
                )
                acc.add_loose(int(row["time"]), agg)

    async def values(self, read: Read, acc: ValuesAcc, start: int, end: int) -> None:
        raise SourceError("InfluxDB holds no breakdowns")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


# --- the cache -------------------------------------------------------------------------------
class HistoryCache:
    """Merged partials of history spans, reused for `ttl_s` (LRU, at most `entries`)."""

    def __init__(self, config: SketchConfig, ttl_s: float, entries: int) -> None:
        self.config = config
        self.ttl_s = ttl_s
        self.entries = entries
        self._data: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def _get(self, key: Hashable) -> Any:
        found = self._data.get(key)
        if found is None or time.monotonic() - found[0] > self.ttl_s:
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return found[1]

    def _put(self, key: Hashable, value: Any) -> None:
        if self.entries <= 0:
            return
        self._data[key] = (time.monotonic(), value)
        self._data.move_to_end(key)
        while len(self._data) > self.entries:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()

    async def series(
        self, source: HistorySource, read: Read, acc: SeriesAcc, start: int, end: int, version: Any
    ) -> None:
        first, bounds = acc.sub_bounds(start, end)
        key = ("series", source.name, read, tuple(bounds), version)
        cached: tuple[list[Agg], Agg] | None = self._get(key)
        if cached is None:
            part = SeriesAcc(self.config, bounds)
            await source.series(read, part, start, end)
            cached = ([b.build() for b in part.buckets], part.total.build())
            self._put(key, cached)
        acc.add_buckets(first, cached[0], cached[1])

    async def values(
        self, source: HistorySource, read: Read, acc: ValuesAcc, start: int, end: int, version: Any
    ) -> None:
        key = ("values", source.name, read, start, end, version)
        cached: dict[str, Agg] | None = self._get(key)
        if cached is None:
            part = ValuesAcc(self.config)
            await source.values(read, part, start, end)
            cached = {value: b.build() for value, b in part.values.items()}
            self._put(key, cached)
        acc.add_values(cached)
