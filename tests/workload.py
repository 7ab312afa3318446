"""A reproducible stream of published events that exercises every counting rule.

Sessions that cross the 30-minute gap and 00:00 UTC, bounces, retried sends (duplicate
ids), bots, revenue in two currencies, and sampled visitors (rate 4, whole visitors as the
gateway samples). Events come in event_time order per visitor, as emitters send them.
"""

from __future__ import annotations

import random
import time
from typing import Any

from tests.reference import envelope

MIN = 60_000
DAY = 86_400_000
PAGES = ("/", "/pricing", "/blog/a", "/blog/b", "/cart", "/checkout", "/docs")
SOURCES = ("direct", "google.com", "newsletter", "twitter.com")
COUNTRIES = ("IN", "US", "DE", "BR")
DEVICES = ("desktop", "mobile", "tablet")


#: How far past its midnight a workload reaches: visits start up to 75 min after it and
#: run up to 11 events, 45 min apart at most.
REACH_MS = 75 * MIN + 10 * 45 * MIN


def recent_midnight(now_ms: int | None = None) -> int:
    """The latest 00:00 UTC whose workload is all in the past (InfluxDB keeps 400 days only).

    A workload event later than now would be re-timed by the gateway (footfall.events
    `event_time`: more than 5 minutes ahead counts at its receipt).
    """
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    return (now - REACH_MS) // DAY * DAY


def workload(
    n_events: int,
    *,
    seed: int = 7,
    sites: tuple[str, ...] = ("alpha", "beta", "gamma"),
    midnight: int | None = None,
) -> list[dict[str, Any]]:
    """About `n_events` events around `midnight`: visits start from 75 min before it to 75 min
    after, and go on for up to `REACH_MS` after it."""
    rng = random.Random(seed)
    base = midnight if midnight is not None else recent_midnight()
    events: list[dict[str, Any]] = []
    visitor_no = 0
    while len(events) < n_events:
        visitor_no += 1
        site = rng.choice(sites)
        visitor = f"v{visitor_no:05d}-{rng.randrange(10**6)}"
        bot = rng.random() < 0.04
        rate = 4 if rng.random() < 0.1 else 1
        device = "bot" if bot else rng.choice(DEVICES)
        attrs: dict[str, Any] = {
            "source": rng.choice(SOURCES),
            "country": rng.choice(COUNTRIES),
            "device": device,
            "browser": rng.choice(("Chrome", "Firefox", "Safari")),
            "os": rng.choice(("Linux", "Windows", "iOS")),
            "utm_campaign": rng.choice((None, None, "spring", "launch")),
        }
        t = base - 75 * MIN + rng.randrange(150 * MIN)
        n = 1 if rng.random() < 0.3 else rng.randrange(2, 12)
        for _ in range(n):
            roll = rng.random()
            if roll < 0.07:
                kwargs: dict[str, Any] = {
                    "name": "purchase",
                    "path": "/checkout",
                    "revenue": (round(rng.uniform(1, 500), 2), rng.choice(("INR", "USD"))),
                }
            elif roll < 0.15:
                kwargs = {"name": "signup", "path": None}
            else:
                kwargs = {"path": rng.choice(PAGES)}
            # Now and then a later event carries other attributes (the session keeps its first).
            varied = {**attrs, "source": rng.choice(SOURCES)}
            attrs_now = varied if len(events) % 97 == 0 else attrs
            event = envelope(site, visitor, t, bot=bot, rate=rate, **kwargs, **attrs_now)
            events.append(event)
            if rng.random() < 0.04:  # a retried send: same id, a little later
                events.append({**event, "received_at": event["received_at"] + 1500})
            gap = rng.choice((rng.randrange(5_000, 10 * MIN), rng.randrange(20 * MIN, 45 * MIN)))
            t += gap
    # Emission order: by time received (ties: generation order), as a gateway publishes.
    order = sorted(range(len(events)), key=lambda i: (events[i]["received_at"], i))
    return [events[i] for i in order]
