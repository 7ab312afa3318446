"""The reporting API and the dashboard on real `footfall worker` processes.

Two workers share the partitions of a test topic (real Kafka, InfluxDB); every report
needs both workers' partials, so each answer checks the gather. Events are published as
the gateway publishes them; the numbers are compared with tests.reference, visitors with
sketches the test merges itself. Then schemathesis fuzzes the API from its own OpenAPI
document (no 5xx allowed), and a headless Chromium renders the dashboard: the numbers on
the page must be the API's, and its screenshot is kept under build/artifacts/.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import datasketches as ds
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]

from footfall.influx import quote_ident
from footfall.settings import get_settings
from footfall.sites.registry import add_site
from footfall.stack.influxdb import InfluxDB
from footfall.stack.kafka import Kafka
from tests.integration.ci import require
from tests.integration.httpkit import call, free_port, iso
from tests.integration.streamkit import REPO, StreamEnv, Worker, create_topic, produce, wait_for
from tests.reference import envelope, reference
from tests.workload import workload

pytestmark = pytest.mark.integration
ARTIFACTS = REPO / "build" / "artifacts"
HOUR = 3_600_000
PAGES = ("/", "/products", "/products/tea", "/products/coffee", "/cart", "/checkout", "/about")
SOURCES = ("direct", "google.com", "newsletter", "instagram.com", "bing.com")
COUNTRIES = ("IN", "US", "DE", "GB", "BR", "SG")


def history(now_ms: int, hours: int = 46, seed: int = 3) -> list[dict[str, Any]]:
    """A shop's last `hours` hours: the stream test workload, more by day than by night."""
    events: list[dict[str, Any]] = []
    for h in range(hours):
        base = now_ms - 80 * 60_000 - h * HOUR
        hour_of_day = datetime.fromtimestamp(base / 1000, UTC).hour
        weight = 0.35 + 0.65 * max(0.0, 1 - abs(hour_of_day - 9) / 12)
        events += workload(int(160 * weight), seed=seed + h, sites=("shop",), midnight=base)
    return events


