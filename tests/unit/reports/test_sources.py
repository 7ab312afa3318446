"""Which source answers which minutes: completed batch days after a gap, and what no source has.

The batch layer's HBase rows are stood in for by buckets counted with the stream's rules
(the layers agree on in-order events, spec/metrics.md); the numbers are checked against
tests.reference, written from the spec alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

import datasketches as ds
import pytest
from aiohttp.test_utils import TestClient

from batch.store import Row as StoredRow
from footfall.metrics import COUNTERS
from tests.reference import EVENT_COMBO, reference
from tests.unit.reports import fixtures as fx
from tests.workload import workload
from web.reports.accumulate import SeriesAcc, ValuesAcc
from web.reports.filters import Filter
from web.reports.handlers import Context, create_app
from web.reports.history import BatchSpan, HBaseSource, day_spans
from web.reports.local import DictStore, Read, read_series, read_values
from web.reports.service import Segment, plan

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
DAY = 86_400_000
HOUR = 3_600_000
D0 = 1_795_392_000_000  # 2026-11-23T00:00Z
NOW = D0 + 3 * DAY + 20 * HOUR
TABLES_HOURS = 10  # the tables answer from D3 + 10 h
EVENTS = sorted(
    [
        e
        for i, noon in enumerate([D0 + 12 * HOUR, D0 + DAY + 12 * HOUR, D0 + 2 * DAY + 12 * HOUR])
        for e in workload(600, seed=30 + i, sites=("alpha",), midnight=noon)
    ]
    + workload(600, seed=40, sites=("alpha",), midnight=D0 + 3 * DAY + 6 * HOUR)
    + workload(600, seed=41, sites=("alpha",), midnight=D0 + 3 * DAY + 16 * HOUR),
    key=lambda e: e["received_at"],
)
REF = reference(EVENTS)
# D0 and D2 complete; D1 is being redone (a gap); D3 is today.
COMPLETE = day_spans([D0, D0 + 2 * DAY], DAY)


class FakeHBase:
    """batch_span and rows of the completed days, from buckets counted like the stream's."""

    name = "hbase"

    def __init__(self, data: dict[bytes, bytes]) -> None:
        self.store = DictStore(data)
        self.reads: list[tuple[int, int]] = []

    async def batch_span(self, site: str) -> BatchSpan:
        return BatchSpan(D0, D0 + DAY, COMPLETE)

    def _check(self, start: int, end: int) -> None:
        assert any(a <= start and end <= b for a, b in COMPLETE), "read outside complete days"
        self.reads.append((start, end))

    async def series(self, read: Read, acc: SeriesAcc, start: int, end: int) -> None:
        self._check(start, end)
        read_series(self.store, range(fx.PARTITIONS), read, acc, start, end)

    async def values(self, read: Read, acc: ValuesAcc, start: int, end: int) -> None:
        self._check(start, end)
        read_values(self.store, range(fx.PARTITIONS), read, acc, start, end)


@pytest.fixture(scope="module")
def data() -> dict[bytes, bytes]:
    return fx.count(EVENTS)


