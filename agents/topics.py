"""The topics the stream layer reads."""

from __future__ import annotations

from footfall.app import app
from footfall.settings import get_settings

_settings = get_settings()

#: Every event the gateway accepted, keyed site|visitor (footfall.events.kafka_key), as the
#: JSON envelope; decoded by the agents themselves (raw bytes, orjson).
events_topic = app.topic(
    _settings.events_topic,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=_settings.topic_partitions,
)
# How many fetched batches wait for each actor (footfall.record_batches delivers a
# partition's fetch as one event; the actors' channels are clones of this one). Faust's
# default read-ahead, 4,096 stream events, let the archive agent (faster than counting)
# decode a backlog's batches while they waited for counting: peak RSS 4.4-4.5 GiB on
# 1,000,000 events, 3.0 with 1, at the same rate (docs/stream.md, "Why batches"). Only
# this topic's channels: Faust's per-record topics keep its default. Set on the topic:
# faust-streaming's `App.topic` takes `maxsize` but does not pass it on.
events_topic.maxsize = _settings.queued_batches_max