def live_events(now_ms: int, n: int = 240, seed: int = 5) -> list[dict[str, Any]]:
    """Visitors browsing in the last 25 minutes (the realtime counter)."""
    rng = random.Random(seed)
    events = []
    for i in range(n // 4):
        visitor = f"live{i}-{rng.randrange(10**6)}"
        t = now_ms - rng.randrange(25 * 60_000)
        source, country = rng.choice(SOURCES), rng.choice(COUNTRIES)
        device = rng.choice(("desktop", "mobile"))
        for step in range(4):
            events.append(
                envelope(
                    "shop",
                    visitor,
                    t + step * 40_000,
                    path=rng.choice(PAGES),
                    source=source,
                    country=country,
                    device=device,
                )
            )
    return [e for e in events if e["event_time"] < now_ms]


@dataclass
class Cluster:
    env: StreamEnv
    workers: list[Worker]
    keys: dict[str, str]
    events: list[dict[str, Any]]
    now_ms: int

    def url(self, worker: int = 0) -> str:
        return f"http://127.0.0.1:{self.workers[worker].web_port}"


async def _setup(env: StreamEnv, sites_topic: str) -> dict[str, str]:
    settings = get_settings().model_copy(update={"sites_topic": sites_topic})
    keys = {}
    for site, zone in (("shop", "Asia/Kolkata"), ("other", "UTC")):
        _, keys[site] = await add_site(settings, site, timezone=zone)
    await create_topic(env)
    return keys


async def _teardown(env: StreamEnv) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=get_settings().kafka_bootstrap)
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if env.tag in t]
        await admin.delete_topics(ours)
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    settings = get_settings()
    Kafka(settings).start()
    influx = InfluxDB(settings)
    influx.start()
    env = StreamEnv(tmp_path_factory.mktemp("reports"))
    influx.ensure_database(env.influx_db)
    sites_topic = f"fftest.{env.tag}.sites"
    keys = asyncio.run(_setup(env, sites_topic))
    extra = {
        "FOOTFALL_SITES_TOPIC": sites_topic,
        "FOOTFALL_HBASE_TABLE_PREFIX": f"fftest_{env.tag}",  # no batch run: stream data only
    }
    workers = []
    for name in ("w1", "w2"):
        port = free_port()
        worker = Worker(env, name, port, FOOTFALL_WORKER_URL=f"http://127.0.0.1:{port}", **extra)
        worker.start()
        workers.append(worker)
    now = int(datetime.now(UTC).timestamp() * 1000)
    events = sorted(history(now) + live_events(now), key=lambda e: e["received_at"])
    events += workload(300, seed=99, sites=("other",), midnight=now - 3 * HOUR)
    try:

        async def ready() -> bool:
            stats = [w.stats() for w in workers]
            owned = sorted(p for s in stats if s for p in s["owned_partitions"])
            return owned == [0, 1, 2, 3] and all(bool(s and s["owned_partitions"]) for s in stats)

        asyncio.run(wait_for(ready, 150, "both workers to hold partitions"))
        asyncio.run(produce(env.topic, events))

        def seen() -> bool:
            return bool(
                sum((w.stats() or {}).get("events_seen", 0) for w in workers) >= len(events)
            )

        asyncio.run(wait_for(seen, 120, "every event counted"))
        cluster = Cluster(env, workers, keys, events, now)

        def reports_ready() -> bool:
            status, _ = call(cluster.url() + "/api/v1/sites/shop/realtime", keys["shop"])
            return status == 200

        asyncio.run(wait_for(reports_ready, 60, "reports to answer"))
        yield cluster
    except BaseException:
        for worker in workers:
            print(f"--- {worker.name}\n{worker.tail(80)}", file=sys.stderr)
        raise
    finally:
        for worker in workers:
            worker.stop()
        asyncio.run(_teardown(env))
        if influx.check() is None:
            influx.run_query(f"DROP DATABASE {quote_ident(env.influx_db)}")


def test_every_worker_answers_from_every_partition(cluster: Cluster) -> None:
    start = (cluster.now_ms - 47 * HOUR) // 60_000 * 60_000
    end = (cluster.now_ms + 60_000) // 60_000 * 60_000
    rng = f"from={iso(start)}&to={iso(end)}&interval=hour&tz=UTC"
    ref = reference(cluster.events)
    counts: Counter[str] = Counter()
    revenue: Counter[str] = Counter()
    for (site, minute), m in ref.items():
        if site == "shop" and start <= minute < end:
            counts.update(m.total.counts)
            revenue.update(m.revenue)

    def answers() -> list[tuple[int, Any]]:
        return [
            call(cluster.url(i) + f"/api/v1/sites/shop/timeseries?{rng}", cluster.keys["shop"])
            for i in (0, 1)
        ]

    def all_counted() -> bool:  # the counting agents may still be at the last batches
        return all(a[0] == 200 and a[1]["totals"]["events"] == counts["events"] for a in answers())

    with contextlib.suppress(TimeoutError):  # the assertions below say what differs
        asyncio.run(wait_for(all_counted, 60, "the reports to hold every event"))
    got = answers()
    assert got[0][0] == 200, got[0]
    assert got[0][1]["totals"] == got[1][1]["totals"]
    totals = got[0][1]["totals"]
    for name in ("events", "pageviews", "transactions", "sessions", "bounces"):
        assert totals[name] == counts[name], name
    assert totals["duration_sum"] == pytest.approx(counts["duration_sum"] / 1000)
    assert totals["revenue"] == {c: pytest.approx(u / 1e6) for c, u in revenue.items() if u}
    merged = independent_visitors(cluster.events, "shop", start, end)
    assert totals["visitors"] == pytest.approx(merged, rel=0.005, abs=1)
    meta = got[0][1]["meta"]
    assert meta["batch_until"] is None
    assert meta["sampled"] is True
    assert {s["source"] for s in meta["sources"]} == {"tables"}


