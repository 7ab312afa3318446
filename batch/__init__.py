"""The batch layer: recompute whole UTC days from the raw archive, overwrite the truth.

Reads the archive (footfall.archive) with PySpark, computes every metric of
spec/metrics.md with the definitions of footfall.metrics, writes HBase (batch.hbase) and
rewrites the same days in InfluxDB (batch.influx). `footfall reprocess` (batch.commands)
runs it by hand, the Airflow DAG (batch/dag.py) on a schedule; docs/batch.md explains it.
"""
