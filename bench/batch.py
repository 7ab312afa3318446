"""Events per second of the batch job (Spark local[2]) against DuckDB on the same Parquet.

Run: ``.venv/bin/python bench/batch.py [--events 1000000 10000000] [--no-full]`` with the
stack up (``footfall stack up``: the full job writes HBase and InfluxDB).

1. An archive of N events over one UTC day is generated once per N and kept outside the
   repo (``<cache_dir>/bench-batch/archive-<N>``), in the archive's own layout and schema
   (footfall.archive): 50 sites (a few large, many small), ~5 events per visitor with gaps
   that cut sessions, 1 % retried sends (duplicate ids), 3 % bot visitors, 5 % of visitors
   sampled at rate 4, revenue in INR and USD, 8 Kafka partitions, files of <= 50,000
   events per partition and hour.
2. "minutes": the per-minute counters (events, pageviews, transactions, sessions, bounces,
   duration_sum) and visitors per site and minute, with duplicates dropped, bots left out
   and sessions cut, computed
   - by the batch job's Spark code (batch.compute, the minutes rows, collected), and
   - by DuckDB from the same files with the same rules in SQL (approx_count_distinct for
     visitors); the counters of the two are compared, and must agree exactly.
3. "full job": `Reprocessor.run_day`, everything the job does for the day: the minute and
   breakdown rows written to HBase, the points to InfluxDB, the markers (tables and a
   database of their own, dropped afterwards).

Peak memory is sampled every 0.2 s from /proc: the driver JVM, this Python process (the
PySpark driver) and the Python workers the JVM starts. Prints a table; asserts nothing
except that Spark and DuckDB agree.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/batch.py` puts bench/ first on sys.path, where this file would shadow the
# batch package it measures: the repository root goes before it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import functools
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from batch import hbase
from batch.compute import EVENT_COUNTS, SESSION_COUNTS, compute_day
from batch.days import day_start_ms, day_window
from batch.reader import list_files, read_events
from batch.reprocess import Reprocessor, job_rules
from footfall.archive import ARCHIVE_SCHEMA, file_name, hour_dir
from footfall.influx import quote_ident
from footfall.metrics import DAY_MS
from footfall.settings import Settings, get_settings
from footfall.spark_session import build_session
from footfall.stack.base import proc_status_kib
from footfall.stack.influxdb import InfluxDB

DAY = date(2026, 11, 2)  # recent enough for InfluxDB's 400-day retention
PARTITIONS = 8
FILE_EVENTS = 50_000
SITES = 50
COUNTERS = (*EVENT_COUNTS, *SESSION_COUNTS)
T = TypeVar("T")


# --- the archive ------------------------------------------------------------------------------
def generate(n: int, root: Path, seed: int = 11) -> int:
    """Write about n events of DAY under root (see the module docstring); return the files."""
    rng = np.random.default_rng(seed)
    lo = day_start_ms(DAY)
    visitors = n // 5
    per_visitor = np.minimum(1 + rng.geometric(0.22, visitors), 40)
    visitors = int(np.searchsorted(np.cumsum(per_visitor), n)) + 1
    per_visitor = per_visitor[:visitors]
    owner = np.repeat(np.arange(visitors), per_visitor)
    total = len(owner)
    first = np.concatenate(([0], np.cumsum(per_visitor)[:-1]))
    is_first = np.zeros(total, dtype=bool)
    is_first[first] = True

    site_weights = 1.0 / np.arange(1, SITES + 1)
    site_of_visitor = rng.choice(SITES, visitors, p=site_weights / site_weights.sum())
    bot_visitor = rng.random(visitors) < 0.03
    rate_of_visitor = np.where(rng.random(visitors) < 0.05, 4, 1)
    start = lo + rng.integers(0, DAY_MS - 3 * 3_600_000, visitors)
    gaps = np.where(
        rng.random(total) < 0.85,
        rng.integers(5_000, 600_000, total),
        rng.integers(1_200_000, 3_600_000, total),
    )
    gaps[is_first] = 0
    offsets_in_visitor = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first], per_visitor)
    event_time = np.minimum(start[owner] + offsets_in_visitor, lo + DAY_MS - 1)

    roll = rng.random(total)
    purchase = roll < 0.06
    custom = (roll >= 0.06) & (roll < 0.18)
    pages = np.array([f"/p/{i}" for i in range(200)], dtype=object)
    page_weights = 1.0 / np.arange(1, 201)
    path = pages[rng.choice(200, total, p=page_weights / page_weights.sum())]
    path[purchase] = "/checkout"
    names = np.where(purchase, "purchase", np.where(custom, "signup", "pageview"))

    def pick(values: list[str], size: int) -> np.ndarray[Any, Any]:
        return np.array(values, dtype=object)[rng.integers(0, len(values), size)]

    attrs = {
        "source": pick(
            ["direct", "google.com", "bing.com", "newsletter", "t.co", "fb.com"], visitors
        ),
        "country": pick(["IN", "US", "DE", "BR", "GB", "FR", "JP", "ID"], visitors),
        "device": pick(["desktop", "mobile", "tablet"], visitors),
        "browser": pick(["Chrome", "Firefox", "Safari", "Edge", "Samsung Internet"], visitors),
        "os": pick(["Windows", "Android", "iOS", "Mac OS X", "Linux"], visitors),
    }
    attrs["device"][bot_visitor] = "bot"
    campaign = pick(["spring", "launch", "retarget", "brand", "sale"], visitors)
    campaign[rng.random(visitors) < 0.8] = None

    amount = np.round(rng.uniform(1, 500, total), 2)
    currency = np.where(rng.random(total) < 0.6, "INR", "USD")
    received = event_time + rng.integers(50, 5_000, total)
    ids = np.array([f"e{i}" for i in range(total)], dtype=object)
    visitor_ids = np.array([f"v{i}" for i in range(visitors)], dtype=object)

    index = np.arange(total)
    duplicates = index[rng.random(total) < 0.01]  # retried sends: same event, later
    rows = np.concatenate((index, duplicates))
    received_all = np.concatenate((received, received[duplicates] + 1_500))
    partition = (owner[rows] % PARTITIONS).astype(np.int32)

    revenue = pa.StructArray.from_arrays(
        [_array(amount[rows], pa.float64()), _array(currency[rows], pa.string())],
        names=["amount", "currency"],
    )
    revenue = pc.if_else(pa.array(purchase[rows]), revenue, pa.nulls(len(rows), revenue.type))
    site_names = np.array([f"site{i:02d}" for i in range(SITES)], dtype=object)
    path_rows = path[rows]
    columns: dict[str, Any] = {
        "site": site_names[site_of_visitor[owner[rows]]],
        "name": names[rows],
        "url": np.array(["https://shop.example" + p for p in path_rows], dtype=object),
        "visitor": visitor_ids[owner[rows]],
        "id": ids[rows],
        "ts": event_time[rows],
        "referrer": None,
        "title": None,
        "props": None,
        "revenue": revenue,
        "screen": None,
        "lang": None,
        "received_at": received_all,
        "event_time": event_time[rows],
        "bot": bot_visitor[owner[rows]],
        "sample_rate": rate_of_visitor[owner[rows]].astype(np.int64),
        "path": path_rows,
        "utm_source": None,
        "utm_medium": None,
        "utm_campaign": campaign[owner[rows]],
        "kafka_partition": partition,
    }
    for name, values in attrs.items():
        columns[name] = values[owner[rows]]
    # Offsets: per partition, in the order the gateway published (received_at).
    order = np.lexsort((received_all, partition))
    offset = np.empty(len(rows), dtype=np.int64)
    sorted_partition = partition[order]
    starts = np.searchsorted(sorted_partition, np.arange(PARTITIONS))
    offset[order] = np.arange(len(rows)) - starts[sorted_partition]
    columns["kafka_offset"] = offset

    arrays = []
    for spec in ARCHIVE_SCHEMA:
        value = columns[spec.name]
        if value is None:
            arrays.append(pa.nulls(len(rows), spec.type))
        elif isinstance(value, pa.Array):
            arrays.append(value)
        else:
            arrays.append(_array(value, spec.type))
    table = pa.Table.from_arrays(arrays, schema=ARCHIVE_SCHEMA).take(pa.array(order))
    # One file per partition, flush (FILE_EVENTS events in offset order) and hour.
    hour = table["event_time"].to_numpy() // 3_600_000
    chunk = table["kafka_offset"].to_numpy() // FILE_EVENTS
    part = table["kafka_partition"].to_numpy()
    keys = np.stack((part, chunk, hour))
    groups, group_of = np.unique(keys, axis=1, return_inverse=True)
    files = 0
    for g in range(groups.shape[1]):
        subset = table.filter(pa.array(group_of.ravel() == g))
        offsets = subset["kafka_offset"].to_numpy()
        directory = root / hour_dir(int(groups[2, g]) * 3_600_000)
        directory.mkdir(parents=True, exist_ok=True)
        name = file_name(int(groups[0, g]), int(offsets.min()), int(offsets.max()))
        pq.write_table(subset, directory / name, compression="zstd")
        files += 1
    return files


def _array(values: Any, kind: pa.DataType) -> pa.Array:
    """An Arrow array of numpy values (pyarrow chunks large string conversions)."""
    array = pa.array(values, type=kind)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def archive_for(settings: Settings, n: int) -> tuple[Path, int]:
    root = settings.cache_dir / "bench-batch" / f"archive-{n}"
    stamp = root / ".complete"
    if not stamp.exists():
        began = time.monotonic()
        if root.exists():
            import shutil

            shutil.rmtree(root)
        root.mkdir(parents=True)
        # In a process of its own, so that the arrays it builds do not count in the
        # driver's memory measured below.
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            files = pool.apply(generate, (n, root))
        stamp.write_text(str(files))
        print(f"generated {n:,} events in {files} files in {time.monotonic() - began:.0f}s")
    rows = pq.ParquetDataset(str(root)).read(columns=["id"]).num_rows
    return root, rows


# --- memory ------------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    """Children of every thread of pid (the JVM forks its Python workers from its threads)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return ""


