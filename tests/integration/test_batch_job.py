"""The batch job end to end on real Spark (local[2]), HBase and InfluxDB.

One archive, written with footfall's own archive writer like the stream's archive agent
(files per partition in offset order, replays repeating events in two files), of about
2,400 events over two UTC days: sessions across the timeout and across midnight, bounces,
retried sends, bots, sampled visitors (rate 4), revenue in INR and USD, and edge cases
(tests/integration/batchkit.py). Every stored minute and breakdown row is compared with an
independent plain-Python reference (tests/reference.py): counts and sums exact, visitors
within 2 %.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.dataset as pads
import pytest
from pyspark.sql import SparkSession

from batch import hbase, markers
from batch.compare import format_comparisons
from batch.days import day_of_ms, day_window
from batch.influx import delete_statements
from batch.markers import BatchRange, DayState
from batch.reprocess import Reprocessor
from batch.store import BatchStore
from footfall.influx import InfluxClient, line
from footfall.metrics import DAY_MS
from footfall.series import MEASUREMENT
from footfall.settings import Settings
from footfall.visitors import SketchConfig
from tests.integration import batchkit
from tests.integration.streamkit import compare_influx, influx_minutes
from tests.reference import EVENT_COMBO, Minute, reference

pytestmark = pytest.mark.integration

MIDNIGHT = batchkit.batch_midnight()
DAY1 = day_of_ms(MIDNIGHT - DAY_MS)
DAY2 = day_of_ms(MIDNIGHT)
LO, HI = MIDNIGHT - DAY_MS, MIDNIGHT + DAY_MS


@pytest.fixture(scope="session")
def spark() -> SparkSession:
    return batchkit.spark_session()


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return batchkit.batch_events()


@pytest.fixture(scope="module")
def ref(events: list[dict[str, Any]]) -> dict[tuple[str, int], Minute]:
    return reference(events)


@pytest.fixture(scope="module")
def sites(events: list[dict[str, Any]]) -> list[str]:
    return sorted({e["site"] for e in events})


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, events: list[dict[str, Any]]) -> Path:
    root = tmp_path_factory.mktemp("batch") / "archive"
    assert batchkit.write_archive(root, events) > 20
    return root


@pytest.fixture(scope="module")
def settings(archive: Path) -> Iterator[Settings]:
    settings = batchkit.isolated_settings(archive)
    batchkit.create_influx_db(settings)
    yield settings
    batchkit.drop_everything(settings)


@pytest.fixture(scope="module")
def first_run(spark: SparkSession, settings: Settings) -> dict[str, dict[bytes, Any]]:
    """Both days recomputed once; the stored rows right after."""
    job = Reprocessor(settings, spark)
    for day in (DAY1, DAY2):
        outcome = job.run_day(day, None, dry_run=False)
        assert outcome.state is DayState.DONE, outcome.summary()
        assert outcome.rows > 0
        assert outcome.points > 0
    return batchkit.scan_all(settings)


def run_all(spark: SparkSession, settings: Settings) -> None:
    job = Reprocessor(settings, spark)
    for day in (DAY1, DAY2):
        job.run_day(day, None, dry_run=False)


# --- the numbers ------------------------------------------------------------------------------
def test_rows_match_the_reference(
    first_run: dict[str, dict[bytes, Any]],
    settings: Settings,
    ref: dict[tuple[str, int], Minute],
    sites: list[str],
) -> None:
    assert first_run[hbase.MINUTES]
    assert first_run[hbase.BREAKDOWNS]
    problems = batchkit.compare_store(settings, ref, sites, LO, HI)
    assert not problems, "\n".join(problems[:30])


def test_day_visitors_within_sketch_error(
    first_run: dict[str, dict[bytes, Any]],
    settings: Settings,
    events: list[dict[str, Any]],
    sites: list[str],
) -> None:
    sketch = SketchConfig(settings.hll_lg_k, settings.hll_type)
    with BatchStore(settings) as store:
        for site in sites:
            for lo in (LO, MIDNIGHT):
                exact = batchkit.day_visitors(events, site, lo, lo + DAY_MS)
                estimate = store.total(site, lo, lo + DAY_MS).visitors(sketch).estimate()
                assert abs(estimate - exact) <= max(0.02 * exact, 0.5), (site, lo)


def test_rows_say_when_they_hold_sampled_visitors(
    first_run: dict[str, dict[bytes, Any]], settings: Settings, sites: list[str]
) -> None:
    with BatchStore(settings) as store:
        minutes = [row for site in sites for row in store.minutes(site, LO, HI)]
        pages = [row for site in sites for row in store.breakdown(site, "page", LO, HI)]
    for rows in (minutes, pages):
        assert {row.sample_rate_max for row in rows} == {1, 4}
        assert all(row.sample_rate_max == max(row.sketches) for row in rows)


def test_influx_points_match_the_reference(
    first_run: dict[str, dict[bytes, Any]],
    settings: Settings,
    ref: dict[tuple[str, int], Minute],
) -> None:
    points = asyncio.run(influx_minutes(settings.influx_db))
    in_days = {k: v for k, v in ref.items() if LO <= k[1] < HI}
    problems = compare_influx(points, in_days)
    assert not problems, "\n".join(problems[:30])
    partitions = asyncio.run(_partitions(settings))
    assert partitions <= {str(p) for p in range(batchkit.PARTITIONS)}


async def _partitions(settings: Settings) -> set[str]:
    async with InfluxClient.from_settings(settings) as client:
        series = await client.query(f'SHOW TAG VALUES FROM "{MEASUREMENT}" WITH KEY = "partition"')
    return {value for one in series for _, value in one["values"]}


def test_markers_count_the_input_and_set_batch_until(
    first_run: dict[str, dict[bytes, Any]],
    settings: Settings,
    archive: Path,
    events: list[dict[str, Any]],
    sites: list[str],
) -> None:
    table = pads.dataset(archive, format="parquet", partitioning="hive").to_table(
        columns=["site", "event_time", "bot"]
    )
    read: Counter[tuple[str, int]] = Counter()
    bots: Counter[tuple[str, int]] = Counter()
    for site, t, bot in zip(
        *(table.column(c).to_pylist() for c in table.column_names), strict=True
    ):
        read[(site, t // DAY_MS)] += 1
        bots[(site, t // DAY_MS)] += bot
    connection = hbase.connect(settings)
    try:
        for site in sites:
            found = markers.markers(connection, site)
            for day in (DAY1, DAY2):
                key = (site, (MIDNIGHT - DAY_MS) // DAY_MS + (day == DAY2))
                marker = found[day]
                assert marker.state is DayState.DONE
                assert marker.values["read"] == read[key]
                assert marker.values["bots"] == bots[key]
                assert marker.values["counted"] == _counted(events, site, day)
                assert marker.values["session_timeout_s"] == settings.session_timeout_s
            assert markers.batch_range(connection, site) == BatchRange(DAY1, DAY2)
        everyone = markers.markers(connection, hbase.ALL_SITES)
        assert {d: m.state for d, m in everyone.items()} == {
            DAY1: DayState.DONE,
            DAY2: DayState.DONE,
        }
        # A site without any event is complete through the all-sites markers.
        assert markers.batch_range(connection, "never-seen") == BatchRange(DAY1, DAY2)
        assert BatchRange(DAY1, DAY2).until_ms == MIDNIGHT + DAY_MS
    finally:
        connection.close()


def _counted(events: list[dict[str, Any]], site: str, day: Any) -> int:
    seen: set[str] = set()
    n = 0
    for e in events:
        if e["site"] != site or e["bot"] or e["id"] in seen:
            continue
        seen.add(e["id"])
        n += day_of_ms(e["event_time"]) == day
    return n


# --- idempotence and dry runs --------------------------------------------------------------
def test_second_run_leaves_identical_rows(
    first_run: dict[str, dict[bytes, Any]], spark: SparkSession, settings: Settings
) -> None:
    before = batchkit.scan_all(settings, timestamps=True)
    run_all(spark, settings)
    after = batchkit.scan_all(settings)
    assert after == first_run  # every row, column and byte
    stamped = batchkit.scan_all(settings, timestamps=True)
    newest_before = max(
        ts for rows in before.values() for r in rows.values() for _, ts in r.values()
    )
    minutes = stamped[hbase.MINUTES]
    assert min(ts for r in minutes.values() for _, ts in r.values()) > newest_before


def test_dry_run_writes_nothing_and_shows_differences(
    first_run: dict[str, dict[bytes, Any]], spark: SparkSession, settings: Settings
) -> None:
    job = Reprocessor(settings, spark)
    before = batchkit.scan_all(settings, timestamps=True)
    outcome = job.run_day(DAY2, None, dry_run=True)
    assert outcome.state is None
    assert batchkit.scan_all(settings, timestamps=True) == before
    assert outcome.comparisons
    assert all(c.source == "hbase" for c in outcome.comparisons)
    assert all(c.diff in (0, 0.0) for c in outcome.comparisons), [
        c for c in outcome.comparisons if c.diff not in (0, 0.0)
    ]

    # Tamper with one stored minute: the dry run shows stored, recomputed and the difference.
    connection = hbase.connect(settings)
    try:
        table = connection.table(hbase.MINUTES)
        start, stop = hbase.minute_key("alpha", MIDNIGHT), hbase.minute_key("alpha", HI)
        key, cells = next(iter(table.scan(row_start=start, row_stop=stop)))
        events = hbase.decode_int(cells[b"c:events"])
        table.put(key, {b"c:events": hbase.encode_int(events + 5)})
    finally:
        connection.close()
    outcome = job.run_day(DAY2, ["alpha"], dry_run=True)
    changed = [c for c in outcome.comparisons if c.diff not in (0, 0.0, None)]
    assert [(c.site, c.metric, c.diff) for c in changed] == [("alpha", "events", -5)]
    text = format_comparisons(outcome.comparisons)
    assert text[0].split() == [
        "day",
        "site",
        "metric",
        "stored",
        "recomputed",
        "difference",
        "source",
    ]
    (row,) = [t for t in text if " events " in f" {t} "]
    day, site, metric, stored, recomputed, difference, source = row.split()
    assert (day, site, metric, source) == (DAY2.isoformat(), "alpha", "events", "hbase")
    assert int(stored) - int(recomputed) == 5
    assert difference == "-5"
    run_all(spark, settings)  # put the truth back for the tests below


def test_dry_run_of_a_day_never_written_reads_the_stream(
    spark: SparkSession, settings: Settings, archive: Path
) -> None:
    other = batchkit.isolated_settings(archive)
    batchkit.create_influx_db(other)
    try:
        minute = MIDNIGHT + 3_600_000
        stream_point = line(
            MEASUREMENT, {"site": "alpha", "partition": "0"}, {"events": 7, "pageviews": 3}, minute
        )
        asyncio.run(_write(other, [stream_point]))
        outcome = Reprocessor(other, spark).run_day(DAY2, ["alpha"], dry_run=True)
        by_metric = {c.metric: c for c in outcome.comparisons}
        assert by_metric["events"].source == "influx"
        assert by_metric["events"].stored == 7
        assert by_metric["visitors"].stored is None
        assert by_metric["visitors"].diff is None
    finally:
        batchkit.drop_everything(other)


async def _write(settings: Settings, lines: list[str]) -> None:
    async with InfluxClient.from_settings(settings) as client:
        await client.write(lines)


# --- whole-day overwrite ------------------------------------------------------------------
def test_site_run_overwrites_that_site_only(
    first_run: dict[str, dict[bytes, Any]], spark: SparkSession, settings: Settings
) -> None:
    stale = {
        site: hbase.minute_key(site, MIDNIGHT - DAY_MS + 59 * 60_000 + 7)
        for site in ("alpha", "beta")
    }
    connection = hbase.connect(settings)
    try:
        table = connection.table(hbase.MINUTES)
        for key in stale.values():
            table.put(key, {b"c:events": hbase.encode_int(99)})
        Reprocessor(settings, spark).run_day(DAY1, ["alpha"], dry_run=False)
        assert table.row(stale["alpha"]) == {}
        assert table.row(stale["beta"]) != {}
        Reprocessor(settings, spark).run_day(DAY1, None, dry_run=False)
        assert table.row(stale["beta"]) == {}
    finally:
        connection.close()
    assert batchkit.scan_all(settings) == first_run


def test_full_run_empties_a_site_that_lost_its_events(
    first_run: dict[str, dict[bytes, Any]], spark: SparkSession, settings: Settings
) -> None:
    connection = hbase.connect(settings)
    try:
        ghost = hbase.breakdown_key("ghost", "page", MIDNIGHT + 60_000, "/gone")
        combined = hbase.breakdown_key(
            "ghost", EVENT_COMBO, MIDNIGHT + 60_000, "/gone\x1fdirect\x1fIN\x1fmobile"
        )
        for key in (ghost, combined):
            connection.table(hbase.BREAKDOWNS).put(key, {b"c:events": hbase.encode_int(1)})
        markers.begin(connection, DAY2.isoformat(), ["ghost"], 1, all_sites=False)
        Reprocessor(settings, spark).run_day(DAY2, None, dry_run=False)
        assert connection.table(hbase.BREAKDOWNS).row(ghost) == {}
        assert connection.table(hbase.BREAKDOWNS).row(combined) == {}
        marker = markers.markers(connection, "ghost")[DAY2]
        assert marker.state is DayState.DONE
        assert marker.values["read"] == 0
    finally:
        connection.close()


def test_stream_points_of_the_day_are_replaced(
    first_run: dict[str, dict[bytes, Any]],
    spark: SparkSession,
    settings: Settings,
    ref: dict[tuple[str, int], Minute],
) -> None:
    minute = MIDNIGHT + 7 * 60_000
    outside = MIDNIGHT + DAY_MS + 60_000  # the day after: not recomputed, must stay
    stream = [
        line(MEASUREMENT, {"site": "alpha", "partition": "9"}, {"events": 1000}, minute),
        line(MEASUREMENT, {"site": "alpha", "partition": "0"}, {"events": 1000}, minute),
        line(MEASUREMENT, {"site": "alpha", "partition": "0"}, {"events": 5}, outside),
    ]
    asyncio.run(_write(settings, stream))
    Reprocessor(settings, spark).run_day(DAY2, None, dry_run=False)
    points = asyncio.run(influx_minutes(settings.influx_db))
    assert points[("alpha", outside)]["events"] == 5
    del points[("alpha", outside)]
    problems = compare_influx(points, {k: v for k, v in ref.items() if LO <= k[1] < HI})
    assert not problems, "\n".join(problems[:30])


def test_delete_statements_name_the_sites_and_the_window() -> None:
    w = day_window(DAY2, MIDNIGHT + 3 * DAY_MS, 900)
    (everyone,) = delete_statements(w, None)
    assert everyone == (
        f'DELETE FROM "minute" WHERE time >= {MIDNIGHT}ms AND time < {MIDNIGHT + DAY_MS}ms'
    )
    assert delete_statements(w, ["a'b"])[0].startswith(
        """DELETE FROM "minute" WHERE "site" = 'a\\'b' AND"""
    )


