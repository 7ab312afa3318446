"""A minimal Faust app with footfall.worker_probes installed, for test_worker_probes.py.

Run: python tests/integration/worker_probe_app.py APP_ID TOPIC WEB_PORT DATADIR
"""

from __future__ import annotations

import sys
from typing import Any

import faust

from footfall import worker_probes
from footfall.observability import WorkerMetrics
from footfall.settings import get_settings

app_id, topic_name, port, datadir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
app = faust.App(
    app_id,
    broker=f"kafka://{get_settings().kafka_bootstrap}",
    store="memory://",
    web_port=port,
    topic_partitions=2,
    datadir=datadir,
)
topic = app.topic(topic_name, value_type=bytes, value_serializer="raw", partitions=2)
counts = app.Table("counts", default=int, partitions=2, help="Events per partition.")
metrics = WorkerMetrics()
stream_time: dict[int, int] = {}


@app.agent(topic)
async def consume(stream: Any) -> None:
    async for event in stream.events():
        partition = event.message.partition
        counts[str(partition)] += 1
        stream_time[partition] = int(event.message.timestamp * 1000)
        metrics.events_processed.labels("consume").inc()


def owned() -> set[int]:
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic_name}


worker_probes.install(
    app, metrics, topic=topic_name, stream_time_ms=lambda: stream_time, owned_partitions=owned
)

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()
