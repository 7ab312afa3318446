"""How far a worker reads ahead of its counting: `queued_batches_max` batches per actor."""

from __future__ import annotations

import asyncio

import pytest

from agents.topics import events_topic
from footfall.app import app
from footfall.settings import get_settings


@pytest.mark.asyncio
async def test_an_actor_channel_takes_queued_batches_max_then_makes_the_delivery_wait() -> None:
    limit = get_settings().queued_batches_max
    app.flow_control.resume()  # as a running worker's is (a rebalance suspends it)
    # What an isolated actor reads from: a clone of the topic's channel.
    queue = events_topic.clone(is_iterator=True).queue
    for n in range(limit):
        await asyncio.wait_for(queue.put(f"batch {n}"), timeout=1.0)
    with pytest.raises(TimeoutError):
        # footfall.record_batches' delivery awaits this put: it waits for the actor.
        await asyncio.wait_for(queue.put("one more"), timeout=0.2)
    assert queue.get_nowait() == "batch 0"
    await asyncio.wait_for(queue.put("one more"), timeout=1.0)


def test_other_channels_keep_fausts_read_ahead() -> None:
    assert app.channel().queue.maxsize == app.conf.stream_buffer_maxsize > 1
