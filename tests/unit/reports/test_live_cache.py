"""The tables' partials of one span are gathered once for concurrent and recent requests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from tests.unit.reports import fixtures as fx
from tests.workload import workload
from web.reports.accumulate import SeriesAcc
from web.reports.gather import SingleNode, TablesSource
from web.reports.local import DictStore, Read

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