def test_an_open_day_is_partial_and_not_complete(
    spark: SparkSession, archive: Path, ref: dict[tuple[str, int], Minute], sites: list[str]
) -> None:
    other = batchkit.isolated_settings(archive)
    batchkit.create_influx_db(other)
    try:
        now = MIDNIGHT + 2 * 3_600_000 + 30_000  # 02:00:30 on DAY2: cutoff 01:45
        cutoff = MIDNIGHT + 105 * 60_000
        job = Reprocessor(other, spark, now=now)
        assert job.run_day(DAY1, None, dry_run=False).state is DayState.DONE
        outcome = job.run_day(DAY2, None, dry_run=False)
        assert outcome.state is DayState.PARTIAL
        connection = hbase.connect(other)
        try:
            assert markers.batch_range(connection, "alpha") == BatchRange(DAY1, DAY1)
            assert markers.markers(connection, "alpha")[DAY2].values["cutoff"] == cutoff
        finally:
            connection.close()
        with BatchStore(other) as store:
            assert [r for r in store.minutes("alpha", cutoff, MIDNIGHT + DAY_MS)] == []
        # Sessions running past the cutoff are cut there, so only event-scoped numbers of the
        # minutes before it are final; they match the reference.
        with BatchStore(other) as store:
            for site in sites:
                for row in store.minutes(site, MIDNIGHT, cutoff):
                    want = ref[(site, row.minute)].total.counts
                    assert row.counters["events"] == want["events"]
                    assert row.counters["pageviews"] == want["pageviews"]
    finally:
        batchkit.drop_everything(other)


