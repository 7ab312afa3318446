"""batch.rules' Spark expressions agree with the footfall.metrics functions they translate.

The edge cases are the ones where a translation could drift: the exact timeout and one
millisecond past it, midnight to the millisecond, and half-millionths of a currency unit
(round half to even), plus the day windows and archive hours the job reads.
"""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from batch import rules
from batch.days import day_start_ms, day_window, days_between
from batch.reader import hour_dirs
from footfall import metrics
from tests.integration.batchkit import spark_session

pytestmark = pytest.mark.integration

MIDNIGHT = day_start_ms(date(2026, 3, 2))
TIMEOUT_S = 1800


@pytest.fixture(scope="session")
def spark() -> SparkSession:
    return spark_session()


def test_minute_and_session_rules(spark: SparkSession) -> None:
    pairs = [
        (MIDNIGHT - 10_000, MIDNIGHT - 10_000 + TIMEOUT_S * 1000),  # exactly the timeout
        (MIDNIGHT - 10_000_000, MIDNIGHT - 10_000_000 + TIMEOUT_S * 1000 + 1),  # 1 ms past
        (MIDNIGHT - 1, MIDNIGHT),  # across midnight by a millisecond
        (MIDNIGHT, MIDNIGHT + 59_999),
        (MIDNIGHT + 59_999, MIDNIGHT + 60_000),
        (MIDNIGHT - 86_400_000, MIDNIGHT - 1),  # a whole day apart, same day
    ]
    frame = spark.createDataFrame(pairs, "previous long, t long")
    got = frame.select(
        "previous",
        "t",
        rules.starts_new_session(F.col("previous"), F.col("t"), TIMEOUT_S).alias("new"),
        rules.minute_of(F.col("t")).alias("minute"),
    ).collect()
    assert len(got) == len(pairs)
    for row in got:
        assert row["new"] == metrics.starts_new_session(row["previous"], row["t"], TIMEOUT_S)
        assert row["minute"] == metrics.minute_of(row["t"])
    first = spark.createDataFrame([(None, MIDNIGHT)], "previous long, t long")
    (row,) = first.select(rules.starts_new_session(F.col("previous"), F.col("t"), 1)).collect()
    assert row[0] is True  # a visitor's first event opens a session


def test_revenue_units_round_like_python(spark: SparkSession) -> None:
    amounts = [0.0, 0.0000005, 0.0000015, 0.0000025, 1.0000005, 2.675, 19.99, 1e-7, 123456.789]
    amounts += [n / 1000 + 0.0000005 for n in range(0, 5000, 7)]
    frame = spark.createDataFrame([(a,) for a in amounts], "amount double")
    got = frame.select("amount", rules.revenue_units(F.col("amount")).alias("units")).collect()
    mismatches = [
        (r["amount"], r["units"], metrics.revenue_units(r["amount"]))
        for r in got
        if r["units"] != metrics.revenue_units(r["amount"])
    ]
    assert not mismatches


def test_bots_and_absent_values(spark: SparkSession) -> None:
    frame = spark.createDataFrame(
        [(True, None), (False, ""), (False, "/x")], "bot boolean, path string"
    )
    got = frame.select(
        rules.counts_in_metrics(F.col("bot")).alias("counts"),
        rules.text_value(F.col("path")).alias("value"),
    ).collect()
    assert [r["counts"] for r in got] == [
        metrics.counts_in_metrics(b) for b in (True, False, False)
    ]
    assert [r["value"] for r in got] == [metrics.ABSENT_VALUE, metrics.ABSENT_VALUE, "/x"]


def test_combination_values(spark: SparkSession) -> None:
    cases = [
        ("/", "google", "IN"),
        ("", "", ""),
        ("/a\x1fb", "x", "\x1f"),  # a member's own separator
        ("/p", "a\x1f\x1fb", "\ufffd"),
    ]
    frame = spark.createDataFrame(cases, "a string, b string, c string")
    got = frame.select(
        "a", "b", "c", rules.combination_value([F.col("a"), F.col("b"), F.col("c")]).alias("v")
    ).collect()
    for row in got:
        assert row["v"] == metrics.combination_value([row["a"], row["b"], row["c"]])
        assert len(metrics.combination_members(row["v"])) == 3


def test_day_windows() -> None:
    day = date(2026, 3, 1)
    start = day_start_ms(day)
    end = start + metrics.DAY_MS
    closed = day_window(day, end + 900_000, 900)
    assert (closed.closed, closed.cutoff_ms) == (True, end)
    still_open = day_window(day, end + 899_999, 900)
    assert not still_open.closed
    assert still_open.cutoff_ms == metrics.minute_of(end - 1)
    today = day_window(day, start + 3_600_000 + 123, 900)
    assert (today.closed, today.cutoff_ms) == (False, start + 2_700_000)
    assert day_window(day, start + 1000, 900).empty
    assert days_between(day, date(2026, 3, 3))[-1] == date(2026, 3, 3)
    with pytest.raises(ValueError, match="before"):
        days_between(day, date(2026, 2, 28))


def test_hours_read_for_a_day_and_its_margin() -> None:
    dirs = hour_dirs(MIDNIGHT - 3_600_000, MIDNIGHT + metrics.DAY_MS + 3_600_000)
    assert dirs[0] == "dt=2026-03-01/hour=23"
    assert dirs[1] == "dt=2026-03-02/hour=00"
    assert dirs[-1] == "dt=2026-03-03/hour=00"
    assert len(dirs) == 26
