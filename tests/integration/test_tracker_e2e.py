"""The trackers end to end: real headless Chromium -> gateway -> Kafka -> workers -> report API.

Debian's /usr/bin/chromium is driven by Playwright (no browser download). Three senders,
one site each, so that every count can be checked exactly:

- `demo`: our footfall.js on the demo shop the gateway serves in development (`/demo`):
  load, two SPA routes, a custom event, a purchase, then the page is closed, so the queue
  leaves with the pagehide flush (`navigator.sendBeacon`);
- `plsite`: Plausible's own tracker from npm (web/tracker/node_modules, `npm ci`), on a
  page of another origin, pointed at our `POST /api/event`;
- `gasite`: GA4 Measurement Protocol payloads as its documentation writes them, sent to
  `POST /mp/collect` twice (a retry), and a malformed one that must be dropped.

Headless Chromium says `HeadlessChrome` in its User-Agent, which the gateway's bot
detection rightly flags (bots count in no metric), so the browser gets an ordinary
Chrome User-Agent. In CI (`CI=true`) a missing chromium or Playwright fails the test.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import http.server
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

from footfall.settings import get_settings
from footfall.sites.registry import add_site, set_mp_secret
from tests.integration.ci import require
from tests.integration.httpkit import call, free_port, iso
from tests.integration.streamkit import (
    REPO,
    Gateway,
    StreamEnv,
    Worker,
    create_topic,
    read_topic,
    wait_for,
)

pytestmark = pytest.mark.integration
T = TypeVar("T")

CHROMIUM = Path("/usr/bin/chromium")
PLAUSIBLE_JS = REPO / "web/tracker/node_modules/@plausible-analytics/tracker/plausible.js"
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)
MEASUREMENT_ID = "G-E2ETEST01"
PLAUSIBLE_DOMAIN = "shop.test"


def poll(predicate: Callable[[], Any], seconds: float, what: str) -> None:
    """Wait until `predicate()` is truthy; TimeoutError naming `what` (no event loop: the
    Playwright sync API runs its own in this thread, so asyncio.run is not allowed here)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {seconds:.0f}s waiting for {what}")
        time.sleep(0.5)


def in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end on a thread of its own (see `poll`)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@dataclass
class Stack:
    env: StreamEnv
    gateway: Gateway
    worker: Worker
    keys: dict[str, str]
    mp_secret: str

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.port}"

    def report(self, site: str, path: str) -> tuple[int, Any]:
        url = f"http://127.0.0.1:{self.worker.web_port}/api/v1/sites/{site}/{path}"
        return call(url, self.keys[site])