def independent_visitors(events: list[dict[str, Any]], site: str, start: int, end: int) -> float:
    """Visitors of [start, end) as one union of per-minute sketches built here."""
    seen: set[tuple[str, str]] = set()
    minutes: dict[tuple[int, int], ds.hll_sketch] = {}
    for e in events:
        if e["site"] != site or e["bot"] or (e["site"], e["id"]) in seen:
            continue
        seen.add((e["site"], e["id"]))
        if start <= e["event_time"] < end:
            key = (e["event_time"] // 60_000, e["sample_rate"])
            minutes.setdefault(key, ds.hll_sketch(14, ds.tgt_hll_type.HLL_8)).update(e["visitor"])
    unions: dict[int, ds.hll_union] = {}
    for (_, rate), sketch in minutes.items():
        unions.setdefault(rate, ds.hll_union(14)).update(sketch)
    return float(sum(rate * u.get_estimate() for rate, u in unions.items()))


def counted_sessions(events: list[dict[str, Any]], site: str) -> list[list[dict[str, Any]]]:
    """The site's sessions as the spec cuts them (30 minutes, midnight), bots and repeated
    ids left out, each a list of its events in time order: written here, from the events."""
    seen: set[str] = set()
    timelines: dict[str, list[dict[str, Any]]] = {}
    for e in events:  # arrival order: of two copies of an id, the first counts
        if e["site"] != site or e["bot"] or e["id"] in seen:
            continue
        seen.add(e["id"])
        timelines.setdefault(e["visitor"], []).append(e)
    sessions: list[list[dict[str, Any]]] = []
    for timeline in timelines.values():
        timeline.sort(key=lambda e: e["event_time"])
        for i, e in enumerate(timeline):
            previous = timeline[i - 1]["event_time"] if i else None
            if (
                previous is None
                or e["event_time"] - previous > 1_800_000
                or e["event_time"] // 86_400_000 != previous // 86_400_000
            ):
                sessions.append([])
            sessions[-1].append(e)
    return sessions


def test_filters_on_several_dimensions_over_the_gathered_tables(cluster: Cluster) -> None:
    start = (cluster.now_ms - 47 * HOUR) // 60_000 * 60_000
    end = (cluster.now_ms + 60_000) // 60_000 * 60_000
    rng = f"from={iso(start)}&to={iso(end)}&tz=UTC"
    sessions = counted_sessions(cluster.events, "shop")
    # Sessions from IN on mobile (their first event's attributes): start, rate, bounce.
    starts: list[tuple[int, int, bool]] = []
    visitors: dict[str, int] = {}
    # Events of sessions from IN, by page: counters and visitors.
    pages: dict[str, Counter[str]] = {}
    page_visitors: dict[str, dict[str, int]] = {}
    for session in sessions:
        first, rate = session[0], session[0]["sample_rate"]
        in_range = start <= first["event_time"] < end
        if first["country"] == "IN" and first["device"] == "mobile" and in_range:
            starts.append((first["event_time"], rate, len(session) == 1))
            visitors[first["visitor"]] = rate
        if first["country"] != "IN":
            continue
        for e in session:
            if start <= e["event_time"] < end:
                page = e["path"] or ""
                counts = pages.setdefault(page, Counter())
                counts["events"] += e["sample_rate"]
                counts["pageviews"] += e["sample_rate"] if e["name"] == "pageview" else 0
                page_visitors.setdefault(page, {})[e["visitor"]] = e["sample_rate"]
    assert len(starts) > 10

    for worker in (0, 1):
        status, series = call(
            cluster.url(worker)
            + f"/api/v1/sites/shop/timeseries?{rng}&interval=hour"
            + f"&filters={quote('country==IN;device==mobile')}",
            cluster.keys["shop"],
        )
        assert status == 200, series
        assert series["meta"]["complete"] is True
        bounds = [int(datetime.fromisoformat(b["t"]).timestamp() * 1000) for b in series["results"]]
        for bucket, lo, hi in zip(series["results"], bounds, [*bounds[1:], end], strict=True):
            mine = [(rate, bounce) for t, rate, bounce in starts if max(lo, start) <= t < hi]
            assert bucket["sessions"] == sum(rate for rate, _ in mine), bucket["t"]
            assert bucket["bounces"] == sum(rate for rate, b in mine if b), bucket["t"]
        totals = series["totals"]
        assert totals["sessions"] == sum(rate for _, rate, _ in starts)
        exact = sum(visitors.values())
        assert totals["visitors"] == pytest.approx(exact, rel=0.02, abs=1)

        status, breakdown = call(
            cluster.url(worker)
            + f"/api/v1/sites/shop/breakdown?dimension=page&{rng}&limit=100"
            + f"&metrics=pageviews,events,visitors&filters={quote('country==IN')}",
            cluster.keys["shop"],
        )
        assert status == 200, breakdown
        got = {row["value"]: row for row in breakdown["results"]}
        assert set(got) == set(pages)
        for page, counts in pages.items():
            assert got[page]["pageviews"] == counts["pageviews"], page
            assert got[page]["events"] == counts["events"], page
            exact = sum(page_visitors[page].values())
            assert got[page]["visitors"] == pytest.approx(exact, rel=0.02, abs=1), page


def test_keys_read_their_own_site_only(cluster: Cluster) -> None:
    url = cluster.url(1) + "/api/v1/sites/shop/breakdown?dimension=page"
    assert call(url)[0] == 401
    assert call(url, cluster.keys["other"])[0] == 403
    status, body = call(url, cluster.keys["shop"])
    assert status == 200
    assert body["results"]
    status, body = call(cluster.url(1) + "/api/v1/sites/other/realtime", cluster.keys["other"])
    assert status == 200
    logs = "".join(w.log.read_text(errors="replace") for w in cluster.workers)
    for key in cluster.keys.values():
        assert key not in logs


def test_kolkata_days_over_the_gathered_tables(cluster: Cluster) -> None:
    status, body = call(
        cluster.url(1) + "/api/v1/sites/shop/timeseries?interval=day&metrics=events",
        cluster.keys["shop"],
    )
    assert status == 200
    assert body["tz"] == "Asia/Kolkata"
    assert all(b["t"].endswith("T00:00+05:30") for b in body["results"])
    ref = reference(cluster.events)
    for bucket in body["results"]:
        start = int(datetime.fromisoformat(bucket["t"]).timestamp() * 1000)
        want = sum(
            m.total.counts["events"]
            for (site, minute), m in ref.items()
            if site == "shop" and start <= minute < start + 86_400_000
        )
        assert bucket["events"] == want, bucket["t"]


def test_schemathesis_finds_no_server_error(cluster: Cluster, tmp_path: Path) -> None:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            cluster.url() + "/api/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {cluster.keys['shop']}",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_schema_conformance",
            "--max-examples",
            "60",
            "--seed",
            "1",
            "--request-timeout",
            "30",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


class _Values(HTMLParser):
    """data-value attributes of the dashboard's tiles, table cells and live counter."""

    def __init__(self) -> None:
        super().__init__()
        self.tiles: dict[str, str] = {}
        self.live: str | None = None
        self.rows: dict[str, list[str]] = {}
        self.filters: list[str] = []
        self._tile: str | None = None
        self._table: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "div" and "tile" in (a.get("class") or "").split():
            self._tile = a.get("data-metric")
        elif tag == "div" and a.get("class") == "value" and self._tile:
            self.tiles[self._tile] = a.get("data-value") or ""
            self._tile = None
        elif tag == "span" and a.get("class") == "filter":
            self.filters.append(a.get("data-dimension") or "")
        elif tag == "span" and a.get("id") == "live-visitors":
            self.live = a.get("data-value")
        elif tag == "table":
            self._table = a.get("data-dimension")
        elif tag == "tr" and self._table and a.get("data-value") is not None:
            self.rows.setdefault(self._table, []).append(a["data-value"] or "")


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    require(browser is not None, "no chromium on this machine")
    assert browser is not None
    profile = tempfile.mkdtemp(prefix="ff-chromium-")
    try:
        return subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--window-size=1400,1650",
                "--virtual-time-budget=15000",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_dashboard_combines_filters_in_tiles_and_tables(cluster: Cluster) -> None:
    key = cluster.keys["shop"]
    filters = "country==IN;device==mobile"
    page = cluster.url(1) + f"/dashboard/shop#key={key}&filters={quote(filters, safe='')}"
    dom = chromium("--dump-dom", page)
    assert 'data-loaded="yes"' in dom.stdout, dom.stdout[-3000:] + dom.stderr[-3000:]
    found = _Values()
    found.feed(dom.stdout)
    assert found.filters == ["country", "device"]
    status, realtime = call(cluster.url(0) + "/api/v1/sites/shop/realtime", key)
    today = realtime["at"][:10]
    first = datetime.fromisoformat(today).toordinal() - 6
    start = datetime.fromordinal(first).date().isoformat()
    end = datetime.fromordinal(first + 7).date().isoformat()
    rng = f"from={start}&to={end}&filters={quote(filters)}"
    status, series = call(cluster.url(0) + f"/api/v1/sites/shop/timeseries?{rng}", key)
    assert status == 200, series
    for metric in ("visitors", "sessions", "bounce_rate", "avg_duration"):
        assert orjson.loads(found.tiles[metric]) == series["totals"][metric], metric
    assert found.tiles["pageviews"] == ""  # not a metric of session rows
    for dimension, metrics in (("page", "pageviews,visitors"), ("source", "visitors,sessions")):
        status, table = call(
            cluster.url(0)
            + f"/api/v1/sites/shop/breakdown?dimension={dimension}&{rng}&metrics={metrics}&limit=8",
            key,
        )
        assert status == 200, table
        assert table["results"]
        assert found.rows[dimension] == [row["value"] for row in table["results"]], dimension
    assert set(found.rows["country"]) == {"IN"}
    assert set(found.rows["device"]) == {"mobile"}


def test_dashboard_shows_the_apis_numbers(cluster: Cluster) -> None:
    key = cluster.keys["shop"]
    page = cluster.url(1) + f"/dashboard/shop#key={key}"
    dom = chromium("--dump-dom", page)
    assert 'data-loaded="yes"' in dom.stdout, dom.stdout[-3000:] + dom.stderr[-3000:]
    found = _Values()
    found.feed(dom.stdout)
    status, realtime = call(cluster.url(0) + "/api/v1/sites/shop/realtime", key)
    assert status == 200
    assert found.live == orjson.dumps(realtime["visitors"]).decode()
    today = realtime["at"][:10]
    first = datetime.fromisoformat(today).toordinal() - 6
    start = datetime.fromordinal(first).date().isoformat()
    end = datetime.fromordinal(first + 7).date().isoformat()
    status, series = call(
        cluster.url(0) + f"/api/v1/sites/shop/timeseries?from={start}&to={end}&interval=day", key
    )
    assert status == 200
    for metric in ("visitors", "sessions", "pageviews", "bounce_rate", "avg_duration", "revenue"):
        assert orjson.loads(found.tiles[metric]) == series["totals"][metric], metric
    status, pages = call(
        cluster.url(0)
        + f"/api/v1/sites/shop/breakdown?dimension=page&from={start}&to={end}"
        + "&metrics=pageviews,visitors&limit=8",
        key,
    )
    assert found.rows["page"] == [row["value"] for row in pages["results"]]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard-shop.png"
    shot.unlink(missing_ok=True)
    taken = chromium(f"--screenshot={shot}", page)
    assert shot.exists(), taken.stderr[-2000:]
    assert shot.stat().st_size > 20_000
    hourly = ARTIFACTS / "dashboard-shop-hourly.png"
    chromium(f"--screenshot={hourly}", page + "&days=2&interval=hour")
    assert hourly.exists()