@dataclass
class Peaks:
    """Peak RSS in MiB: driver JVM, Python driver, Python workers, and all together."""

    jvm: float = 0.0
    driver: float = 0.0
    workers: float = 0.0
    total: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        import os

        me = os.getpid()
        driver = proc_status_kib(me, "VmRSS")
        jvm = workers = 0
        stack = _children(me)
        while stack:
            pid = stack.pop()
            rss = proc_status_kib(pid, "VmRSS")
            if _name(pid) == "java":
                jvm += rss
            elif _name(pid).startswith("python"):
                workers += rss
            stack += _children(pid)
        mib = 1024.0
        self.jvm = max(self.jvm, jvm / mib)
        self.driver = max(self.driver, driver / mib)
        self.workers = max(self.workers, workers / mib)
        self.total = max(self.total, (jvm + driver + workers) / mib)


@contextmanager
def sampled() -> Iterator[Peaks]:
    peaks = Peaks()

    def loop() -> None:
        while not peaks._stop.wait(0.2):
            peaks.sample()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield peaks
    finally:
        peaks._stop.set()
        thread.join()
        peaks.sample()


@contextmanager
def progress(spark: Any, what: str, peaks: Peaks, every_s: float = 30.0) -> Iterator[None]:
    """Every `every_s`, a line on stderr: elapsed time, Spark's active stages with their
    tasks done / total, and the peak memory so far (a 10 M run takes most of an hour)."""
    stop = threading.Event()
    began = time.monotonic()
    tracker = spark.sparkContext.statusTracker()

    def loop() -> None:
        while not stop.wait(every_s):
            stages = []
            for stage_id in sorted(tracker.getActiveStageIds()):
                info = tracker.getStageInfo(stage_id)
                if info is not None:
                    stages.append(f"stage {stage_id} {info.numCompletedTasks}/{info.numTasks}")
            print(
                f"  [{what}] {time.monotonic() - began:6.0f}s  "
                f"{', '.join(stages) or 'no Spark stage running'}  "
                f"peak {peaks.total:,.0f} MiB",
                file=sys.stderr,
                flush=True,
            )

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def timed(call: Callable[[], T]) -> tuple[T, float]:
    began = time.monotonic()
    result = call()
    return result, time.monotonic() - began