async def _setup(env: StreamEnv, sites_topic: str) -> tuple[dict[str, str], str]:
    settings = get_settings().model_copy(update={"sites_topic": sites_topic})
    keys = {}
    _, keys["demo"] = await add_site(settings, "demo")
    _, keys["plsite"] = await add_site(settings, "plsite", domains=[PLAUSIBLE_DOMAIN])
    _, keys["gasite"] = await add_site(settings, "gasite")
    _, secret = await set_mp_secret(settings, "gasite", measurement_id=MEASUREMENT_ID)
    await create_topic(env)
    return keys, secret


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]

    from footfall.influx import quote_ident
    from footfall.stack.influxdb import InfluxDB
    from footfall.stack.kafka import Kafka

    settings = get_settings()
    Kafka(settings).start()
    influx = InfluxDB(settings)
    influx.start()
    env = StreamEnv(tmp_path_factory.mktemp("tracker"))
    influx.ensure_database(env.influx_db)
    sites_topic = f"fftest.{env.tag}.sites"
    keys, secret = asyncio.run(_setup(env, sites_topic))
    gateway = Gateway(env, free_port(), sites_topic)
    gateway.env["FOOTFALL_DEMO_PAGES"] = "true"
    port = free_port()
    worker = Worker(
        env,
        "w1",
        port,
        FOOTFALL_WORKER_URL=f"http://127.0.0.1:{port}",
        FOOTFALL_SITES_TOPIC=sites_topic,
        FOOTFALL_HBASE_TABLE_PREFIX=f"fftest_{env.tag}",  # no batch run: stream data only
    )
    gateway.start()
    worker.start()
    try:
        asyncio.run(wait_for(gateway.ready, 60, "the gateway to be ready"))

        def owns_all() -> bool:
            stats = worker.stats()
            return bool(stats and sorted(stats["owned_partitions"]) == [0, 1, 2, 3])

        asyncio.run(wait_for(owns_all, 150, "the worker to hold every partition"))
        # Its report views answer 503 until the site registry is loaded.
        asyncio.run(wait_for(worker.ready, 60, "the worker to be ready"))
        yield Stack(env, gateway, worker, keys, secret)
    except BaseException:
        print(f"--- worker\n{worker.tail(80)}")
        print(f"--- gateway\n{gateway.log.read_text(errors='replace')[-6000:]}")
        raise
    finally:
        gateway.stop()
        worker.stop()

        async def drop_topics() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
            await admin.start()
            try:
                await admin.delete_topics([t for t in await admin.list_topics() if env.tag in t])
            finally:
                await admin.close()

        asyncio.run(drop_topics())
        if influx.check() is None:
            influx.run_query(f"DROP DATABASE {quote_ident(env.influx_db)}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require(CHROMIUM.exists() or shutil.which("chromium") is not None, "no chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "playwright is not installed (pip install -e .[dev])")
        raise
    with sync_playwright() as pw:
        executable = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
        launched = pw.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def _totals(stack: Stack, site: str) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp() * 1000)
    rng = f"from={iso(now - 3_600_000)}&to={iso(now + 120_000)}&interval=hour&tz=UTC"
    status, body = stack.report(site, f"timeseries?{rng}")
    assert status == 200, body
    totals: dict[str, Any] = body["totals"]
    return totals


def _breakdown(stack: Stack, site: str, dimension: str) -> dict[str, dict[str, Any]]:
    now = int(datetime.now(UTC).timestamp() * 1000)
    rng = f"from={iso(now - 3_600_000)}&to={iso(now + 120_000)}"
    status, body = stack.report(site, f"breakdown?dimension={dimension}&{rng}")
    assert status == 200, body
    return {row["value"]: row for row in body["results"]}


def _settle(stack: Stack, site: str, events: int) -> dict[str, Any]:
    """The site's totals once `events` are counted, and a little later (no late double)."""

    def counted() -> bool:
        return bool(_totals(stack, site).get("events", 0) >= events)

    with contextlib.suppress(TimeoutError):  # the assertions say what differs
        poll(counted, 90, f"{events} events of {site} in the reports")
    time.sleep(3)  # any duplicate would be counted by now
    return _totals(stack, site)


# --- footfall.js on the demo shop ------------------------------------------------------------
#: Records what the page hands to navigator.sendBeacon in localStorage, which outlives
#: the page (Playwright hears no request of a page that is being closed).
BEACON_SPY = """(() => {
  const send = navigator.sendBeacon.bind(navigator);
  navigator.sendBeacon = (url, data) => {
    try {
      const seen = JSON.parse(localStorage.getItem('ff_test_beacons') || '[]');
      seen.push(String(data));
      localStorage.setItem('ff_test_beacons', JSON.stringify(seen));
    } catch (e) {}
    return send(url, data);
  };
})()"""