@pytest.fixture
async def client(aiohttp_client: MakeClient, data: dict[bytes, bytes]) -> Client:
    reports = fx.service(data, NOW, report_tables_window_h=TABLES_HOURS)
    reports.hbase = cast(HBaseSource, FakeHBase(data))
    return await aiohttp_client(create_app(Context(fx.registry(), reports)))


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def shown(ms: int) -> str:
    """An instant as reports write it in UTC."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="minutes")


async def get_json(client: Client, path: str) -> Any:
    resp = await client.get(f"/api/v1/sites/alpha/{path}", headers=fx.auth("alpha"))
    assert resp.status == 200, await resp.text()
    return await resp.json()


def ref_rows(dimension: str, spans: list[tuple[int, int]]) -> dict[str, Counter[str]]:
    rows: dict[str, Counter[str]] = {}
    for (_, minute), m in REF.items():
        if any(a <= minute < b for a, b in spans):
            for value, row in m.breakdowns[dimension].items():
                rows.setdefault(value, Counter()).update(row.counts)
    return {v: c for v, c in rows.items() if any(c.values())}


def test_plan_answers_every_complete_day_from_hbase() -> None:
    batch = BatchSpan(D0, D0 + DAY, COMPLETE)
    assert plan(D0, NOW, batch, D0 + 3 * DAY + 10 * HOUR) == [
        Segment("hbase", D0, D0 + DAY),
        Segment("influxdb", D0 + DAY, D0 + 2 * DAY),
        Segment("hbase", D0 + 2 * DAY, D0 + 3 * DAY),
        Segment("influxdb", D0 + 3 * DAY, D0 + 3 * DAY + 10 * HOUR),
        Segment("tables", D0 + 3 * DAY + 10 * HOUR, NOW),
    ]
    assert day_spans([D0 + 2 * DAY, D0, D0 + DAY, D0 + 5 * DAY], DAY) == (
        (D0, D0 + 3 * DAY),
        (D0 + 5 * DAY, D0 + 6 * DAY),
    )


@pytest.mark.parametrize("dimension", ["page", "country"])
async def test_breakdown_over_older_days_comes_from_the_batch_rows(
    client: Client, dimension: str
) -> None:
    # D2 (complete, after the gap) and today: HBase, InfluxDB (no rows), the tables
    report = await get_json(
        client,
        f"breakdown?dimension={dimension}&from={iso(D0 + 2 * DAY)}&to={iso(NOW)}&limit=100",
    )
    meta = report["meta"]
    assert [s["source"] for s in meta["sources"]] == ["hbase", "unavailable", "tables"]
    assert meta["complete"] is False
    assert meta["batch_until"] == shown(D0 + DAY)
    gap = f"no {dimension} breakdown rows for {shown(D0 + 3 * DAY)} to "
    assert [w for w in meta["warnings"] if gap in w]
    covered = [(D0 + 2 * DAY, D0 + 3 * DAY), (D0 + 3 * DAY + TABLES_HOURS * HOUR, NOW)]
    want = ref_rows(dimension, covered)
    got = {row["value"]: row for row in report["results"]}
    assert set(got) == set(want)
    key = "pageviews" if dimension == "page" else "sessions"
    for value, row in got.items():
        assert row[key] == want[value][key], value
    # D2 alone: complete, all of it from the batch rows
    whole = await get_json(
        client,
        f"breakdown?dimension={dimension}&from={iso(D0 + 2 * DAY)}&to={iso(D0 + 3 * DAY)}"
        "&limit=100",
    )
    assert whole["meta"]["complete"] is True
    assert whole["meta"]["warnings"] == []
    assert [s["source"] for s in whole["meta"]["sources"]] == ["hbase"]
    want = ref_rows(dimension, [(D0 + 2 * DAY, D0 + 3 * DAY)])
    assert {r["value"]: r[key] for r in whole["results"]} == {v: c[key] for v, c in want.items()}


async def test_filtered_series_is_null_where_no_source_has_rows(client: Client) -> None:
    report = await get_json(
        client,
        f"timeseries?from={iso(D0)}&to={iso(NOW)}&interval=day&tz=UTC&filters=country==IN",
    )
    meta = report["meta"]
    assert [s["source"] for s in meta["sources"]] == [
        "hbase",
        "unavailable",
        "hbase",
        "unavailable",
        "tables",
    ]
    assert meta["complete"] is False
    by_day = [b["sessions"] for b in report["results"]]
    want = ref_rows("country", [(D0, D0 + DAY)])["IN"]["sessions"]
    want2 = ref_rows("country", [(D0 + 2 * DAY, D0 + 3 * DAY)])["IN"]["sessions"]
    assert by_day == [want, None, want2, None]
    assert set(report["totals"].values()) == {None}
    # a range the sources cover whole is exact, totals included
    covered = await get_json(
        client,
        f"timeseries?from={iso(D0 + 2 * DAY)}&to={iso(D0 + 3 * DAY)}&interval=hour&tz=UTC"
        "&filters=country==IN",
    )
    assert covered["meta"]["complete"] is True
    assert covered["totals"]["sessions"] == want2


class CombinationRows:
    """A batch.store stand-in: the reference's rows of a dimension, as HBase rows."""

    def breakdown(self, site: str, dimension: str, start: int, end: int) -> list[StoredRow]:
        rows = []
        for (s, minute), m in sorted(REF.items()):
            if s != site or not start <= minute < end:
                continue
            for value, row in m.breakdowns[dimension].items():
                sketches: dict[int, ds.hll_sketch] = {}
                for visitor, rate in row.visitors.items():
                    sketches.setdefault(rate, ds.hll_sketch(14, ds.tgt_hll_type.HLL_8))
                    sketches[rate].update(visitor)
                rows.append(
                    StoredRow(
                        minute,
                        dict(row.counts),
                        sample_rate_max=max(sketches, default=1),
                        sketches={r: s.serialize_compact() for r, s in sketches.items()},
                        dimension=dimension,
                        value=value,
                    )
                )
        return rows


async def test_hbase_combination_rows_are_filtered_and_grouped_by_a_member() -> None:
    source = HBaseSource(fx.settings(), fx.CONFIG)
    source._store = CombinationRows()  # what _batch_store would open
    flt = Filter((("country", "==", "IN"), ("device", "!=", "mobile")))
    start, end = D0, D0 + DAY
    want: dict[str, Counter[str]] = {}
    for (_, minute), m in REF.items():
        if start <= minute < end:
            for value, row in m.breakdowns[EVENT_COMBO].items():
                page, _, country, device = value.split("\x1f")
                if country == "IN" and device != "mobile":
                    want.setdefault(page, Counter()).update(row.counts)
    assert len(want) > 2
    values = ValuesAcc(fx.CONFIG)
    await source.values(Read("alpha", "breakdown", EVENT_COMBO, flt, "page"), values, start, end)
    pageviews = COUNTERS.index("pageviews")
    got = {v: b.counts[pageviews] for v, b in values.values.items()}
    assert got == {v: c["pageviews"] for v, c in want.items()}
    series = SeriesAcc(fx.CONFIG, [start, end])
    await source.series(Read("alpha", "filter", EVENT_COMBO, flt), series, start, end)
    assert series.total.counts[pageviews] == sum(c["pageviews"] for c in want.values())
    source.close()
