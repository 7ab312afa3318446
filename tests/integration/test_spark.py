"""A local Spark session (footfall.spark_session), and Spark's HLL sketches meeting datasketches'.

The metric spec keeps per-bucket `visitors` as DataSketches HLL sketches made by both layers:
Spark's `hll_sketch_agg` in batch, the `datasketches` package in the stream. These tests pin
that the two read each other's bytes and merge into the right distinct count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import datasketches
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from footfall.settings import get_settings
from footfall.spark_session import build_session
from footfall.stack.spark import Spark

pytestmark = pytest.mark.integration

LG_K = 14
UTC = dt.UTC


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = build_session("footfall-tests", "local[2]", driver_memory="768m")
    yield session
    session.stop()


def _events(spark: SparkSession) -> tuple[DataFrame, list[tuple[str, str, str, dt.datetime]]]:
    start = dt.datetime(2026, 3, 1, 23, 58, 30, tzinfo=UTC)
    rows = [
        # site, visitor, event, event_time
        ("s1", f"v{i % 7}", "pageview" if i % 3 else "signup", start + dt.timedelta(seconds=20 * i))
        for i in range(12)
    ] + [("s2", "v1", "pageview", start)]
    schema = "site string, visitor string, event string, event_time timestamp"
    return spark.createDataFrame(rows, schema), rows


def test_session_settings(spark: SparkSession) -> None:
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.ui.enabled") == "false"
    assert spark.sparkContext.master == "local[2]"


def test_small_aggregate_per_site_and_utc_minute(spark: SparkSession) -> None:
    df, rows = _events(spark)
    # date_format renders in the session time zone, which build_session pins to UTC.
    minute = F.date_format(F.date_trunc("minute", "event_time"), "yyyy-MM-dd HH:mm")
    result = {
        (r["site"], r["minute"]): (r["events"], r["pageviews"], r["visitors"])
        for r in df.groupBy("site", minute.alias("minute"))
        .agg(
            F.count("*").alias("events"),
            F.sum(F.when(F.col("event") == "pageview", 1).otherwise(0)).alias("pageviews"),
            F.countDistinct("visitor").alias("visitors"),
        )
        .collect()
    }
    buckets: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for site, visitor, event, at in rows:
        buckets.setdefault((site, at.strftime("%Y-%m-%d %H:%M")), []).append((visitor, event))
    expected = {
        key: (
            len(items),
            sum(1 for _, event in items if event == "pageview"),
            len({visitor for visitor, _ in items}),
        )
        for key, items in buckets.items()
    }
    assert result == expected
    assert sorted(m for s, m in result if s == "s1") == [
        "2026-03-01 23:58",
        "2026-03-01 23:59",
        "2026-03-02 00:00",
        "2026-03-02 00:01",
        "2026-03-02 00:02",
    ]
    assert sum(events for events, _, _ in result.values()) == 13


def _spark_sketch(spark: SparkSession, visitors: list[str]) -> bytes:
    df = spark.createDataFrame([(v,) for v in visitors], "visitor string")
    (row,) = df.agg(F.hll_sketch_agg("visitor", LG_K).alias("sketch")).collect()
    return bytes(row["sketch"])


def _python_sketch(visitors: list[str]) -> datasketches.hll_sketch:
    sketch = datasketches.hll_sketch(LG_K)
    for visitor in visitors:
        sketch.update(visitor)
    return sketch


def test_spark_sketch_reads_in_datasketches(spark: SparkSession) -> None:
    visitors = [f"visitor-{i}" for i in range(300)] * 2  # each one twice
    sketch = datasketches.hll_sketch.deserialize(_spark_sketch(spark, visitors))
    assert sketch.lg_config_k == LG_K
    assert round(sketch.get_estimate()) == 300


def test_union_of_spark_and_datasketches_sketches(spark: SparkSession) -> None:
    # Overlapping sets: the union is right only if both sides hash a visitor id the same way.
    batch_side = [f"visitor-{i}" for i in range(300)]
    stream_side = [f"visitor-{i}" for i in range(200, 450)]
    from_spark = datasketches.hll_sketch.deserialize(_spark_sketch(spark, batch_side))
    from_python = _python_sketch(stream_side)

    union = datasketches.hll_union(LG_K)
    union.update(from_spark)
    union.update(from_python)
    assert round(union.get_result().get_estimate()) == 450

    # ...and the other way round: Spark merges a datasketches-made sketch (both encodings).
    for python_bytes in (from_python.serialize_compact(), from_python.serialize_updatable()):
        df = spark.createDataFrame(
            [(_spark_sketch(spark, batch_side),), (bytes(python_bytes),)], "sketch binary"
        )
        (row,) = df.agg(F.hll_sketch_estimate(F.hll_union_agg("sketch")).alias("n")).collect()
        assert row["n"] == 450


def test_stack_check_uses_the_active_session(spark: SparkSession) -> None:
    service = Spark(get_settings())
    assert service.check() is None
    assert service.address().startswith("local[*] (pyspark 4.")
    # The check ran on our session and left it running.
    assert SparkSession.getActiveSession() is spark
    assert spark.range(3).count() == 3
