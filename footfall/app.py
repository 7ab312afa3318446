"""The one Faust app of the stream layer; agents/ and tables/ register on it.

Every setting comes from footfall.settings (the environment): broker, store, partitions,
web port, data dir. The processing guarantee is at_least_once: counting is idempotent by
construction (docs/stream.md says why Faust's exactly_once is not used).
"""

from __future__ import annotations

from pathlib import Path

from footfall.record_batches import BatchingApp
from footfall.settings import Settings, get_settings


def broker_urls(bootstrap: str) -> list[str]:
    """Faust broker URLs from the comma-separated bootstrap setting."""
    return [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()]


def app_datadir(settings: Settings) -> Path:
    """Where this app id keeps its RocksDB tables and its clean-shutdown marker."""
    return settings.data_dir / settings.app_id


def create_app(settings: Settings) -> BatchingApp:
    return BatchingApp(
        settings.app_id,
        # Delivered to the agents a fetched batch at a time (footfall.record_batches).
        batched_topics=[settings.events_topic],
        broker=broker_urls(settings.kafka_bootstrap),
        store=settings.store_url,
        autodiscover=["agents", "tables", "web.reports"],
        origin="footfall",
        processing_guarantee=settings.processing_guarantee,
        topic_partitions=settings.topic_partitions,
        web_port=settings.web_port,
        # What other workers call to gather report partials (web/reports/gather.py).
        canonical_url=settings.worker_url or None,
        datadir=str(app_datadir(settings)),
        # Counting and archiving are idempotent by offsets, so a rebalance or a stop need
        # not wait for events in flight: whatever is cut short is done again.
        stream_wait_empty=False,
        producer_acks=-1,
        # Table records up to the changelog topics' own limit (tables/definitions.py).
        producer_max_request_size=settings.changelog_record_max_mb * 2**20,
        broker_max_poll_records=settings.batch_max_events,
        consumer_max_fetch_size=settings.fetch_partition_max_kb * 1024,
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_heartbeat_interval=settings.worker_session_timeout_s / 10,
        loghandlers=[],
    )


app = create_app(get_settings())
