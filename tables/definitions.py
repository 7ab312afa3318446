"""The Faust tables of the stream layer (RocksDB locally, changelog topics in Kafka).

Keys and values are raw bytes with our own codecs (tables.sessions, tables.buckets): the
values carry HLL sketches and are written whole at every change, so they must be compact.
Each table has as many partitions as `events.raw`, and a record lives on the partition of
the events that made it.
"""

from __future__ import annotations

from footfall.app import app
from footfall.settings import get_settings

_partitions = get_settings().topic_partitions

sessions_by_visitor = app.Table(
    "sessions_by_visitor",
    key_type=bytes,
    value_type=bytes,
    partitions=_partitions,
    help="Current session and recent event ids per site|visitor (tables.sessions.Session).",
)

minutes_by_site = app.Table(
    "minutes_by_site",
    key_type=bytes,
    value_type=bytes,
    partitions=_partitions,
    help="Metrics per site|minute|partition with sketches and breakdowns (tables.buckets).",
)

archive_progress_by_partition = app.Table(
    "archive_progress_by_partition",
    key_type=bytes,
    value_type=bytes,
    partitions=_partitions,
    help="Last events.raw offset written to the raw archive, per partition.",
)
