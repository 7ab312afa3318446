"""Spark runs in-process (`local[*]` from the pyspark wheel): nothing to start, only to check."""

from __future__ import annotations

from footfall.stack.base import Service


class Spark(Service):
    """PySpark in local mode. `check` starts a small session, runs one query and stops it."""

    name = "spark"

    def address(self) -> str:
        try:
            import pyspark
        except ImportError:
            return "local[*] (pyspark not installed)"
        return f"local[*] (pyspark {pyspark.__version__})"

    def check(self) -> str | None:
        """None when a local session computes sum(0..9) = 45, else why not (one line).

        An already active session (a batch job, a test) is used as it is and left running;
        otherwise the session built here is stopped again, so the check holds no cores or
        memory. The JVM it launched stays up until the Python process exits.
        """
        try:
            from pyspark.sql import SparkSession

            from footfall.spark_session import build_session
        except ImportError as exc:
            return f"pyspark is not installed ({exc}); install the project's [spark] extra"
        active = SparkSession.getActiveSession()
        try:
            session = active or build_session(
                "footfall-stack-check",
                driver_memory="512m",
                java_home=self.settings.java_home,
            )
            try:
                rows = session.range(10).selectExpr("sum(id) AS total").collect()
            finally:
                if active is None:
                    session.stop()
        except Exception as exc:  # any failure is a reason, reported on one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return f"local Spark session failed: {type(exc).__name__}: {first}"[:300]
        total = rows[0]["total"] if rows else None
        if total != 45:
            return f"local Spark session computed sum(0..9) = {total!r}, expected 45"
        return None
