"""Fixtures shared by the integration tests that run stream workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]

from footfall.influx import quote_ident
from footfall.settings import get_settings
from footfall.stack.influxdb import InfluxDB
from footfall.stack.kafka import Kafka
from tests.integration.streamkit import StreamEnv, create_topic


@pytest.fixture(scope="module")
def services() -> None:
    """Kafka and InfluxDB running (started if they are not)."""
    settings = get_settings()
    Kafka(settings).start()
    InfluxDB(settings).start()


@pytest.fixture
async def stream_env(services: None, tmp_path: Path) -> AsyncIterator[StreamEnv]:
    """A test's own topic and InfluxDB database, both dropped afterwards."""
    env = StreamEnv(tmp_path)
    influx = InfluxDB(get_settings())
    influx.ensure_database(env.influx_db)
    await create_topic(env)
    yield env
    admin = AIOKafkaAdminClient(bootstrap_servers=get_settings().kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([t for t in await admin.list_topics() if env.tag in t])
    finally:
        await admin.close()
    if influx.check() is None:
        influx.run_query(f"DROP DATABASE {quote_ident(env.influx_db)}")
