"""Reading one UTC day (and a margin around it) of the raw archive into Spark.

The archive (footfall.archive) is `dt=YYYY-MM-DD/hour=HH/part-*.parquet` by event_time.
Only the hour directories a day needs are listed and read, never the whole tree: Spark's
own partition discovery would list every directory of the archive on every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import fsspec
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType

from footfall.archive import ARCHIVE_SCHEMA, hour_dir

HOUR_MS: Final = 3_600_000
#: The archive's columns as Spark reads them (the writer's own schema, so that an hour
#: with no file of some column never changes a type).
SPARK_SCHEMA: Final[StructType] = from_arrow_schema(ARCHIVE_SCHEMA)
#: What the job uses of an event; everything else stays on disk (Parquet is columnar).
COLUMNS: Final = (
    "site",
    "name",
    "visitor",
    "id",
    "event_time",
    "received_at",
    "bot",
    "sample_rate",
    "path",
    "source",
    "utm_campaign",
    "country",
    "device",
    "browser",
    "os",
    "revenue",
    "kafka_partition",
    "kafka_offset",
)
# fsspec protocol -> the Hadoop filesystem scheme Spark reads it with.
_SPARK_SCHEMES: Final = {"s3": "s3a", "s3a": "s3a", "gs": "gs", "gcs": "gs", "hdfs": "hdfs"}


def hour_dirs(lo_ms: int, hi_ms: int) -> list[str]:
    """The `dt=.../hour=..` directories holding event times in [lo_ms, hi_ms)."""
    first = lo_ms // HOUR_MS
    last = (hi_ms - 1) // HOUR_MS
    return [hour_dir(hour * HOUR_MS) for hour in range(first, last + 1)]


def list_files(archive_url: str, lo_ms: int, hi_ms: int) -> list[str]:
    """Spark-readable URLs of the archive files that can hold event times in [lo_ms, hi_ms).

    Hidden files (a writer's ".part-...tmp" not yet renamed) are not matched.
    """
    fs, root = fsspec.core.url_to_fs(archive_url)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    files: list[str] = []
    for directory in hour_dirs(lo_ms, hi_ms):
        files.extend(sorted(fs.glob(f"{root}/{directory}/part-*.parquet")))
    return [_spark_url(protocol, path) for path in files]


def _spark_url(protocol: str, path: str) -> str:
    if protocol in ("file", "local"):
        # Not Path.as_uri(): Spark would not decode its %3D for the "=" of dt=/hour=.
        return f"file://{Path(path).absolute()}"
    return f"{_SPARK_SCHEMES.get(protocol, protocol)}://{path}"


def read_events(
    spark: SparkSession, files: Sequence[str], sites: Sequence[str] | None = None
) -> DataFrame:
    """The events of `files` (COLUMNS only), optionally of some sites only."""
    if files:
        frame = spark.read.schema(SPARK_SCHEMA).parquet(*files)
    else:
        frame = spark.createDataFrame([], SPARK_SCHEMA)
    frame = frame.select(*COLUMNS)
    if sites:
        frame = frame.where(frame["site"].isin(list(sites)))
    return frame
