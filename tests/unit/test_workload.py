"""tests/workload.py: the workload of `recent_midnight()` is in the past at any time of day."""

from __future__ import annotations

import pytest

from tests.workload import DAY, REACH_MS, recent_midnight, workload

HOUR = 3_600_000
DAY_START = 1_795_651_200_000  # 2026-11-27T00:00Z


@pytest.mark.parametrize("seed", [7, 69])
def test_every_event_is_before_now_whatever_the_hour(seed: int) -> None:
    for hour in range(24):
        now = DAY_START + hour * HOUR + 59 * 60_000
        events = workload(2400, seed=seed, midnight=recent_midnight(now))
        assert max(e["event_time"] for e in events) < now, hour
        assert now - recent_midnight(now) < DAY + REACH_MS  # the latest such midnight
