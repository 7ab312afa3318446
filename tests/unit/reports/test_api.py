"""The report endpoints over buckets counted by the stream's rules (no services).

Numbers are checked against tests.reference (spec/metrics.md written out plainly, sharing
no code with footfall.metrics or tables/) and, for visitors, against sketches the test
builds and merges itself from the same events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import datasketches as ds
import orjson
import pytest
from aiohttp.test_utils import TestClient

from footfall.metrics import COUNTERS as COUNTER_NAMES
from footfall.settings import get_settings
from footfall.sites.registry import SiteRegistry
from tests.reference import EVENT_COMBO, SESSION_COMBO, Minute, reference
from tests.unit.reports import fixtures as fx
from tests.workload import workload
from web.reports.handlers import create_app
from web.reports.merge import decode_partials

PAGEVIEWS = COUNTER_NAMES.index("pageviews")

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
MIDNIGHT = 1_795_478_400_000  # 2026-11-24T00:00Z
KOLKATA_MIDNIGHT = MIDNIGHT - 330 * 60_000  # 2026-11-24T00:00+05:30
EVENTS = sorted(
    workload(2000, sites=("alpha",), midnight=MIDNIGHT)
    + workload(1500, seed=11, sites=("kol",), midnight=KOLKATA_MIDNIGHT),
    key=lambda e: e["received_at"],
)
NOW = MIDNIGHT + 2 * 3_600_000
REF = reference(EVENTS)
COUNTERS = ("events", "pageviews", "transactions", "sessions", "bounces", "duration_sum")


@pytest.fixture(scope="module")
def data() -> dict[bytes, bytes]:
    return fx.count(EVENTS)


@pytest.fixture
async def client(aiohttp_client: MakeClient, data: dict[bytes, bytes]) -> Client:
    return await aiohttp_client(create_app(fx.context(data, NOW)))


def iso_ms(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


def ref_sum(site: str, start: int, end: int) -> tuple[Counter[str], Counter[str], dict[str, int]]:
    """Counters, revenue units and visitor -> rate of the reference minutes in [start, end)."""
    counts: Counter[str] = Counter()
    revenue: Counter[str] = Counter()
    visitors: dict[str, int] = {}
    for (s, minute), m in REF.items():
        if s == site and start <= minute < end:
            counts.update(m.total.counts)
            revenue.update(m.revenue)
            visitors.update(m.total.visitors)
    return counts, revenue, visitors


def merged_sketch_estimate(site: str, start: int, end: int) -> float:
    """Visitors of [start, end): one sketch per minute and rate, unioned by the test."""
    per_minute: dict[tuple[int, int], ds.hll_sketch] = {}
    for e in EVENTS:
        if e["site"] != site or e["bot"] or not start <= e["event_time"] < end:
            continue
        key = (e["event_time"] // 60_000, e["sample_rate"])
        sketch = per_minute.setdefault(key, ds.hll_sketch(14, ds.tgt_hll_type.HLL_8))
        sketch.update(e["visitor"])
    unions: dict[int, ds.hll_union] = {}
    for (_, rate), sketch in per_minute.items():
        unions.setdefault(rate, ds.hll_union(14)).update(sketch)
    return float(sum(rate * u.get_estimate() for rate, u in unions.items()))


def check_metrics(got: Mapping[str, Any], counts: Counter[str], revenue: Counter[str]) -> None:
    for name in COUNTERS:
        want = counts[name] / 1000 if name == "duration_sum" else counts[name]
        assert got[name] == pytest.approx(want), name
    assert got["revenue"] == {c: pytest.approx(u / 1e6) for c, u in revenue.items() if u}
    sessions = counts["sessions"]
    if sessions:
        assert got["bounce_rate"] == pytest.approx(counts["bounces"] / sessions)
        assert got["avg_duration"] == pytest.approx(counts["duration_sum"] / 1000 / sessions)
        assert got["views_per_session"] == pytest.approx(counts["pageviews"] / sessions)


# --- auth --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["timeseries", "breakdown?dimension=page", "realtime"])
async def test_no_key_is_401_and_another_sites_key_403(client: Client, path: str) -> None:
    url = f"/api/v1/sites/alpha/{path}"
    resp = await client.get(url)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await resp.json())["error"]["code"] == "unauthorized"
    resp = await client.get(url, headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert resp.status == 401
    resp = await client.get(url, headers=fx.auth("kol"))
    assert resp.status == 403
    resp = await client.get(url, headers={"Authorization": "Bearer ff_not_a_key"})
    assert resp.status == 403
    resp = await client.get("/api/v1/sites/nosuchsite/realtime", headers=fx.auth("alpha"))
    assert resp.status == 403
    resp = await client.get(url, headers=fx.auth("alpha"))
    assert resp.status == 200


async def test_keys_never_reach_the_log(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    await client.get("/api/v1/sites/alpha/timeseries", headers=fx.auth("alpha"))
    await client.get("/api/v1/sites/alpha/timeseries", headers=fx.auth("kol"))
    await client.get("/api/v1/sites/alpha/timeseries?interval=x", headers=fx.auth("alpha"))
    assert caplog.records  # one line per request
    for key in fx.KEYS.values():
        assert key not in caplog.text


async def test_partials_endpoint_checks_the_forwarded_key(client: Client) -> None:
    body = b'{"site":"alpha","mode":"total","bounds":[0,60000],"partitions":[0]}'
    assert (await client.post("/internal/v1/partials", data=body)).status == 401
    assert (
        await client.post("/internal/v1/partials", data=body, headers=fx.auth("kol"))
    ).status == 403
    assert (
        await client.post("/internal/v1/partials", data=b"[1]", headers=fx.auth("alpha"))
    ).status == 400
    ok = await client.post("/internal/v1/partials", data=body, headers=fx.auth("alpha"))
    assert ok.status == 200
    assert ok.content_type == "application/octet-stream"


async def test_partials_endpoint_carries_filters_on_several_dimensions(client: Client) -> None:
    start, end = MIDNIGHT - 3_600_000, MIDNIGHT + 3_600_000
    request = {
        "site": "alpha",
        "mode": "breakdown",
        "dimension": EVENT_COMBO,
        "group": "country",
        "filter": {"conditions": [["page", "==", "/pricing"], ["device", "!=", "mobile"]]},
        "bounds": [start, end],
        "partitions": list(range(fx.PARTITIONS)),
    }
    resp = await client.post(
        "/internal/v1/partials", data=orjson.dumps(request), headers=fx.auth("alpha")
    )
    assert resp.status == 200
    partials = decode_partials(await resp.read())
    want = ref_combined("alpha", "page==/pricing;device!=mobile", start, end, "country")
    assert {v: a.counts[PAGEVIEWS] for v, a in partials.values.items() if a.counts[PAGEVIEWS]} == {
        v: c["pageviews"] for v, (c, _) in want.items() if c["pageviews"]
    }
    for bad in (
        {**request, "group": "browser"},  # not a member of the rows
        {**request, "filter": {"conditions": [["os", "==", "iOS"]]}},  # not held by the rows
    ):
        resp = await client.post(
            "/internal/v1/partials", data=orjson.dumps(bad), headers=fx.auth("alpha")
        )
        assert resp.status == 400


# --- every parameter's error path, over HTTP -------------------------------------------------
@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("timeseries?from=soon", "from"),
        ("timeseries?to=2026-02-30", "to"),
        ("timeseries?from=2026-11-03&to=2026-11-02", "to"),
        ("timeseries?interval=year", "interval"),
        ("timeseries?tz=Asia/Bombay2", "tz"),
        ("timeseries?metrics=visits", "metrics"),
        ("timeseries?filters=page~/", "filters"),
        ("timeseries?filters=page==/;browser==Firefox", "filters"),
        ("timeseries?from=2026-11-01&to=2026-11-05&interval=minute", "from"),
        ("timeseries?interval=day&interval=hour", "interval"),
        ("timeseries?foo=1", "foo"),
        ("breakdown", "dimension"),
        ("breakdown?dimension=page&limit=-1", "limit"),
        ("breakdown?dimension=page&metrics=bounce_rate", "metrics"),
        ("breakdown?dimension=page&filters=browser==x", "filters"),
        ("breakdown?dimension=page&from=2024-01-01&to=2026-01-01", "from"),
        ("breakdown?dimension=page&tz=UTC+1", "tz"),
        ("breakdown?dimension=page&from=x", "from"),
        ("breakdown?dimension=page&to=x", "to"),
        ("realtime?tz=Nowhere", "tz"),
        ("realtime?interval=day", "interval"),
    ],
)
async def test_bad_parameters_are_400_naming_them(client: Client, path: str, param: str) -> None:
    resp = await client.get(f"/api/v1/sites/alpha/{path}", headers=fx.auth("alpha"))
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["param"] == param
    assert error["message"]
    assert error["allowed"]


async def test_too_large_a_range_names_the_limit(client: Client) -> None:
    resp = await client.get(
        "/api/v1/sites/alpha/timeseries?from=2026-01-01&to=2026-06-01&interval=hour",
        headers=fx.auth("alpha"),
    )
    error = (await resp.json())["error"]
    assert resp.status == 400
    assert error["code"] == "range_too_large"
    assert error["limit"] == {"interval": "hour", "max_days": 92}


# --- numbers -----------------------------------------------------------------------------------
async def get_json(client: Client, path: str, site: str = "alpha") -> Any:
    resp = await client.get(f"/api/v1/sites/{site}/{path}", headers=fx.auth(site))
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_totals_equal_an_independent_merge_of_the_same_events(client: Client) -> None:
    start, end = MIDNIGHT - 2 * 3_600_000, MIDNIGHT + 2 * 3_600_000
    report = await get_json(
        client, f"timeseries?from={iso(start)}&to={iso(end)}&interval=hour&tz=UTC"
    )
    counts, revenue, visitors = ref_sum("alpha", start, end)
    check_metrics(report["totals"], counts, revenue)
    exact = sum(visitors.values())
    merged = merged_sketch_estimate("alpha", start, end)
    assert report["totals"]["visitors"] == round(merged)
    assert abs(report["totals"]["visitors"] - exact) <= 0.02 * exact
    # never a sum of smaller buckets: the hours' visitors add up to more than the total
    assert sum(b["visitors"] for b in report["results"]) > report["totals"]["visitors"]
    for bucket in report["results"]:
        t = iso_ms(bucket["t"])
        counts, revenue, _ = ref_sum("alpha", t, t + 3_600_000)
        check_metrics(bucket, counts, revenue)
        assert bucket["visitors"] == round(merged_sketch_estimate("alpha", t, t + 3_600_000))
    assert report["meta"]["sampled"] is True  # the workload samples some visitors at 4
    assert report["meta"]["batch_until"] is None
    assert [s["source"] for s in report["meta"]["sources"]] == ["tables"]


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


async def test_kolkata_day_buckets_start_at_local_midnight(client: Client) -> None:
    report = await get_json(client, "timeseries?from=2026-11-23&to=2026-11-26&interval=day", "kol")
    assert report["tz"] == "Asia/Kolkata"
    assert [b["t"] for b in report["results"]] == [
        "2026-11-23T00:00+05:30",
        "2026-11-24T00:00+05:30",
        "2026-11-25T00:00+05:30",
    ]
    kolkata = ZoneInfo("Asia/Kolkata")
    for bucket in report["results"]:
        start = iso_ms(bucket["t"])
        assert datetime.fromtimestamp(start / 1000, kolkata).strftime("%H:%M") == "00:00"
        end = start + 86_400_000
        counts, revenue, _ = ref_sum("kol", start, end)
        check_metrics(bucket, counts, revenue)
        assert bucket["visitors"] == round(merged_sketch_estimate("kol", start, end))
    # kol's events span 22:45 to 01:15 Kolkata time: cut at local midnight (18:30 UTC)
    before, after, later = (b["events"] for b in report["results"])
    assert before == ref_sum("kol", 0, KOLKATA_MIDNIGHT)[0]["events"] > 0
    assert after == ref_sum("kol", KOLKATA_MIDNIGHT, 2 * 10**13)[0]["events"] > 0
    assert later == 0


async def test_filtered_series_matches_the_reference(client: Client) -> None:
    start, end = MIDNIGHT - 2 * 3_600_000, MIDNIGHT + 2 * 3_600_000
    rng = f"from={iso(start)}&to={iso(end)}&interval=day&tz=UTC"
    report = await get_json(client, f"timeseries?{rng}&filters=country!=IN;country!=US")
    sessions = bounces = 0
    for (site, minute), m in REF.items():
        if site == "alpha" and start <= minute < end:
            for value, row in m.breakdowns["country"].items():
                if value not in ("IN", "US"):
                    sessions += row.counts["sessions"]
                    bounces += row.counts["bounces"]
    assert report["totals"]["sessions"] == sessions
    assert report["totals"]["bounces"] == bounces
    assert "pageviews" not in report["totals"]
    assert report["filters"] == "country!=IN;country!=US"
    page = await get_json(client, f"timeseries?{rng}&filters=page==/pricing&metrics=pageviews")
    want = sum(
        m.breakdowns["page"]["/pricing"].counts["pageviews"]
        for (site, minute), m in REF.items()
        if site == "alpha" and start <= minute < end
    )
    assert page["totals"] == {"pageviews": want}


FILTERS = [
    "page==/pricing",
    "page!=/",
    "page!=/;page!=/cart",
    "source==google.com",
    "source!=direct;source!=twitter.com",
    "country==IN",
    "country!=US",
    "device!=mobile",
    "device==tablet;device!=tablet",
]


def ref_filtered(
    site: str, text: str, start: int, end: int
) -> tuple[Counter[str], dict[str, int], dict[str, Counter[str]]]:
    """Counters and visitors of the rows the filter keeps, and counters per kept value."""
    dimension = text.split("=")[0].rstrip("!")
    conditions = [
        (part[len(dimension) : len(dimension) + 2], part[len(dimension) + 2 :])
        for part in text.split(";")
    ]
    counts: Counter[str] = Counter()
    visitors: dict[str, int] = {}
    per_value: dict[str, Counter[str]] = {}
    for (s, minute), m in REF.items():
        if s != site or not start <= minute < end:
            continue
        for value, row in m.breakdowns[dimension].items():
            if all((value == wanted) == (op == "==") for op, wanted in conditions):
                counts.update(row.counts)
                visitors.update(row.visitors)
                per_value.setdefault(value, Counter()).update(row.counts)
    return counts, visitors, {v: c for v, c in per_value.items() if any(c.values())}


@pytest.mark.parametrize("text", FILTERS)
async def test_filters_match_the_reference_in_series_and_breakdowns(
    client: Client, text: str
) -> None:
    dimension = text.split("=")[0].rstrip("!")
    counters = ("events", "pageviews") if dimension == "page" else ("sessions", "bounces")
    start, end = MIDNIGHT - 2 * 3_600_000, MIDNIGHT + 2 * 3_600_000
    rng = f"from={iso(start)}&to={iso(end)}"
    query = f"{rng}&interval=hour&tz=UTC&filters={quote(text)}"
    report = await get_json(client, f"timeseries?{query}")
    assert report["filters"] == text
    assert report["meta"]["complete"] is True
    for bucket in [*report["results"], report["totals"]]:
        t = iso_ms(bucket["t"]) if "t" in bucket else start
        span = 3_600_000 if "t" in bucket else end - start
        counts, visitors, _ = ref_filtered("alpha", text, t, t + span)
        for name in counters:
            assert bucket[name] == counts[name], (name, bucket.get("t"))
        exact = sum(visitors.values())
        assert abs(bucket["visitors"] - exact) <= max(1, 0.02 * exact)
    breakdown = await get_json(
        client, f"breakdown?dimension={dimension}&{rng}&limit=1000&filters={quote(text)}"
    )
    _, _, per_value = ref_filtered("alpha", text, start, end)
    got = {row["value"]: row for row in breakdown["results"]}
    assert set(got) == set(per_value)
    key = counters[1] if dimension == "page" else counters[0]
    for value, row in got.items():
        assert row[key] == per_value[value][key], value


def conditions_of(text: str) -> list[tuple[str, str, str]]:
    """(dimension, op, value) of a `filters` text, parsed by the test."""
    found = []
    for part in text.split(";"):
        at = min(p for p in (part.find("=="), part.find("!=")) if p >= 0)
        found.append((part[:at], part[at : at + 2], part[at + 2 :]))
    return found


def ref_combined(
    site: str, text: str, start: int, end: int, group: str | None = None
) -> dict[str | None, tuple[Counter[str], dict[str, int]]]:
    """Counters and visitors of the reference's combination rows meeting every condition
    of `text`, per value of `group` (None: all together)."""
    conditions = conditions_of(text)
    named = {d for d, _, _ in conditions} | ({group} if group else set())
    combo = EVENT_COMBO if "page" in named else SESSION_COMBO
    members = combo.split("+")
    found: dict[str | None, tuple[Counter[str], dict[str, int]]] = {}
    for (s, minute), m in REF.items():
        if s != site or not start <= minute < end:
            continue
        for value, row in m.breakdowns[combo].items():
            parts = value.split("\x1f")
            if all((parts[members.index(d)] == v) == (op == "==") for d, op, v in conditions):
                key = parts[members.index(group)] if group else None
                counts, visitors = found.setdefault(key, (Counter(), {}))
                counts.update(row.counts)
                visitors.update(row.visitors)
    return {k: v for k, v in found.items() if any(v[0].values())}


def close(got: float, exact: int) -> bool:
    return abs(got - exact) <= max(1, 0.02 * exact)


COMBINED = [
    "country==IN;device==mobile",
    "source!=direct;country==US",
    "device!=mobile;country!=IN;source==google.com",
    "page==/pricing;country==IN",
    "page!=/;page!=/cart;device==desktop",
    "country==BR;page==/checkout;source!=twitter.com",
]


@pytest.mark.parametrize("text", COMBINED)
async def test_filters_on_several_dimensions_match_the_reference(client: Client, text: str) -> None:
    start, end = MIDNIGHT - 2 * 3_600_000, MIDNIGHT + 2 * 3_600_000
    query = f"from={iso(start)}&to={iso(end)}&interval=hour&tz=UTC&filters={quote(text)}"
    report = await get_json(client, f"timeseries?{query}")
    assert report["filters"] == text
    assert report["meta"]["complete"] is True
    event_scoped = "page" in text
    counters = (
        ("events", "pageviews", "transactions")
        if event_scoped
        else (
            "sessions",
            "bounces",
        )
    )
    assert set(report["totals"]) == (
        {"visitors", "events", "pageviews", "transactions"}
        if event_scoped
        else {"visitors", "sessions", "bounces", "duration_sum", "bounce_rate", "avg_duration"}
    )
    nonzero = 0
    for bucket in [*report["results"], report["totals"]]:
        t = iso_ms(bucket["t"]) if "t" in bucket else start
        span = 3_600_000 if "t" in bucket else end - start
        counts, visitors = ref_combined("alpha", text, t, t + span).get(None, (Counter(), {}))
        for name in counters:
            assert bucket[name] == counts[name], (name, bucket.get("t"))
        assert close(bucket["visitors"], sum(visitors.values())), bucket.get("t")
        nonzero += bool(counts[counters[0]])
    assert nonzero > 1  # the workload has such events: not a comparison of zeros


BREAKDOWNS = [
    ("page", "country==IN"),
    ("page", "page!=/;source==google.com;device!=tablet"),
    ("country", "page==/pricing"),
    ("device", "country==IN"),
    ("source", "country!=US;source!=direct"),
    ("country", "device==mobile;country!=BR"),
]


@pytest.mark.parametrize(("dimension", "text"), BREAKDOWNS)
async def test_breakdowns_filtered_by_other_dimensions_match_the_reference(
    client: Client, dimension: str, text: str
) -> None:
    start, end = MIDNIGHT - 2 * 3_600_000, MIDNIGHT + 2 * 3_600_000
    event_scoped = "page" in (dimension, *(d for d, _, _ in conditions_of(text)))
    metrics = "pageviews,events,visitors" if event_scoped else "sessions,bounces,visitors"
    report = await get_json(
        client,
        f"breakdown?dimension={dimension}&from={iso(start)}&to={iso(end)}&limit=1000"
        f"&metrics={metrics}&filters={quote(text)}",
    )
    assert report["dimension"] == dimension
    want = ref_combined("alpha", text, start, end, dimension)
    assert len(want) > 1
    got = {row["value"]: row for row in report["results"]}
    assert set(got) == set(want)
    names = metrics.split(",")[:2]
    for value, (counts, visitors) in want.items():
        for name in names:
            assert got[value][name] == counts[name], (value, name)
        assert close(got[value]["visitors"], sum(visitors.values())), value
    first = [row[names[0]] for row in report["results"]]
    assert first == sorted(first, reverse=True)


async def test_a_breakdown_filtered_by_another_dimension_keeps_the_limit(client: Client) -> None:
    start, end = MIDNIGHT - 2 * 3_600_000, MIDNIGHT + 2 * 3_600_000
    report = await get_json(
        client,
        f"breakdown?dimension=page&from={iso(start)}&to={iso(end)}&limit=2&filters=country==IN"
        "&metrics=pageviews,events",
    )
    want = ref_combined("alpha", "country==IN", start, end, "page")
    top = sorted(want, key=lambda v: (-want[v][0]["pageviews"], v))[:2]
    assert [row["value"] for row in report["results"]] == top
    assert set(report["results"][0]) == {"value", "pageviews", "events"}
    default = await get_json(
        client,
        f"breakdown?dimension=country&from={iso(start)}&to={iso(end)}&filters=page==/pricing",
    )
    assert set(default["results"][0]) == {"value", "visitors", "pageviews", "events"}


@pytest.mark.parametrize(
    "path",
    [
        "timeseries?filters=country==IN;browser==Firefox",
        "timeseries?filters=page==/;event==signup",
        "breakdown?dimension=page&filters=os==iOS",
        "breakdown?dimension=browser&filters=country==IN",
        "breakdown?dimension=event&filters=page==/",
    ],
)
async def test_filters_on_dimensions_that_do_not_combine_are_refused_saying_which_do(
    client: Client, path: str
) -> None:
    resp = await client.get(f"/api/v1/sites/alpha/{path}", headers=fx.auth("alpha"))
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "filter_not_supported"
    assert error["param"] == "filters"
    assert error["limit"]["dimensions"] == 1
    assert error["limit"]["combinable"] == ["page", "source", "country", "device"]
    assert "cannot be answered exactly" in error["message"]
    assert "page, source, country, device" in error["allowed"]


async def test_combination_rows_are_not_a_dimension(client: Client) -> None:
    for name in (SESSION_COMBO, EVENT_COMBO):
        resp = await client.get(
            f"/api/v1/sites/alpha/breakdown?dimension={quote(name)}", headers=fx.auth("alpha")
        )
        assert resp.status == 400
        assert (await resp.json())["error"]["param"] == "dimension"


def ref_breakdown(
    site: str, dimension: str, start: int, end: int
) -> dict[str, tuple[Counter[str], int]]:
    rows: dict[str, tuple[Counter[str], dict[str, int]]] = {}
    for (s, minute), m in REF.items():
        if s == site and start <= minute < end:
            for value, row in m.breakdowns[dimension].items():
                counts, visitors = rows.setdefault(value, (Counter(), {}))
                counts.update(row.counts)
                visitors.update(row.visitors)
    return {v: (c, sum(vis.values())) for v, (c, vis) in rows.items()}


@pytest.mark.parametrize(
    "dimension", ["page", "source", "country", "device", "entry_page", "event"]
)
async def test_breakdown_matches_the_reference(client: Client, dimension: str) -> None:
    start, end = MIDNIGHT - 2 * 3_600_000, MIDNIGHT + 2 * 3_600_000
    report = await get_json(
        client, f"breakdown?dimension={dimension}&from={iso(start)}&to={iso(end)}&limit=1000"
    )
    want = ref_breakdown("alpha", dimension, start, end)
    got = {row["value"]: row for row in report["results"]}
    assert set(got) == {v for v, (c, _) in want.items() if any(c.values())}
    first = report["results"][0]
    ordered = [row[next(iter(k for k in first if k != "value"))] for row in report["results"]]
    assert ordered == sorted(ordered, reverse=True)
    for value, row in got.items():
        counts, visitors = want[value]
        if dimension in ("page", "event"):
            assert (row["pageviews"], row["events"]) == (counts["pageviews"], counts["events"])
        else:
            assert row["sessions"] == counts["sessions"]
            if counts["sessions"]:
                assert row["bounce_rate"] == pytest.approx(counts["bounces"] / counts["sessions"])
        assert abs(row["visitors"] - visitors) <= max(1, 0.02 * visitors)
    top = await get_json(
        client, f"breakdown?dimension={dimension}&from={iso(start)}&to={iso(end)}&limit=2"
    )
    assert [r["value"] for r in top["results"]] == [r["value"] for r in report["results"][:2]]


async def test_realtime_counts_the_last_minutes(
    aiohttp_client: MakeClient, data: dict[bytes, bytes]
) -> None:
    now = MIDNIGHT + 70 * 60_000 + 30_000  # 01:10:30, inside the workload's last quarter hour
    client = await aiohttp_client(create_app(fx.context(data, now)))
    report = await get_json(client, "realtime?tz=Asia/Kolkata")
    assert len(report["pageviews"]) == 30
    last = MIDNIGHT + 70 * 60_000
    assert report["pageviews"][-1]["t"] == iso_kolkata(last)
    for point in report["pageviews"]:
        minute = iso_ms(point["t"])
        want = REF.get(("alpha", minute), Minute()).total.counts["pageviews"]
        assert point["pageviews"] == want
    _, _, visitors = ref_sum("alpha", last - 4 * 60_000, last + 60_000)
    assert report["visitors"] == round(
        merged_sketch_estimate("alpha", last - 4 * 60_000, last + 60_000)
    )
    assert abs(report["visitors"] - sum(visitors.values())) <= max(1, 0.02 * sum(visitors.values()))


def iso_kolkata(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, ZoneInfo("Asia/Kolkata")).isoformat(timespec="minutes")


async def test_unavailable_partitions_are_a_503(
    aiohttp_client: MakeClient, data: dict[bytes, bytes]
) -> None:
    ctx = fx.context(data, NOW)
    ctx.reports.tables.cluster.available = False  # type: ignore[attr-defined]
    client = await aiohttp_client(create_app(ctx))
    resp = await client.get("/api/v1/sites/alpha/timeseries", headers=fx.auth("alpha"))
    assert resp.status == 503
    assert resp.headers["Retry-After"]


async def test_registry_not_loaded_is_a_503(
    aiohttp_client: MakeClient, data: dict[bytes, bytes]
) -> None:
    ctx = fx.context(data, NOW)
    ctx.registry = SiteRegistry(get_settings())
    client = await aiohttp_client(create_app(ctx))
    resp = await client.get("/api/v1/sites/alpha/realtime", headers=fx.auth("alpha"))
    assert resp.status == 503


async def test_openapi_and_dashboard_need_no_key(client: Client) -> None:
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    assert (await resp.json())["openapi"].startswith("3.")
    page = await client.get("/dashboard/alpha")
    assert page.status == 200
    text = await page.text()
    assert 'data-site="alpha"' in text
    assert "/dashboard/assets/uPlot.iife.min.js" in text
    assert "https://" not in text  # nothing from elsewhere
    escaped = await client.get("/dashboard/%3Cscript%3E")
    assert "<script>" not in (await escaped.text()).split("<body", 1)[1].split("</header>")[0]
    js = await client.get("/dashboard/assets/uPlot.iife.min.js")
    assert js.status == 200
    assert js.content_type == "text/javascript"
    assert (await client.get("/dashboard/assets/..%2F..%2Fsettings.py")).status == 404
