"""The one place a SparkSession is built: the stack's Spark check and the batch layer use it."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path

from pyspark.sql import SparkSession

#: Settings every Footfall session gets; `conf` passed to `build_session` overrides them.
DEFAULT_CONF: dict[str, str] = {
    # Buckets are UTC minutes (spec/metrics.md): never let the JVM's zone leak into times.
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # Local runs have 1-16 cores; 200 shuffle partitions would be 200 tiny tasks per stage.
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    # Python workers must run this interpreter (the venv), not whatever `python3` is on PATH.
    "spark.pyspark.python": sys.executable,
    "spark.pyspark.driver.python": sys.executable,
    # Bind the driver to loopback: no LAN lookups, no firewall prompts, no stray listeners.
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}


def build_session(
    app_name: str,
    master: str = "local[*]",
    *,
    driver_memory: str = "1g",
    conf: Mapping[str, str] | None = None,
    java_home: Path | None = None,
    log_level: str = "WARN",
) -> SparkSession:
    """Get or create the process's SparkSession with Footfall's defaults.

    `driver_memory` and `java_home` only take effect when this call launches the JVM (the
    first session of the process); later calls reuse that JVM. Spark's own start-up lines
    are printed before `log_level` applies; everything after is at `log_level`.
    """
    if java_home is not None:
        os.environ["JAVA_HOME"] = str(java_home)
    # Read by the JVM launcher; without it Spark warns that the hostname resolves to loopback
    # and picks the first LAN address instead.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # PySpark's SparkContext starts Python workers with $PYSPARK_PYTHON (default: `python3`
    # on PATH, which lacks the venv's packages); the spark.pyspark.python conf alone is not
    # enough for RDD functions such as foreachPartition.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name).master(master)
    settings = {**DEFAULT_CONF, "spark.driver.memory": driver_memory, **(conf or {})}
    for key, value in settings.items():
        builder = builder.config(key, value)
    with warnings.catch_warnings():
        # Starting a context imports pyspark.testing, which warns (FutureWarning) once per
        # process when pandas >= 3 is installed; nothing of Footfall uses pandas through
        # Spark, and test runs turn warnings into errors.
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
        )
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel(log_level)
    return session
