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
        "2.6.3-hadoop3", description="HBase version fetched from Maven Central."
    )
    java_home: Path | None = Field(None, description="JDK for Kafka and HBase (default: java on PATH).")
    stack_start_timeout_s: float = Field(180.0, description="Seconds to wait for a service to answer.")

    # --- processing ----------------------------------------------------------------
    session_timeout_s: int = Field(1800, description="Session inactivity timeout, both layers.")
    hll_lg_k: int = Field(14, description="lg_k of the visitors HLL sketches, both layers.")
    archive_url: str = Field(
        str(_home(".local", "share", "footfall", "archive")),
        description="Raw event archive: a local directory or any fsspec URL.",
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "exactly_once", description="Faust processing guarantee."
    )
    topic_partitions: int = Field(8, description="Partitions of events.raw and the tables.")

    # --- gateway -------------------------------------------------------------------
    gateway_host: str = Field("127.0.0.1", description="Gateway bind address.")
    gateway_port: int = Field(8000, description="Gateway port.")
    web_port: int = Field(6066, description="Worker report API port.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