# --- the two engines ---------------------------------------------------------------------------
def spark_minutes(settings: Settings, spark: Any) -> dict[tuple[str, int], tuple[int, ...]]:
    window = day_window(DAY, day_start_ms(DAY) + 2 * DAY_MS, settings.batch_close_delay_s)
    margin = settings.batch_dedupe_margin_s * 1000
    files = list_files(settings.archive_url, window.start_ms - margin, window.end_ms + margin)
    frames = compute_day(read_events(spark, files), window, job_rules(settings))
    try:
        rows = frames.rows.where(frames.rows["table"] == hbase.MINUTES).collect()
    finally:
        frames.release()
    return {(r["site"], r["minute"]): tuple(int(r["counters"][c]) for c in COUNTERS) for r in rows}


DUCKDB_MINUTES = """
WITH raw AS (
  SELECT site, id, visitor, name, event_time, received_at, bot, sample_rate, revenue,
         kafka_partition, kafka_offset
  FROM read_parquet($files)
  WHERE event_time >= $lo - $margin AND event_time < $hi + $margin
), kept AS (
  SELECT * FROM (
    SELECT *, row_number() OVER (
      PARTITION BY site, id ORDER BY received_at, kafka_partition, kafka_offset) AS copy
    FROM raw WHERE NOT bot)
  WHERE copy = 1 AND event_time >= $lo AND event_time < $hi
), ordered AS (
  SELECT *, lag(event_time) OVER w AS previous,
         event_time - event_time % 60000 AS minute
  FROM kept
  WINDOW w AS (PARTITION BY site, visitor ORDER BY event_time, kafka_partition, kafka_offset, id)
), numbered AS (
  SELECT *, sum(CASE WHEN previous IS NULL
                       OR event_time // 86400000 <> previous // 86400000
                       OR event_time - previous > $timeout_ms THEN 1 ELSE 0 END)
            OVER (PARTITION BY site, visitor
                  ORDER BY event_time, kafka_partition, kafka_offset, id
                  ROWS UNBOUNDED PRECEDING) AS session
  FROM ordered
), sessions AS (
  SELECT site, min(event_time) AS start, max(event_time) AS last, count(*) AS n,
         first(sample_rate ORDER BY event_time, kafka_partition, kafka_offset, id) AS rate
  FROM numbered GROUP BY site, visitor, session
), by_event AS (
  SELECT site, minute, sum(sample_rate) AS events,
         sum(CASE WHEN name = 'pageview' THEN sample_rate ELSE 0 END) AS pageviews,
         sum(CASE WHEN revenue IS NOT NULL THEN sample_rate ELSE 0 END) AS transactions,
         approx_count_distinct(visitor) AS visitors
  FROM numbered GROUP BY site, minute
), by_session AS (
  SELECT site, start - start % 60000 AS minute, sum(rate) AS sessions,
         sum(CASE WHEN n = 1 THEN rate ELSE 0 END) AS bounces,
         sum((last - start) * rate) AS duration_sum
  FROM sessions GROUP BY site, start - start % 60000
)
SELECT e.site, e.minute, e.events, e.pageviews, e.transactions,
       coalesce(s.sessions, 0), coalesce(s.bounces, 0), coalesce(s.duration_sum, 0),
       e.visitors
FROM by_event e LEFT JOIN by_session s USING (site, minute)
"""


