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
