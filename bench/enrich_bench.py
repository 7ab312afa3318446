"""Events per second of the gateway's pure path (validate + enrich) on one core.

Run: ``.venv/bin/python bench/enrich_bench.py [seconds per case]``. Requests are
realistic tracker batches: a few hundred distinct pages, a pool of User-Agents
(cached after first sight, as in production) and a new client IP per request.
Prints a table; asserts nothing.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from footfall.events import encode_envelope, parse_body, validate_events
from footfall.sites.model import SiteConfig
from web.enrich import Enricher, RequestContext

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]
REFERRERS = ["", "https://www.google.co.in/", "https://shop.example.in/cart", "https://t.co/x"]


def make_request(rng: random.Random, size: int) -> bytes:
    events: list[dict[str, Any]] = []
    for _ in range(size):
        page = rng.randrange(300)
        event: dict[str, Any] = {
            "site": "shop.example.in",
            "name": "pageview" if rng.random() < 0.8 else "add_to_cart",
            "url": f"https://shop.example.in/products/{page}?utm_source=news&ref={page % 7}",
            "referrer": rng.choice(REFERRERS),
            "title": f"Product {page}",
            "ts": 1_778_300_000_000 - rng.randrange(60_000),
            "screen": "1920x1080",
            "lang": "en-IN",
        }
        if rng.random() < 0.2:
            event["props"] = {"plan": "gold", "qty": 2, "gift": False}
        if rng.random() < 0.05:
            event["revenue"] = {"amount": 499.0, "currency": "INR"}
        events.append(event)
    return orjson.dumps(events[0] if size == 1 else {"events": events})


def run(seconds: float, size: int, enricher: Enricher, *, full: bool) -> float:
    rng = random.Random(size)
    site = SiteConfig("shop.example.in", "Asia/Kolkata", ("shop.example.in",), False)
    bodies = [make_request(rng, size) for _ in range(200)]
    raws = [parse_body(b, "application/json") for b in bodies]
    contexts = [
        RequestContext(
            ip=f"49.36.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            user_agent=rng.choice(USER_AGENTS),
            received_at=1_778_300_000_000,
            cookie_visitor=None if rng.random() < 0.3 else f"v{rng.randrange(10**9)}",
            accept_language="en-IN,en;q=0.9",
        )
        for _ in bodies
    ]
    step: Callable[[int], None]
    if full:

        def step(i: int) -> None:
            raw = parse_body(bodies[i], "text/plain;charset=UTF-8")
            events, _ = validate_events(raw)
            envelopes, _ = enricher.enrich_batch(events, contexts[i], site, 1)
            for envelope in envelopes:
                encode_envelope(envelope)
    else:

        def step(i: int) -> None:
            events, _ = validate_events(raws[i])
            enricher.enrich_batch(events, contexts[i], site, 1)

    for i in range(len(bodies)):  # warm the caches, as a running gateway has them
        step(i)
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for i in range(len(bodies)):
            step(i)
        done += len(bodies) * size
    return done / elapsed


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    enricher = Enricher("bench-secret-0123456789abcdef")
    print(f"{'batch':>5}  {'path':<34} {'events/s':>10}  {'us/event':>8}")
    for size in (1, 20, 100):
        for full, label in ((False, "validate+enrich"), (True, "parse+validate+enrich+encode")):
            rate = run(seconds, size, enricher, full=full)
            print(f"{size:>5}  {label:<34} {rate:>10,.0f}  {1e6 / rate:>8.1f}")


if __name__ == "__main__":
    main()
