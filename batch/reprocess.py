"""Recomputing UTC days: the steps of one day's rewrite, in the order that keeps it safe.

For each day (batch.days gives its window):

1. compute everything with Spark (batch.compute), nothing written yet;
2. mark the sites' day `running` (batch.markers): from here until step 6 the reporting
   API does not take the day from HBase;
3. delete the sites' rows of the day (cells up to T), write the new rows (cells at T + 1,
   from the executors, `mapInArrow`);
4. rewrite the day's InfluxDB points (batch.influx);
5. (a crash anywhere above leaves `running`; the next run redoes the whole day)
6. mark the day `done` (closed) or `partial` (open), with its input counts.

"The sites" are those asked for (`--site`), or, for a run over all sites, every site with
events that day plus every site a run wrote on that day before (its stale rows must go).
A dry run stops after step 1 and compares the recomputed day totals with what is stored.
"""

from __future__ import annotations

import asyncio
import functools
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from pyspark.sql import DataFrame, SparkSession

from batch import hbase, influx, markers
from batch.compare import Comparison, compare_day, recomputed_totals, stored_totals
from batch.compute import DayFrames, JobRules, compute_day
from batch.days import DayWindow, day_window, now_ms
from batch.influx import delete_window
from batch.markers import DayState, SiteDayStats
from batch.reader import list_files, read_events
from footfall.influx import InfluxClient
from footfall.settings import Settings
from footfall.visitors import SketchConfig

_WRITTEN: Final = "written long"


#: Writer tasks per core. Adaptive execution coalesces the small result frames into a few
#: partitions (3 for a day of 1 M events), so on 2 cores the last one would write alone;
#: the writes cost far more than a shuffle of their rows.
WRITERS_PER_CORE: Final = 4


def _write_from_executors(frame: DataFrame, write: Callable[..., Any]) -> int:
    """Run a `mapInArrow` writer over `frame`; return the rows it wrote."""
    frame = frame.repartition(frame.sparkSession.sparkContext.defaultParallelism * WRITERS_PER_CORE)
    with warnings.catch_warnings():
        # mapInArrow checks the pandas version and warns about pandas >= 3, which it does
        # not use (footfall.spark_session); test runs turn warnings into errors.
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
        )
        counts = frame.mapInArrow(write, _WRITTEN)
    return sum(int(row["written"]) for row in counts.collect())


def _quiet(phase: str) -> None:
    pass


def job_rules(settings: Settings) -> JobRules:
    return JobRules(
        session_timeout_s=settings.session_timeout_s,
        lg_k=settings.hll_lg_k,
        dedupe_margin_ms=settings.batch_dedupe_margin_s * 1000,
    )


@dataclass(slots=True)
class DayOutcome:
    """What one day's run did (or, for a dry run, found)."""

    window: DayWindow
    state: DayState | None = None  # None: nothing written (dry run, or nothing to do yet)
    sites: int = 0
    read: int = 0
    counted: int = 0
    rows: int = 0
    points: int = 0
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step
    comparisons: list[Comparison] = field(default_factory=list)

    def summary(self) -> str:
        if self.window.empty:
            return f"{self.window.label}  not begun yet: nothing to recompute"
        state = self.state.value if self.state is not None else "dry-run"
        phases = " ".join(f"{name}={seconds:.1f}s" for name, seconds in self.phases.items())
        return (
            f"{self.window.label}  {state:<8} sites={self.sites} read={self.read} "
            f"counted={self.counted} rows={self.rows} points={self.points} "
            f"{self.seconds:.1f}s ({phases})"
        )


