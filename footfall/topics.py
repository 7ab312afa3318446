"""Creating the Kafka topics Footfall owns, idempotently, with the settings they need."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]

# Kafka protocol error code for "topic already exists": not an error for us.
_TOPIC_ALREADY_EXISTS = 36
_MAX_REPLICATION = 3


class TopicError(RuntimeError):
    """A topic could not be created; the message names it and gives Kafka's reason."""


async def ensure_topic(
    bootstrap: str,
    name: str,
    *,
    partitions: int,
    config: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
) -> int:
    """Create `name` unless it exists; return its number of partitions (ids 0..n-1).

    The replication factor is the broker count up to 3, so the same code serves the
    one-node dev stack and a production cluster.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout_s * 1000),
        client_id="footfall-topics",
    )
    await admin.start()
    try:
        # Listing (a metadata request for all topics) never auto-creates a topic; a
        # metadata request naming it would, with the broker's defaults, on dev brokers.
        if name in await admin.list_topics():
            return await _partition_count(admin, name)
        cluster = await admin.describe_cluster()
        replication = max(1, min(_MAX_REPLICATION, len(cluster.get("brokers") or [])))
        topic = NewTopic(
            name=name,
            num_partitions=partitions,
            replication_factor=replication,
            topic_configs=dict(config or {}),
        )
        response = await admin.create_topics([topic], timeout_ms=int(timeout_s * 1000))
        for error in response.topic_errors:
            topic_name, code = error[0], error[1]
            message = error[2] if len(error) > 2 else ""
            if code == _TOPIC_ALREADY_EXISTS:  # created meanwhile by someone else
                return await _partition_count(admin, name)
            if code != 0:
                raise TopicError(f"creating topic {topic_name!r} failed: error {code} {message}")
        return partitions
    except KafkaError as exc:
        raise TopicError(f"creating topic {name!r} failed: {exc}") from exc
    finally:
        await admin.close()


async def _partition_count(admin: Any, name: str, attempts: int = 20) -> int:
    # Right after a creation the metadata may not list the partitions yet.
    for _ in range(attempts):
        described = await admin.describe_topics([name])
        if described and described[0].get("error_code") == 0 and described[0].get("partitions"):
            return len(described[0]["partitions"])
        await asyncio.sleep(0.1)
    raise TopicError(f"topic {name!r} has no partitions in the cluster metadata")
