"""How far a worker reads ahead of its actors: `queued_batches_max` batches per channel."""

from __future__ import annotations

import asyncio

import pytest

from footfall.app import create_app
from footfall.settings import get_settings


@pytest.mark.asyncio
async def test_a_channel_takes_queued_batches_max_then_makes_the_consumer_wait() -> None:
    settings = get_settings().model_copy(update={"queued_batches_max": 2})
    app = create_app(settings)
    app.flow_control.resume()  # as a running worker's is (a rebalance suspends it)
    queue = app.channel().queue  # what an agent's actor reads from, sized by the app
    await asyncio.wait_for(queue.put("batch 1"), timeout=1.0)
    await asyncio.wait_for(queue.put("batch 2"), timeout=1.0)
    with pytest.raises(TimeoutError):
        # The consumer's delivery (footfall.record_batches) awaits this put: it waits.
        await asyncio.wait_for(queue.put("batch 3"), timeout=0.2)
    assert queue.get_nowait() == "batch 1"
    await asyncio.wait_for(queue.put("batch 3"), timeout=1.0)
