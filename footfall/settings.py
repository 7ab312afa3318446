"""Every Footfall setting, read once from the environment (``FOOTFALL_*``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _home(*parts: str) -> Path:
    return Path.home().joinpath(*parts)


class Settings(BaseSettings):
    """Typed settings; the README's settings table is generated from these fields."""

    model_config = SettingsConfigDict(env_prefix="FOOTFALL_", frozen=True, extra="ignore")

    # --- where the services are -------------------------------------------------
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma separated."
    )
    influx_url: str = Field("http://127.0.0.1:8086", description="InfluxDB v1 HTTP API base URL.")
    influx_db: str = Field("footfall", description="InfluxDB database holding the minute series.")
    influx_user: str = Field("", description="InfluxDB user (empty: no auth).")
    influx_password: SecretStr = Field(SecretStr(""), description="InfluxDB password.")
    hbase_host: str = Field("127.0.0.1", description="HBase Thrift (v1) server host.")
    hbase_port: int = Field(9090, description="HBase Thrift (v1) server port.")
    hbase_table_prefix: str = Field("footfall", description="Namespace prefix of HBase tables.")

    # --- the local stack (footfall stack up) -------------------------------------
    cache_dir: Path = Field(
        _home(".cache", "footfall"), description="Downloaded jars and distributions (kept)."
    )
    state_dir: Path = Field(
        _home(".local", "share", "footfall", "stack"),
        description="Data, logs and pid files of the local stack.",
    )
    kafka_version: str = Field("4.1.1", description="Kafka version fetched from Maven Central.")
    hbase_version: str = Field(
        "2.6.1-hadoop3",
        description="HBase version fetched from Maven Central (a `-hadoop3` build).",
    )
    java_home: Path | None = Field(
        None, description="JDK for Kafka and HBase (default: java on PATH)."
    )
    stack_start_timeout_s: float = Field(
        180.0, description="Seconds to wait for a service to answer."
    )

    # --- processing ----------------------------------------------------------------
    session_timeout_s: int = Field(1800, description="Session inactivity timeout, both layers.")
    hll_lg_k: int = Field(14, description="lg_k of the visitors HLL sketches, both layers.")
    archive_url: str = Field(
        str(_home(".local", "share", "footfall", "archive")),
        description="Raw event archive: a local directory or any fsspec URL.",
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once",
        description="Faust processing guarantee; counting is idempotent by construction "
        "(docs/stream.md), so at_least_once is exact.",
    )
    topic_partitions: int = Field(8, description="Partitions of events.raw and the tables.")

    # --- stream worker (footfall worker) ---------------------------------------------
    app_id: str = Field(
        "footfall", description="Faust app id: consumer group and prefix of changelog topics."
    )
    store_url: str = Field("rocksdb://", description="Faust table store (memory:// in unit tests).")
    data_dir: Path = Field(
        _home(".local", "share", "footfall", "worker"),
        description="Worker state: RocksDB tables and the clean-shutdown marker.",
    )
    worker_session_timeout_s: float = Field(
        30.0,
        ge=6.0,
        description="Kafka group session timeout: how long a dead worker keeps its partitions.",
    )
    batch_max_events: int = Field(
        100_000, ge=1, description="Most events one fetch from Kafka hands to the agents."
    )
    queued_batches_max: int = Field(
        1,
        ge=1,
        description="Most fetched batches waiting for each agent's actor of a partition: how "
        "far a worker reads ahead of its counting (memory: each holds up to a whole fetch).",
    )
    fetch_partition_max_kb: int = Field(
        8192,
        ge=64,
        description="Most bytes one fetch takes from a partition (KiB): the size of a batch "
        "when the worker is behind. Larger batches rewrite each touched bucket less often.",
    )
    rocksdb_write_buffer_mb: int = Field(
        16,
        ge=1,
        description="RocksDB memtable size of each table partition's database (MiB; two "
        "per database at most). Every owned partition of every table has one.",
    )
    rocksdb_block_cache_mb: int = Field(
        16, ge=1, description="RocksDB read cache of each table partition's database (MiB)."
    )
    changelog_record_max_mb: int = Field(
        32,
        ge=1,
        description="Largest table record the changelog topics take (their max.message.bytes "
        "and the producer's request limit, MiB): a busy site's minute bucket with its "
        "breakdowns is one record.",
    )
    write_interval_ms: int = Field(
        5000,
        ge=0,
        description="Longest a partition's counted events wait to be written while more are "
        "queued behind them (ms): a worker that is behind writes each touched bucket and "
        "session once per interval, not once per batch. 0: write every batch.",
    )
    write_interval_max_events: int = Field(
        200_000,
        ge=1,
        description="Most events of a partition counted before their records are written.",
    )
    bucket_cache_mb: int = Field(
        128, ge=0, description="Memory for decoded minute buckets kept between batches (MiB)."
    )
    hll_type: Literal["HLL_4", "HLL_6", "HLL_8"] = Field(
        "HLL_8", description="DataSketches HLL register width of the visitors sketches."
    )
    dedupe_window_h: float = Field(
        24.0, ge=24.0, description="Hours an event id is remembered per visitor to drop retries."
    )
    dedupe_max_ids: int = Field(
        1000, ge=1, description="Most event ids remembered per visitor (the newest are kept)."
    )
    bucket_retention_h: float = Field(
        74.0,
        ge=48.0,
        description="Hours minute buckets are kept (>= 48 for reports, > 72 for late events).",
    )
    purge_interval_s: float = Field(
        600.0, gt=0, description="Seconds between purges of expired buckets and sessions."
    )
    influx_flush_interval_s: float = Field(
        1.0, gt=0, description="Seconds between writes of changed minute buckets to InfluxDB."
    )
    influx_batch_points: int = Field(5000, ge=1, description="Points per InfluxDB write request.")
    influx_backoff_max_s: float = Field(
        30.0, gt=0, description="Longest wait between retries while InfluxDB is unreachable."
    )
    archive_flush_events: int = Field(
        50_000, ge=1, description="Events per partition buffered before an archive file is written."
    )
    archive_flush_s: float = Field(
        60.0, gt=0, description="Longest time an event waits in the archive buffer."
    )

    # --- batch layer (footfall reprocess, batch/) -----------------------------------
    batch_spark_master: str = Field(
        "local[*]", description="Spark master of the batch job (`local[N]` or a cluster URL)."
    )
    batch_driver_memory: str = Field("2g", description="Spark driver memory of the batch job.")
    batch_close_delay_s: int = Field(
        900,
        ge=0,
        description="Seconds after a UTC day's end before a recompute marks it complete "
        "(the archive's flush lag); on an open day, minutes this recent are left to the stream.",
    )
    batch_dedupe_margin_s: int = Field(
        3600,
        ge=0,
        description="Seconds of the neighbouring days read to drop duplicate ids across midnight.",
    )
    batch_hbase_rows_per_write: int = Field(
        1000, ge=1, description="Rows per HBase Thrift batch written by the batch job."
    )

    # --- gateway -------------------------------------------------------------------
    gateway_host: str = Field("127.0.0.1", description="Gateway bind address.")
    gateway_port: int = Field(8000, description="Gateway port.")
    demo_pages: bool = Field(
        False, description="Serve the tracker demo page at /demo (development only)."
    )
    events_topic: str = Field("events.raw", description="Topic the gateway publishes events to.")
    sites_topic: str = Field(
        "footfall.sites", description="Compacted topic holding the site registry."
    )
    gateway_publish_timeout_s: float = Field(
        5.0,
        gt=0,
        description="Deadline for Kafka to acknowledge every event of a request; past it: 503.",
    )
    gateway_retry_after_s: int = Field(
        5, ge=1, description="`Retry-After` seconds sent with a 503."
    )
    gateway_trust_forwarded_for: bool = Field(
        False,
        description="Take the client address from the last X-Forwarded-For entry (behind HAProxy).",
    )
    visitor_secret: SecretStr = Field(
        SecretStr(""),
        description="Key of the daily salt of cookieless visitor hashes, the same on every "
        "gateway (at least 16 bytes; empty: random per process, so replicas disagree).",
    )
    visitor_cookie_name: str = Field(
        "ff_vid", description="Name of the first-party visitor cookie."
    )
    visitor_cookie_domain: str = Field(
        "", description="Domain attribute of the visitor cookie (empty: the gateway host only)."
    )
    kafka_linger_ms: int = Field(5, ge=0, description="Producer linger before a batch is sent.")
    kafka_batch_bytes: int = Field(
        262_144, ge=1024, description="Producer batch size per partition, in bytes."
    )
    kafka_compression: Literal["auto", "zstd", "lz4", "gzip", "none"] = Field(
        "auto",
        description="Producer compression; auto: zstd, else lz4 (codec installed), else gzip.",
    )
    rate_limit_events_per_s: float = Field(
        2000.0, ge=0, description="Events/s per site one gateway process accepts (0: no limit)."
    )
    rate_limit_burst: int = Field(
        10_000, ge=1, description="Events per site one gateway process accepts in a burst."
    )
    sample_rate: int = Field(
        1, ge=1, description="Keep 1 in N visitors (a power of two keeps sampled sets nested)."
    )
    sample_rate_max: int = Field(
        1, ge=1, description="Highest N automatic overload sampling may reach (> sample_rate: on)."
    )
    sample_backlog_events: int = Field(
        20_000,
        ge=1,
        description="Events awaiting Kafka acks above which automatic sampling doubles N.",
    )
    web_port: int = Field(6066, description="Worker report API port.")

    # --- reporting API (web/reports, served by the workers) -----------------------------
    worker_url: str = Field(
        "",
        description="URL other workers reach this worker's web port at (empty: "
        "http://<hostname>:<web_port>); reports gather the table partials through it.",
    )
    report_tables_window_h: float = Field(
        48.0,
        gt=0,
        description="Hours back from now that reports read from the worker tables; older "
        "minutes come from HBase (completed batch days) or InfluxDB. Below bucket_retention_h.",
    )
    report_peer_timeout_s: float = Field(
        10.0, gt=0, description="Longest wait for another worker's partials before a 503."
    )
    report_live_ttl_s: float = Field(
        2.0,
        ge=0,
        description="Seconds a report's gathered table partials are reused for the same "
        "span (0: gather on every request); concurrent requests share one gathering.",
    )
    report_batch_range_ttl_s: float = Field(
        30.0, ge=0, description="Seconds a site's batch_until (HBase markers) is reused."
    )
    report_history_ttl_s: float = Field(
        300.0,
        ge=0,
        description="Seconds merged HBase and InfluxDB partials are reused (a rerun of an "
        "already completed day shows after at most this long).",
    )
    report_cache_entries: int = Field(
        4096, ge=0, description="Most merged history partials a worker keeps (LRU)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )

    # --- observability (footfall.logs, footfall.dogstatsd, footfall.tracing) ------------
    environment: str = Field(
        "",
        description="Deployment environment name (ECS service.environment, Datadog env tag, "
        "OpenTelemetry deployment.environment); empty: not set.",
    )
    dogstatsd_enabled: bool = Field(
        False, description="Also send every footfall_* metric to a DogStatsD agent (Datadog)."
    )
    dogstatsd_host: str = Field(
        "127.0.0.1", description="DogStatsD agent host (on Kubernetes: the node's address)."
    )
    dogstatsd_port: int = Field(8125, description="DogStatsD agent UDP port.")
    dogstatsd_interval_s: float = Field(
        10.0, gt=0, description="Seconds between two sends of the metrics to DogStatsD."
    )
    dogstatsd_tags: str = Field(
        "", description="Extra DogStatsD tags on every metric, comma separated (`team:web,a:b`)."
    )
    tracing_enabled: bool = Field(
        False,
        description="Export OpenTelemetry traces over OTLP/HTTP (gateway request -> Kafka "
        "headers -> worker batch).",
    )
    otlp_endpoint: str = Field(
        "http://127.0.0.1:4318",
        description="OTLP/HTTP collector base URL; traces go to <url>/v1/traces.",
    )
    tracing_sample_ratio: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="Share of gateway requests traced (parent-based: the worker follows).",
    )
    metrics_pushgateway_url: str = Field(
        "",
        description="Prometheus Pushgateway the batch job pushes its run metrics to (empty: none).",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
