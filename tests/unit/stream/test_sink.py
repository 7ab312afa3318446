"""The InfluxDB sink's dirty set: nothing leaves it before InfluxDB took it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from agents.sink import InfluxSink, bucket_line
from footfall.influx import InfluxError
from footfall.visitors import SketchConfig
from tables.buckets import Bucket, bucket_key


class FakeInflux:
    """Takes writes, or refuses them while `down`."""

    def __init__(self) -> None:
        self.down = False
        self.writes: list[list[str]] = []
        self.on_write: Any = None

    async def write(self, lines: Sequence[str], **_: Any) -> None:
        if self.on_write is not None:
            self.on_write()
        if self.down:
            raise InfluxError("connection refused")
        self.writes.append(list(lines))

    async def close(self) -> None:
        pass


def sink_for(client: FakeInflux, batch_points: int = 2) -> InfluxSink:
    return InfluxSink(
        lambda: client,  # type: ignore[arg-type,return-value]
        batch_points=batch_points,
        interval_s=0.01,
        backoff_max_s=0.05,
    )


async def test_points_are_kept_while_influxdb_is_down_and_written_after() -> None:
    client = FakeInflux()
    sink = sink_for(client)
    for i in range(5):
        sink.mark(f"k{i}".encode(), f"minute,site=s v={i}i")
    client.down = True
    with pytest.raises(InfluxError):
        await sink.flush()
    assert sink.pending() == 5
    client.down = False
    assert await sink.flush() == 5
    assert sink.pending() == 0
    assert [len(w) for w in client.writes] == [2, 2, 1]


async def test_a_point_changed_during_its_write_stays_dirty() -> None:
    client = FakeInflux()
    sink = sink_for(client, batch_points=10)
    sink.mark(b"k", "old")
    client.on_write = lambda: sink.mark(b"k", "new")
    await sink.flush()
    assert sink.pending() == 1
    client.on_write = None
    await sink.flush()
    assert client.writes[-1] == ["new"]


async def test_the_loop_backs_off_and_recovers() -> None:
    client = FakeInflux()
    client.down = True
    sink = sink_for(client)
    sink.mark(b"k", "p")
    task = asyncio.create_task(sink.run())
    try:
        async with asyncio.timeout(5):
            while sink.failures < 3:  # noqa: ASYNC110 - polls the sink
                await asyncio.sleep(0.01)
            client.down = False
            while sink.pending():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert client.writes == [["p"]]


def test_forgetting_revoked_partitions() -> None:
    sink = sink_for(FakeInflux())
    sink.mark(bucket_key("s", 0, 1), "a")
    sink.mark(bucket_key("s", 0, 2), "b")
    sink.forget_partitions({1})
    assert sink.pending() == 1


def test_a_bucket_point_carries_every_counter_and_revenue() -> None:
    config = SketchConfig()
    bucket = Bucket(config)
    bucket.total.counts[:] = [3, 2, 1, 1, 0, 60_000]
    bucket.total.visitors.add("a", 4)
    bucket.revenue["INR"] = 1_500_000
    line = bucket_line(bucket_key("shop", 1_764_000_000_000, 3), bucket)
    assert line == (
        "minute,partition=3,site=shop events=3i,pageviews=2i,transactions=1i,sessions=1i,"
        "bounces=0i,duration_sum=60000i,visitors=4.0,sample_rate_max=4i,"
        "revenue_INR=1500000i 1764000000000"
    )
