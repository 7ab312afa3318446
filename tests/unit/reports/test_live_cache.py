"""Reuse of live partials and answers: gathered once, reused while unchanged, served stale."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.unit.reports import fixtures as fx
from tests.workload import workload
from web.reports.accumulate import SeriesAcc
from web.reports.gather import SingleNode, TablesSource
from web.reports.local import DictStore, Read
from web.reports.recent import Recent

MIDNIGHT = 1_795_478_400_000


class CountingStore(DictStore):
    scans = 0

    def scan(self, site: str, partition: int, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        self.scans += 1
        return super().scan(site, partition, start, end)


async def test_one_gathering_serves_concurrent_and_recent_requests() -> None:
    store = CountingStore(fx.count(workload(400, sites=("alpha",), midnight=MIDNIGHT)))
    source = TablesSource(store, SingleNode(fx.PARTITIONS), fx.CONFIG, in_thread=False, ttl_s=60)
    bounds = [MIDNIGHT - 3_600_000, MIDNIGHT, MIDNIGHT + 3_600_000]
    accs = [SeriesAcc(fx.CONFIG, bounds) for _ in range(5)]
    read = Read("alpha", "total")
    await asyncio.gather(*(source.series(read, a, bounds[0], bounds[-1], "") for a in accs))
    assert store.scans == fx.PARTITIONS  # one pass over the partitions for all five
    totals = {a.total.counts[0] for a in accs}
    assert len(totals) == 1
    assert totals.pop() > 0
    again = SeriesAcc(fx.CONFIG, bounds)
    await source.series(read, again, bounds[0], bounds[-1], "")
    assert store.scans == fx.PARTITIONS
    fresh = TablesSource(store, SingleNode(fx.PARTITIONS), fx.CONFIG, in_thread=False, ttl_s=0)
    plain = SeriesAcc(fx.CONFIG, bounds)
    await fresh.series(read, plain, bounds[0], bounds[-1], "")
    assert plain.total.counts == again.total.counts
    assert plain.total.visitors() == again.total.visitors()


async def test_merged_groups_are_reused_only_while_their_buckets_are_unchanged() -> None:
    events = workload(400, sites=("alpha",), midnight=MIDNIGHT)
    first, later = events[:250], events[250:]
    data = fx.count(first)
    source = TablesSource(DictStore(data), SingleNode(fx.PARTITIONS), fx.CONFIG, in_thread=False)
    bounds = [MIDNIGHT - 2 * 3_600_000, MIDNIGHT, MIDNIGHT + 2 * 3_600_000]
    read = Read("alpha", "total")

    async def total() -> tuple[list[int], float | None]:
        acc = SeriesAcc(fx.CONFIG, bounds)
        await source.series(read, acc, bounds[0], bounds[-1], "")
        return acc.total.counts, acc.total.visitors()

    before = await total()
    assert await total() == before
    assert source.memo.hits > 0
    misses = source.memo.misses
    data.update(fx.count(first + later))  # more events: some buckets change, most do not
    after = await total()
    assert source.memo.misses > misses
    fresh = TablesSource(DictStore(data), SingleNode(fx.PARTITIONS), fx.CONFIG, in_thread=False)
    acc = SeriesAcc(fx.CONFIG, bounds)
    await fresh.series(read, acc, bounds[0], bounds[-1], "")
    assert after == (acc.total.counts, acc.total.visitors())
    assert after != before


async def test_stale_answers_are_served_while_one_recompute_runs() -> None:
    recent = Recent(ttl_s=0.05, stale_s=10)
    calls = 0
    release = asyncio.Event()

    async def compute() -> int:
        nonlocal calls
        calls += 1
        if calls > 1:
            await release.wait()
        return calls

    assert await recent.get("k", compute) == 1
    await asyncio.sleep(0.06)
    # stale: answered at once from the previous result, one recompute started
    assert [await recent.get("k", compute) for _ in range(3)] == [1, 1, 1]
    await asyncio.sleep(0)
    assert calls == 2
    release.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert await recent.get("k", compute) == 2

    async def fail() -> int:
        raise RuntimeError("down")

    await asyncio.sleep(0.06)
    assert await recent.get("k", fail) == 2  # stale, the failing recompute runs behind it
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await recent.get("k", fail)  # the failure dropped the entry: the caller sees it
    # a caller that takes no stale answer waits for a fresh one
    calls = 0

    async def counted() -> int:
        nonlocal calls
        calls += 1
        return 10 + calls

    assert await recent.get("r", counted) == 11
    await asyncio.sleep(0.06)
    assert await recent.get("r", counted, stale=False) == 12
