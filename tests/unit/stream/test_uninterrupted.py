"""tables.io.uninterrupted: a batch's writes finish even when its actor is cancelled."""

from __future__ import annotations

import asyncio

import pytest

from tables import io


async def test_cancelling_the_caller_lets_the_work_finish_then_cancels_it() -> None:
    steps: list[str] = []
    started = asyncio.Event()

    async def writes() -> str:
        steps.append("first half")
        started.set()
        await asyncio.sleep(0.05)
        steps.append("second half")
        return "done"

    caller = asyncio.create_task(io.uninterrupted(writes()))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert steps == ["first half", "second half"]


async def test_without_cancellation_the_result_comes_back() -> None:
    async def writes() -> int:
        await asyncio.sleep(0)
        return 7

    assert await io.uninterrupted(writes()) == 7