class Reprocessor:
    """Recomputes days with one SparkSession and the given settings."""

    def __init__(self, settings: Settings, spark: SparkSession, now: int | None = None) -> None:
        self.settings = settings
        self.spark = spark
        self.rules = job_rules(settings)
        self.sketch = SketchConfig(settings.hll_lg_k, settings.hll_type)
        self.now = now if now is not None else now_ms()
        self._last_version = 0

    def window(self, day: date) -> DayWindow:
        return day_window(day, self.now, self.settings.batch_close_delay_s)

    def frames(self, window: DayWindow, sites: Sequence[str] | None) -> DayFrames:
        margin = self.rules.dedupe_margin_ms
        files = list_files(
            self.settings.archive_url, window.start_ms - margin, window.end_ms + margin
        )
        raw = read_events(self.spark, files, sites)
        return compute_day(raw, window, self.rules)

    def run_day(
        self,
        day: date,
        sites: Sequence[str] | None,
        *,
        dry_run: bool,
        on_phase: Callable[[str], None] | None = None,
    ) -> DayOutcome:
        """Recompute one day (module docstring); `on_phase` hears each step as it starts."""
        phase = on_phase or _quiet
        began = time.monotonic()
        window = self.window(day)
        outcome = DayOutcome(window)
        if window.empty:
            return outcome
        frames = self.frames(window, sites)
        try:
            phase("sessions")
            stats = {
                row["site"]: SiteDayStats(row["read"], row["bots"], row["counted"])
                for row in frames.site_stats.collect()
            }
            outcome.phases["sessions"] = time.monotonic() - began
            outcome.read = sum(s.read for s in stats.values())
            outcome.counted = sum(s.counted for s in stats.values())
            if dry_run:
                phase("compare")
                outcome.comparisons = self._compare(frames, sites, stats)
                outcome.sites = len({c.site for c in outcome.comparisons})
            else:
                self._write(frames, sites, stats, outcome, phase)
        finally:
            frames.release()
        outcome.seconds = time.monotonic() - began
        return outcome

    # --- writing ----------------------------------------------------------------------
    def _version(self) -> int:
        """T of this day's cells (module docstring), above every T this process used."""
        version = max(now_ms(), self._last_version + 3)
        self._last_version = version
        return version

    def _write(
        self,
        frames: DayFrames,
        sites: Sequence[str] | None,
        stats: dict[str, SiteDayStats],
        outcome: DayOutcome,
        phase: Callable[[str], None],
    ) -> None:
        window = frames.window
        day = window.label
        all_sites = sites is None
        version = self._version()
        phase("delete")
        connection = hbase.connect(self.settings)
        try:
            hbase.ensure_tables(connection)
            if all_sites:
                targets = sorted(set(stats) | set(markers.sites_of_day(connection, day)))
            else:
                targets = sorted(set(sites or ()))
            markers.begin(connection, day, targets, version, all_sites=all_sites)
            for site in targets:
                hbase.delete_site_day(connection, site, window.start_ms, window.end_ms, version)
        finally:
            connection.close()

        phase("hbase rows")
        began = time.monotonic()
        outcome.rows = self._write_rows(frames, hbase.RowTarget.of(self.settings, version + 1))
        outcome.phases["hbase"] = time.monotonic() - began
        phase("influx points")
        began = time.monotonic()
        outcome.points = self._rewrite_influx(frames, sites)
        outcome.phases["influx"] = time.monotonic() - began

        state = DayState.DONE if window.closed else DayState.PARTIAL
        details = {
            "cutoff": window.cutoff_ms,
            "session_timeout_s": self.rules.session_timeout_s,
            "lg_k": self.rules.lg_k,
        }
        phase("markers")
        connection = hbase.connect(self.settings)
        try:
            site_stats = {site: stats.get(site, SiteDayStats()) for site in targets}
            markers.finish(
                connection,
                day,
                site_stats,
                state,
                details,
                version,
                all_sites=all_sites and window.closed,
            )
        finally:
            connection.close()
        outcome.state = state
        outcome.sites = len(targets)

    def _write_rows(self, frames: DayFrames, target: hbase.RowTarget) -> int:
        """Rows written by the executors, each task with its own Thrift connection."""
        write = functools.partial(hbase.write_arrow, target)
        return _write_from_executors(frames.rows, write)

    def _rewrite_influx(self, frames: DayFrames, sites: Sequence[str] | None) -> int:
        """Delete the window's points (driver), then write the new ones (executors)."""
        chosen = None if sites is None else sorted(set(sites))

        async def delete() -> None:
            async with InfluxClient.from_settings(self.settings, timeout_s=60) as client:
                await delete_window(client, frames.window, chosen)

        asyncio.run(delete())
        write = functools.partial(influx.write_arrow, influx.PointTarget.of(self.settings))
        return _write_from_executors(frames.points, write)

    # --- dry run ----------------------------------------------------------------------
    def _compare(
        self, frames: DayFrames, sites: Sequence[str] | None, stats: dict[str, SiteDayStats]
    ) -> list[Comparison]:
        recomputed = recomputed_totals(self.sketch, frames.totals.collect())
        connection = hbase.connect(self.settings)
        try:
            hbase.ensure_tables(connection)
            if sites is None:
                day_sites = markers.sites_of_day(connection, frames.window.label)
                targets = sorted(set(stats) | set(recomputed) | set(day_sites))
            else:
                targets = sorted(set(sites))
            stored = asyncio.run(
                stored_totals(self.settings, connection, frames.window, targets, self.sketch)
            )
        finally:
            connection.close()
        return compare_day(frames.window.label, targets, stored, recomputed)