# --- the command ------------------------------------------------------------------------------
def test_reprocess_command_dry_run(
    first_run: dict[str, dict[bytes, Any]],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import batch.commands
    from batch.commands import main

    monkeypatch.setattr(batch.commands, "get_settings", lambda: settings)
    before = batchkit.scan_all(settings, timestamps=True)
    day = DAY2.isoformat()
    assert main(["reprocess", "--from", day, "--to", day, "--site", "alpha", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert batchkit.scan_all(settings, timestamps=True) == before
    lines = out.splitlines()
    assert lines[0].split() == [
        "day",
        "site",
        "metric",
        "stored",
        "recomputed",
        "difference",
        "source",
    ]
    rows = [line.split() for line in lines[1:]]
    metrics = [row[2] for row in rows]
    assert metrics[:10] == [
        "visitors",
        "events",
        "pageviews",
        "transactions",
        "sessions",
        "bounces",
        "duration_sum",
        "bounce_rate",
        "avg_duration",
        "views_per_session",
    ]
    assert {row[0] for row in rows} == {day}
    assert {row[1] for row in rows} == {"alpha"}
    assert {row[5] for row in rows} <= {"0", "0.0000", "0.0", "0.000000"}, out
    assert "reprocess" in err  # the progress bar
    assert f"{day}  dry-run" in err

    assert main(["reprocess", "--from", day, "--to", DAY1.isoformat()]) == 2
    assert "before" in capsys.readouterr().err
