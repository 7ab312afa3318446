"""Rewriting recomputed days in InfluxDB, in the stream's own series (footfall.series).

The batch job writes the same points the stream writes: measurement `minute`, tags `site`
and `partition` (the Kafka partition of the events, which the archive keeps), every field.
First the window's old points are deleted (`DELETE FROM minute WHERE time >= .. AND
time < ..`, and `site = '..'` when only some sites are rewritten), which removes series the
recompute no longer has (a minute whose only events turned out to be bots); then the new
points are written. Because the series are the stream's, a later write of the stream for
the same minute (a late event, or a worker rewriting its buckets after a restart) replaces
the batch's point of that partition instead of adding to it: a minute is never counted
twice, whichever layer wrote last.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import pyarrow as pa

from batch.days import DayWindow
from batch.hbase import arrow_rows
from footfall.influx import InfluxClient, InfluxError, quote_ident, quote_literal
from footfall.metrics import COUNTERS
from footfall.series import MEASUREMENT, REVENUE_PREFIX, SITE_TAG, minute_fields, minute_line
from footfall.settings import Settings
from footfall.visitors import SketchConfig, Visitors

_SUM_PREFIX: Final = "sum_"
#: Waits between attempts of one InfluxDB call; every call here is idempotent (a delete,
#: or points that overwrite themselves), so a call that failed halfway is simply redone.
RETRY_DELAYS_S: Final = (1.0, 2.0, 4.0, 8.0)
log = logging.getLogger(__name__)
T = TypeVar("T")


async def _retried(call: Callable[[], Awaitable[T]]) -> T:
    for delay in RETRY_DELAYS_S:
        try:
            return await call()
        except InfluxError as exc:
            log.warning("InfluxDB call failed, retrying in %.0fs: %s", delay, exc)
            await asyncio.sleep(delay)
    return await call()


def visitors_of(config: SketchConfig, sketches: Mapping[int, bytes]) -> Visitors:
    """The per-rate sketches of a row as the stream's Visitors (estimate, merge)."""
    return Visitors.from_items(
        config, iter(sorted((int(rate), bytes(image)) for rate, image in sketches.items()))
    )


def point_line(config: SketchConfig, point: Any) -> str:
    """The line of one row of batch.compute's `points` frame."""
    visitors = visitors_of(config, point["sketches"])
    counts = {name: int(point[name]) for name in COUNTERS}
    revenue = {currency: int(units) for currency, units in (point["revenue"] or {}).items()}
    fields = minute_fields(counts, visitors.estimate(), revenue, visitors.max_rate())
    return minute_line(point["site"], str(point["partition"]), point["minute"], fields)


def _time_range(window: DayWindow) -> str:
    return f"time >= {window.start_ms}ms AND time < {window.cutoff_ms}ms"


def delete_statements(window: DayWindow, sites: Sequence[str] | None) -> list[str]:
    """InfluxQL removing the window's points (of `sites` only, when given)."""
    base = f"DELETE FROM {quote_ident(MEASUREMENT)} WHERE "
    if sites is None:
        return [base + _time_range(window)]
    return [
        f"{base}{quote_ident(SITE_TAG)} = {quote_literal(site)} AND {_time_range(window)}"
        for site in sites
    ]


async def delete_window(
    client: InfluxClient, window: DayWindow, sites: Sequence[str] | None
) -> None:
    """Delete the window's points (of `sites` only, when given)."""
    for statement in delete_statements(window, sites):
        await _retried(functools.partial(client.query, statement))


async def write_lines(client: InfluxClient, lines: Iterable[str], batch_points: int) -> int:
    """Write points in requests of `batch_points`; return how many were written."""
    written = 0
    chunk: list[str] = []
    for text in lines:
        chunk.append(text)
        if len(chunk) >= batch_points:
            await _write(client, chunk)
            written += len(chunk)
            chunk = []
    await _write(client, chunk)
    return written + len(chunk)


async def _write(client: InfluxClient, lines: list[str]) -> None:
    await _retried(functools.partial(client.write, lines))


@dataclass(frozen=True, slots=True)
class PointTarget:
    """Where an executor writes points, and how sketches are estimated (picklable)."""

    url: str
    db: str
    user: str
    password: str
    batch_points: int
    sketch: SketchConfig

    @classmethod
    def of(cls, settings: Settings) -> PointTarget:
        return cls(
            settings.influx_url,
            settings.influx_db,
            settings.influx_user,
            settings.influx_password.get_secret_value(),
            settings.influx_batch_points,
            SketchConfig(settings.hll_lg_k, settings.hll_type),
        )


def write_partition(target: PointTarget, points: Iterable[Any]) -> Iterator[int]:
    """`mapPartitions` body: write one partition of batch.compute's `points`, yield the count."""
    lines = (point_line(target.sketch, point) for point in points)

    async def write_all() -> int:
        async with InfluxClient(
            target.url, target.db, user=target.user, password=target.password, timeout_s=60
        ) as client:
            return await write_lines(client, lines, target.batch_points)

    yield asyncio.run(write_all())


def write_arrow(target: PointTarget, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """`mapInArrow` body: write one partition of batch.compute's `points`, yield the count
    (Arrow instead of pickled Rows, as batch.hbase.write_arrow)."""
    (written,) = write_partition(target, arrow_rows(batches))
    yield pa.RecordBatch.from_pydict({"written": [written]})


async def stored_totals(
    client: InfluxClient, window: DayWindow, sites: Sequence[str] | None
) -> dict[str, dict[str, int]]:
    """Per site, the window's counters and revenue as InfluxDB holds them (any writer).

    Visitors are left out: per-minute estimates do not add up to a day's distinct visitors.
    """
    where = _time_range(window)
    if sites is not None:
        if not sites:
            return {}
        either = " OR ".join(f"{quote_ident(SITE_TAG)} = {quote_literal(s)}" for s in sites)
        where = f"({either}) AND {where}"
    statement = f"SELECT sum(*) FROM {quote_ident(MEASUREMENT)} WHERE {where} GROUP BY {SITE_TAG}"
    series = await _retried(functools.partial(client.query, statement))
    totals: dict[str, dict[str, int]] = {}
    for one in series:
        site = one.get("tags", {}).get(SITE_TAG, "")
        for values in one["values"]:
            row = dict(zip(one["columns"], values, strict=True))
            into = totals.setdefault(site, {})
            for column, value in row.items():
                name = column.removeprefix(_SUM_PREFIX)
                if value is None or not column.startswith(_SUM_PREFIX):
                    continue
                if name in COUNTERS or name.startswith(REVENUE_PREFIX):
                    into[name] = int(value)
    return totals