def duckdb_minutes(settings: Settings) -> dict[tuple[str, int], tuple[int, ...]]:
    lo = day_start_ms(DAY)
    margin = settings.batch_dedupe_margin_s * 1000
    files = [
        url.removeprefix("file://")
        for url in list_files(settings.archive_url, lo - margin, lo + DAY_MS + margin)
    ]
    connection = duckdb.connect()
    connection.execute("SET threads = 2")
    rows = connection.execute(
        DUCKDB_MINUTES,
        {
            "files": files,
            "lo": lo,
            "hi": lo + DAY_MS,
            "margin": margin,
            "timeout_ms": settings.session_timeout_s * 1000,
        },
    ).fetchall()
    connection.close()
    return {(r[0], r[1]): tuple(int(v) for v in r[2:8]) for r in rows}


def full_job(settings: Settings, spark: Any) -> tuple[int, int]:
    tag = uuid.uuid4().hex[:8]
    isolated = settings.model_copy(
        update={"hbase_table_prefix": f"ffbench_{tag}", "influx_db": f"ffbench_{tag}"}
    )
    InfluxDB(isolated).ensure_database(isolated.influx_db)
    try:
        outcome = Reprocessor(isolated, spark).run_day(DAY, None, dry_run=False)
        print(outcome.summary(), file=sys.stderr, flush=True)
        return outcome.rows, outcome.points
    finally:
        connection = hbase.connect(isolated)
        try:
            hbase.drop_tables(connection)
        finally:
            connection.close()
        InfluxDB(isolated).run_query(f"DROP DATABASE {quote_ident(isolated.influx_db)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--no-full", action="store_true", help="skip the full job (writes)")
    parser.add_argument("--driver-memory", default=None, help="default: batch_driver_memory")
    args = parser.parse_args()
    base = get_settings()
    memory = args.driver_memory or base.batch_driver_memory
    spark = build_session("footfall-bench-batch", "local[2]", driver_memory=memory)
    spark.range(1000).count()  # start the JVM before anything is timed
    results = []
    for n in args.events:
        root, rows = archive_for(base, n)
        settings = base.model_copy(update={"archive_url": str(root)})
        files = len(list(root.glob("dt=*/hour=*/*.parquet")))
        with sampled() as peak_minutes, progress(spark, f"{n:,} spark minutes", peak_minutes):
            spark_rows, spark_s = timed(functools.partial(spark_minutes, settings, spark))
        print(f"{n:,} events: spark minutes {spark_s:.1f}s", file=sys.stderr, flush=True)
        duck_rows, duck_s = timed(functools.partial(duckdb_minutes, settings))
        print(f"{n:,} events: duckdb minutes {duck_s:.1f}s", file=sys.stderr, flush=True)
        agree = spark_rows == duck_rows
        full_s = 0.0
        written = (0, 0)
        peak_full = Peaks()
        if not args.no_full:
            with sampled() as peak_full, progress(spark, f"{n:,} full job", peak_full):
                written, full_s = timed(functools.partial(full_job, settings, spark))
        results.append(
            (n, rows, files, spark_s, duck_s, agree, full_s, written, peak_minutes, peak_full)
        )
        print(
            f"{n:,} events ({rows:,} rows with retries, {files} files): spark minutes "
            f"{spark_s:.1f}s, duckdb {duck_s:.1f}s, agree={agree}, full job {full_s:.1f}s "
            f"{written[0]:,} rows {written[1]:,} points",
            flush=True,
        )
    print()
    print(
        "| events | Spark minutes s | ev/s | DuckDB s | ev/s | Spark/DuckDB | counts agree "
        "| full job s | ev/s | HBase rows | Influx points | peak MiB JVM / driver / workers "
        "/ total |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n, rows, _, spark_s, duck_s, agree, full_s, written, pm, pf in results:
        peak = pf if full_s else pm
        full_rate = f"{rows / full_s:,.0f}" if full_s else "-"
        print(
            f"| {n:,} | {spark_s:.1f} | {rows / spark_s:,.0f} | {duck_s:.1f} | "
            f"{rows / duck_s:,.0f} | {spark_s / duck_s:.1f} | {agree} | "
            f"{full_s:.1f} | {full_rate} | {written[0]:,} | {written[1]:,} | "
            f"{peak.jvm:,.0f} / {peak.driver:,.0f} / {peak.workers:,.0f} / {peak.total:,.0f} |"
        )
    spark.stop()
    return 0 if all(r[5] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
