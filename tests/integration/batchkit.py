"""Helpers of the batch-layer tests: an archive written like the stream's, isolated
settings (own HBase tables, InfluxDB database, archive), and a plain-Python comparison of
the stored rows with tests.reference (which shares no code with footfall.metrics).
"""

from __future__ import annotations

import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import happybase
from pyspark.sql import SparkSession

from batch import hbase
from batch.store import BatchStore, merge_visitors
from footfall.archive import ArchiveRow, ArchiveWriter, archive_row
from footfall.events import kafka_key
from footfall.influx import quote_ident
from footfall.settings import Settings, get_settings
from footfall.spark_session import build_session
from footfall.stack.influxdb import InfluxDB
from footfall.visitors import SketchConfig
from tests.reference import EVENT_COMBO, Minute, Row, envelope
from tests.workload import DAY, MIN, recent_midnight, workload

PARTITIONS = 4
TOLERANCE = 0.02
EVENT_COUNTERS = ("events", "pageviews", "transactions")
SESSION_COUNTERS = ("sessions", "bounces", "duration_sum")
# Rows holding event counters (the rest hold session counters), the combination too.
EVENT_DIMS = ("page", "event", EVENT_COMBO)


def spark_session() -> SparkSession:
    """The tests' local[2] session (one per process: getOrCreate)."""
    return build_session("footfall-batch-tests", "local[2]", driver_memory="1g")


def partition_of(event: Mapping[str, Any]) -> int:
    """A stand-in for Kafka's partitioner: one visitor's events on one partition."""
    return zlib.crc32(kafka_key(event["site"], event["visitor"])) % PARTITIONS


# --- events --------------------------------------------------------------------------------
def batch_midnight() -> int:
    """A midnight whose two days are closed (InfluxDB keeps 400 days only)."""
    return recent_midnight() - 2 * DAY


def edge_events(midnight: int) -> list[dict[str, Any]]:
    """Cases the random workload may miss, on site "edge", in arrival order."""
    t = midnight - 3 * 3_600_000
    events = [
        # exactly the timeout apart: one session; one millisecond more: a new one
        envelope("edge", "gap", t, path="/a"),
        envelope("edge", "gap", t + 1_800_000, path="/b"),
        envelope("edge", "gap", t + 3_600_001, path="/c"),
        # across midnight by one millisecond: two sessions, one per day
        envelope("edge", "night", midnight - 1, path="/late"),
        envelope("edge", "night", midnight, path="/early"),
        # the same instant twice: Kafka order decides the exit page (/second)
        envelope("edge", "tie", t, path="/first"),
        envelope("edge", "tie", t, path="/second"),
        envelope("edge", "tie", t, name="signup", path=None),
        # half-millionths: rounded half to even like footfall.metrics.revenue_units
        envelope("edge", "cents", t, name="buy", path="/c", revenue=(1.0000005, "INR")),
        envelope("edge", "cents", t + 1, name="buy", path="/c", revenue=(0.0000025, "INR")),
        envelope("edge", "cents", t + 2, name="buy", path="/c", revenue=(19.99, "USD")),
    ]
    # A retried send without `ts` across midnight: event_time is received_at for both copies,
    # so they fall on two days; the first received (day one) is the one that counts.
    first = envelope("edge", "retry", midnight - 400, event_id="retry-1", path="/r")
    first["ts"] = None
    again = {**first, "received_at": midnight + 700, "event_time": midnight + 700}
    events += [first, again]
    return sorted(events, key=lambda e: e["received_at"])


def batch_events(n: int = 2400, midnight: int | None = None) -> list[dict[str, Any]]:
    """The workload (tests/workload.py) plus edge_events, in arrival order."""
    base = midnight if midnight is not None else batch_midnight()
    events = workload(n, midnight=base) + edge_events(base)
    order = sorted(range(len(events)), key=lambda i: (events[i]["received_at"], i))
    return [events[i] for i in order]


def write_archive(root: Path, events: Sequence[Mapping[str, Any]], chunk: int = 250) -> int:
    """Write events as the archive agent does: per partition, in offset order, in files of
    about `chunk` events; after every file but the first, the tail of the one before is
    written again within the next (a replay after a crash: the same events twice, in two
    files). Return the number of files."""
    by_partition: dict[int, list[ArchiveRow]] = defaultdict(list)
    for event in events:
        rows = by_partition[partition_of(event)]
        rows.append(archive_row(len(rows), event))
    writer = ArchiveWriter(str(root))
    files = 0
    for partition, rows in sorted(by_partition.items()):
        start = 0
        while start < len(rows):
            replay = 20 if start else 0
            files += len(writer.write(partition, rows[start - replay : start + chunk]))
            start += chunk
    return files


# --- isolated settings -------------------------------------------------------------------------
def isolated_settings(archive: Path, **overrides: Any) -> Settings:
    tag = uuid.uuid4().hex[:10]
    return get_settings().model_copy(
        update={
            "archive_url": str(archive),
            "hbase_table_prefix": f"fftest_{tag}",
            "influx_db": f"fftest_batch_{tag}",
            "batch_spark_master": "local[2]",
            **overrides,
        }
    )