def test_demo_shop_pageviews_event_and_purchase_counted_once(stack: Stack, browser: Any) -> None:
    context = browser.new_context(user_agent=USER_AGENT)
    context.add_init_script(BEACON_SPY)
    page = context.new_page()
    page.goto(stack.gateway_url + "/demo/")
    page.wait_for_function("document.querySelector('#log li') !== null")
    page.click("text=Products")
    page.wait_for_url("**/demo/products")
    page.click("text=Cart")
    page.wait_for_url("**/demo/cart")
    page.click("#add-to-cart")
    page.click("#buy")
    # Within the tracker's 2 s batching wait: the pagehide flush sends what is queued.
    page.close(run_before_unload=True)
    spy = context.new_page()
    spy.goto(stack.gateway_url + "/healthz")  # same origin, no tracker
    poll(lambda: "purchase" in (spy.evaluate("localStorage.ff_test_beacons") or ""), 15, "beacon")
    beacons = [orjson.loads(b) for b in orjson.loads(spy.evaluate("localStorage.ff_test_beacons"))]
    context.close()
    beaconed = Counter(e["name"] for body in beacons for e in body["events"])
    assert beaconed["purchase"] == 1, beacons

    totals = _settle(stack, "demo", 5)
    assert totals["pageviews"] == 3, totals
    assert totals["events"] == 5, totals
    assert totals["transactions"] == 1, totals
    assert totals["revenue"] == {"INR": pytest.approx(1499)}, totals
    assert totals["visitors"] == 1, totals
    assert totals["sessions"] == 1, totals
    pages = _breakdown(stack, "demo", "page")
    assert {p: row["pageviews"] for p, row in pages.items()} == {
        "/demo/": 1,
        "/demo/products": 1,
        "/demo/cart": 1,
    }
    names = _breakdown(stack, "demo", "event")
    assert {n: row["events"] for n, row in names.items()} == {
        "pageview": 3,
        "add_to_cart": 1,
        "purchase": 1,
    }


# --- Plausible's tracker from npm ------------------------------------------------------------
PLAUSIBLE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Plausible on Footfall</title></head>
<body><a id="pricing" href="/pricing">Pricing</a>
<script type="module">
  import { init, track } from '/plausible.js';
  init({ domain: '%(domain)s', endpoint: '%(endpoint)s', captureOnLocalhost: true });
  window.sent = [];
  const done = (name) => (result) => window.sent.push([name, result && result.status]);
  document.getElementById('pricing').addEventListener('click', (e) => {
    e.preventDefault();
    history.pushState({}, '', '/pricing');
  });
  window.signup = () => track('Signup', { props: { plan: 'pro' }, callback: done('Signup') });
  window.buy = () => track('Purchase', {
    revenue: { amount: 49.5, currency: 'EUR' }, callback: done('Purchase') });
