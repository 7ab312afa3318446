"""Purging expired buckets and idle sessions, in stream time."""

from __future__ import annotations

from agents.upkeep import purge
from tests.reference import envelope
from tests.unit.stream.conftest import Harness

HOUR = 3_600_000
T0 = 1_764_000_000_000 // 86_400_000 * 86_400_000 + 10 * HOUR


async def test_buckets_past_retention_and_idle_sessions_go(harness: Harness) -> None:
    await harness.feed([envelope("shop", "old", T0), envelope("shop", "new", T0 + 70 * HOUR)])
    assert len(harness.buckets()) == 2
    # Not owned: nothing happens.
    assert await purge(set(), {0: T0 + 80 * HOUR}) == (0, 0)
    # 80 h on: the first bucket (> 74 h) and the idle session (> 24 h + 30 min + 1 h) go.
    assert await purge({0}, {0: T0 + 80 * HOUR}) == (1, 1)
    assert [minute for _, minute, _ in harness.buckets()] == [T0 + 70 * HOUR]
    assert harness.session("shop", "old") is None
    assert harness.session("shop", "new") is not None