def create_influx_db(settings: Settings) -> None:
    InfluxDB(settings).ensure_database(settings.influx_db)


def drop_everything(settings: Settings) -> None:
    connection = hbase.connect(settings)
    try:
        hbase.drop_tables(connection)
    finally:
        connection.close()
    InfluxDB(settings).run_query(f"DROP DATABASE {quote_ident(settings.influx_db)}")


def scan_all(settings: Settings, *, timestamps: bool = False) -> dict[str, dict[bytes, Any]]:
    """Every row of every batch table (cell values; with timestamps if asked)."""
    connection = hbase.connect(settings)
    try:
        return {
            name: dict(connection.table(name).scan(include_timestamp=timestamps))
            for name in hbase.FAMILIES
        }
    finally:
        connection.close()


def connection_of(settings: Settings) -> happybase.Connection:
    return hbase.connect(settings)


# --- comparing with the reference ------------------------------------------------------------
def _close(estimate: float, exact: int, tolerance: float) -> bool:
    return abs(estimate - exact) <= max(tolerance * exact, 0.5)


def compare_store(
    settings: Settings,
    ref: Mapping[tuple[str, int], Minute],
    sites: Iterable[str],
    lo: int,
    hi: int,
    tolerance: float = TOLERANCE,
) -> list[str]:
    """Differences between the stored minutes and breakdowns of [lo, hi) and the reference."""
    sketch = SketchConfig(settings.hll_lg_k, settings.hll_type)
    problems: list[str] = []
    with BatchStore(settings) as store:
        for site in sites:
            want = {m: minute for (s, m), minute in ref.items() if s == site and lo <= m < hi}
            got = {row.minute: row for row in store.minutes(site, lo, hi)}
            for m in sorted(set(want) | set(got)):
                exp, row = want.get(m, Minute()), got.get(m)
                if row is None:
                    problems.append(f"{site} {m}: no stored row")
                    continue
                for name in EVENT_COUNTERS + SESSION_COUNTERS:
                    if row.counters.get(name, 0) != exp.total.counts[name]:
                        problems.append(
                            f"{site} {m} {name}: {row.counters.get(name)} != "
                            f"{exp.total.counts[name]}"
                        )
                if +Counter(row.revenue) != +exp.revenue:
                    problems.append(f"{site} {m} revenue: {row.revenue} != {dict(exp.revenue)}")
                estimate = merge_visitors(sketch, {r: [i] for r, i in row.sketches.items()})
                if not _close(estimate.estimate(), exp.total.visitors_estimate(), tolerance):
                    problems.append(
                        f"{site} {m} visitors: {estimate.estimate()} !~ "
                        f"{exp.total.visitors_estimate()}"
                    )
            problems += _compare_breakdowns(store, sketch, site, want, lo, hi, tolerance)
    return problems


def _compare_breakdowns(
    store: BatchStore,
    sketch: SketchConfig,
    site: str,
    want: Mapping[int, Minute],
    lo: int,
    hi: int,
    tolerance: float,
) -> list[str]:
    problems: list[str] = []
    dims = {d for minute in want.values() for d in minute.breakdowns} | set(EVENT_DIMS)
    for dim in sorted(dims):
        names = EVENT_COUNTERS if dim in EVENT_DIMS else SESSION_COUNTERS
        expected = {
            (m, value): row
            for m, minute in want.items()
            for value, row in minute.breakdowns.get(dim, {}).items()
        }
        got = {(r.minute, r.value): r for r in store.breakdown(site, dim, lo, hi)}
        for key in sorted(set(expected) | set(got)):
            exp, row = expected.get(key, Row()), got.get(key)
            if row is None:
                problems.append(f"{site} {dim} {key}: no stored row")
                continue
            for name in names:
                if row.counters.get(name, 0) != exp.counts[name]:
                    problems.append(
                        f"{site} {dim} {key} {name}: {row.counters.get(name)} != {exp.counts[name]}"
                    )
            visitors = merge_visitors(sketch, {r: [i] for r, i in row.sketches.items()})
            if not _close(visitors.estimate(), exp.visitors_estimate(), tolerance):
                problems.append(
                    f"{site} {dim} {key} visitors: {visitors.estimate()} !~ "
                    f"{exp.visitors_estimate()}"
                )
    return problems


def day_visitors(events: Iterable[Mapping[str, Any]], site: str, lo: int, hi: int) -> int:
    """Exact visitors of a site in [lo, hi), each counted at its sample rate (events in
    arrival order: of two copies of an id, the first counts; bots never)."""
    rates: dict[str, int] = {}
    seen: set[str] = set()
    for e in events:
        if e["site"] != site or e["bot"] or e["id"] in seen:
            continue
        seen.add(e["id"])
        if lo <= e["event_time"] < hi:
            rates[e["visitor"]] = e["sample_rate"]
    return sum(rates.values())


__all__ = ["DAY", "MIN"]