</script></body></html>
"""


@contextlib.contextmanager
def _static_site(root: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_plausibles_own_tracker_is_counted(stack: Stack, browser: Any, tmp_path: Path) -> None:
    assert PLAUSIBLE_JS.exists(), "run `npm ci` in web/tracker"
    (tmp_path / "plausible.js").write_bytes(PLAUSIBLE_JS.read_bytes())
    endpoint = stack.gateway_url + "/api/event"
    (tmp_path / "index.html").write_text(
        PLAUSIBLE_PAGE % {"domain": PLAUSIBLE_DOMAIN, "endpoint": endpoint}
    )
    with _static_site(tmp_path) as origin:
        context = browser.new_context(user_agent=USER_AGENT)
        # Plausible's tracker ignores automated browsers (navigator.webdriver) unless told.
        context.add_init_script("window.__plausible = true")
        page = context.new_page()
        answers: list[tuple[str, int]] = []
        page.on(
            "response",
            lambda r: (
                answers.append((orjson.loads(r.request.post_data or "{}").get("n"), r.status))
                if r.url == endpoint
                else None
            ),
        )
        page.goto(origin + "/")
        page.click("#pricing")
        page.evaluate("window.signup()")
        page.evaluate("window.buy()")
        page.wait_for_function("window.sent.length === 2", timeout=15_000)
        assert sorted(page.evaluate("window.sent")) == [["Purchase", 202], ["Signup", 202]]
        page.close()
        context.close()
    counted = [a for a in answers if a[0] != "engagement"]
    assert sorted(counted) == sorted(
        [("pageview", 202), ("pageview", 202), ("Signup", 202), ("Purchase", 202)]
    ), answers

    totals = _settle(stack, "plsite", 4)
    assert (totals["pageviews"], totals["events"], totals["transactions"]) == (2, 4, 1), totals
    assert totals["revenue"] == {"EUR": pytest.approx(49.5)}, totals
    assert totals["visitors"] == 1, totals
    pages = _breakdown(stack, "plsite", "page")
    assert {p: row["pageviews"] for p, row in pages.items()} == {"/": 1, "/pricing": 1}
    names = _breakdown(stack, "plsite", "event")
    assert {n: row["events"] for n, row in names.items()} == {
        "pageview": 2,
        "Signup": 1,
        "Purchase": 1,
    }


# --- GA4 Measurement Protocol ----------------------------------------------------------------
def _mp(
    stack: Stack, body: Any, *, debug: bool = False, secret: str | None = None
) -> tuple[int, Any]:
    path = "/debug/mp/collect" if debug else "/mp/collect"
    query = f"?measurement_id={MEASUREMENT_ID}&api_secret={secret or stack.mp_secret}"
    request = urllib.request.Request(
        stack.gateway_url + path + query,
        data=orjson.dumps(body),
        method="POST",
        # A server-side sender forwards its visitor's User-Agent (else it is a script: a bot).
        headers={"User-Agent": USER_AGENT},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, orjson.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_ga4_measurement_protocol_payloads_are_counted(stack: Stack) -> None:
    now_micros = int(datetime.now(UTC).timestamp() * 1_000_000) - 60_000_000
    # As the Measurement Protocol documentation writes them: a page view, a login, and a
    # purchase with its items (https://developers.google.com/analytics/devguides/
    # collection/protocol/ga4/sending-events and .../reference/events#purchase).
    request = {
        "client_id": "123456.7654321",
        "timestamp_micros": now_micros,
        "events": [
            {
                "name": "page_view",
                "params": {
                    "page_location": "https://shop.example.com/products",
                    "page_referrer": "https://www.google.com/",
                    "page_title": "Products",
                    "session_id": "123",
                    "engagement_time_msec": 100,
                },
            },
            {
                "name": "login",
                "params": {"method": "Google", "session_id": "123", "engagement_time_msec": 100},
            },
            {
                "name": "purchase",
                "params": {
                    "currency": "USD",
                    "transaction_id": "T_12345",
                    "value": 30.03,
                    "tax": 4.90,
                    "shipping": 5.99,
                    "items": [
                        {
                            "item_id": "SKU_12345",
                            "item_name": "Stan and Friends Tee",
                            "price": 10.01,
                            "quantity": 3,
                        }
                    ],
                    "session_id": "123",
                    "engagement_time_msec": 100,
                },
            },
        ],
    }
    status, body = _mp(stack, request, debug=True)
    assert (status, body) == (200, {"validationMessages": []})
    bad = {"client_id": "1.2", "events": [{"name": "_badEventName", "params": {}}]}
    status, body = _mp(stack, bad, debug=True)
    assert status == 200
    assert [m["validationCode"] for m in body["validationMessages"]] == ["NAME_INVALID"]

    assert _mp(stack, request)[0] == 204
    assert _mp(stack, request)[0] == 204  # a retry: the same ids, counted once
    assert _mp(stack, bad)[0] == 204  # GA drops what it cannot use, and says nothing
    assert _mp(stack, request, secret="wrong")[0] == 403

    totals = _settle(stack, "gasite", 3)
    assert (totals["pageviews"], totals["events"], totals["transactions"]) == (1, 3, 1), totals
    assert totals["revenue"] == {"USD": pytest.approx(30.03)}, totals
    assert totals["visitors"] == 1, totals
    names = _breakdown(stack, "gasite", "event")
    assert {n: row["events"] for n, row in names.items()} == {
        "pageview": 1,
        "login": 1,
        "purchase": 1,
    }
    # Published twice, counted once: the retry's records carry the first one's ids.
    published = [e for e in in_thread(read_topic(stack.env.topic)) if e["site"] == "gasite"]
    ids = Counter(e["id"] for e in published)
    assert len(ids) == 3, ids
    assert set(ids.values()) == {2}, ids
