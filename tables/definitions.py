"""The Faust tables of the stream layer (RocksDB locally, changelog topics in Kafka).

Keys and values are raw bytes with our own codecs (tables.sessions, tables.buckets): the
values carry HLL sketches and are written whole at every change, so they must be compact.
Each table has as many partitions as `events.raw`, and a record lives on the partition of
the events that made it.
"""

from __future__ import annotations

from footfall.app import app
from footfall.settings import get_settings

_settings = get_settings()
_partitions = _settings.topic_partitions


# A minute bucket is one record, and a busy site's (thousands of pages and their
# combinations, each with a sketch) outgrows Kafka's 1 MiB default.
_CHANGELOG_CONFIG = {"max.message.bytes": str(_settings.changelog_record_max_mb * 2**20)}


def _store_options() -> dict[str, int]:
    """RocksDB sizes per partition database (a new dict each: Faust pops keys from it).

    Faust's defaults (64 MiB memtables, three of them, and a 2 GiB read cache, per
    database) would let a worker owning 8 partitions of 3 tables grow past 4 GiB.
    """
    return {
        "write_buffer_size": _settings.rocksdb_write_buffer_mb * 2**20,
        "max_write_buffer_number": 2,
        "block_cache_size": _settings.rocksdb_block_cache_mb * 2**20,
    }


sessions_by_visitor = app.Table(
    "sessions_by_visitor",
    key_type=bytes,
    value_type=bytes,
    partitions=_partitions,
    options=_store_options(),
    extra_topic_configs=_CHANGELOG_CONFIG,
    help="Current session and recent event ids per site|visitor (tables.sessions.Session).",
)

minutes_by_site = app.Table(
    "minutes_by_site",
    key_type=bytes,
    value_type=bytes,
    partitions=_partitions,
    options=_store_options(),
    extra_topic_configs=_CHANGELOG_CONFIG,
    help="Metrics per site|minute|partition with sketches and breakdowns (tables.buckets).",
)

archive_progress_by_partition = app.Table(
    "archive_progress_by_partition",
    key_type=bytes,
    value_type=bytes,
    partitions=_partitions,
    options=_store_options(),
    extra_topic_configs=_CHANGELOG_CONFIG,
    help="Last events.raw offset written to the raw archive, per partition.",
)
