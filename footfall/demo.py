"""`footfall demo`: a demo site and live, browser-like traffic through the real gateway.

`make run` uses it so a fresh machine shows moving numbers: visitors arrive from a few
sources, read pages, some come back after a pause (a new session), a few buy.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from footfall.settings import Settings, get_settings
from footfall.sites.registry import RegistryError, add_site, list_sites, rotate_key

DEMO_SITE = "demo"
PAGES = ("/", "/products", "/products/tea", "/products/coffee", "/cart", "/checkout", "/about")
REFERRERS = (
    "",
    "",
    "https://www.google.com/search?q=tea",
    "https://news.ycombinator.com/",
    "https://twitter.com/",
)
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Mobile Safari/537.36",
)


@dataclass
class DemoVisitor:
    """One simulated browser: its id, agent and where it is on the site."""

    visitor: str
    user_agent: str
    referrer: str
    page: str = "/"
    pages_left: int = 1


def next_events(rng: random.Random, who: DemoVisitor, site: str, origin: str) -> list[Any]:
    """The events one step of a visitor sends: a pageview, sometimes a purchase."""
    who.page = rng.choice(PAGES)
    events: list[Any] = [
        {
            "site": site,
            "name": "pageview",
            "url": f"{origin}{who.page}?utm_campaign=autumn"
            if rng.random() < 0.1
            else f"{origin}{who.page}",
            "visitor": who.visitor,
            "referrer": who.referrer,
            "title": who.page.strip("/") or "home",
        }
    ]
    who.referrer = f"{origin}{who.page}"  # later pages are internal navigation
    if who.page == "/checkout" and rng.random() < 0.5:
        events.append(
            {
                "site": site,
                "name": "purchase",
                "url": f"{origin}/checkout",
                "visitor": who.visitor,
                "revenue": {"amount": rng.choice((199.0, 499.0, 1499.0)), "currency": "INR"},
            }
        )
    who.pages_left -= 1
    return events


async def run_traffic(gateway: str, site: str, rate: float, duration_s: float, seed: int) -> int:
    """Post events at about `rate` per second for `duration_s`; return how many got a 202."""
    rng = random.Random(seed)
    origin = "https://shop.example"
    visitors: list[DemoVisitor] = []
    accepted = 0
    deadline = time.monotonic() + duration_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if not visitors or rng.random() < 0.3:
                visitors.append(
                    DemoVisitor(
                        visitor=f"demo-{rng.getrandbits(48):012x}",
                        user_agent=rng.choice(USER_AGENTS),
                        referrer=rng.choice(REFERRERS),
                        pages_left=rng.choice((1, 1, 2, 3, 5)),
                    )
                )
            who = rng.choice(visitors)
            events = next_events(rng, who, site, origin)
            if who.pages_left <= 0:
                visitors.remove(who)
            try:
                async with http.post(
                    f"{gateway}/v1/collect",
                    json={"events": events},
                    headers={"User-Agent": who.user_agent},
                ) as response:
                    if response.status == 202:
                        accepted += len(events)
                    else:
                        print(
                            f"gateway answered {response.status}: {await response.text()}",
                            file=sys.stderr,
                        )
            except aiohttp.ClientError as exc:
                print(f"gateway not reachable: {exc}", file=sys.stderr)
                await asyncio.sleep(1.0)
            await asyncio.sleep(rng.expovariate(rate / max(1, len(events))))
    return accepted


def demo_key_file(settings: Settings) -> Path:
    """Where `make run` keeps the demo site's report key (the registry holds only its hash)."""
    return settings.state_dir / "demo-site.key"


async def ensure_demo_site(settings: Settings, site: str) -> str:
    """Register the demo site once and return its report API key.

    The registry never stores keys in clear, so a key lost from the state dir is replaced
    by rotating it rather than read back.
    """
    key_file = demo_key_file(settings)
    registered = {record.site for record in await list_sites(settings)}
    if site in registered and key_file.exists():
        return key_file.read_text().strip()
    if site in registered:
        _, key = await rotate_key(settings, site)
    else:
        _, key = await add_site(
            settings, site, timezone="Asia/Kolkata", domains=("shop.example", "localhost")
        )
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key


def _setup(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        key = asyncio.run(ensure_demo_site(settings, args.site))
    except RegistryError as exc:
        print(f"footfall demo setup: {exc}", file=sys.stderr)
        return 1
    print(f"demo site {args.site!r} is registered; its report key is in {demo_key_file(settings)}")
    print(key)
    return 0


def _traffic(args: argparse.Namespace) -> int:
    settings = get_settings()
    gateway = args.gateway or f"http://{settings.gateway_host}:{settings.gateway_port}"
    accepted = asyncio.run(run_traffic(gateway, args.site, args.rate, args.duration, args.seed))
    print(f"demo traffic: {accepted} events accepted by {gateway}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = subparsers.add_parser("demo", help="demo traffic through the gateway")
    actions = demo.add_subparsers(dest="action", required=True)
    setup = actions.add_parser("setup", help="register the demo site once; print its key last")
    setup.add_argument("--site", default=DEMO_SITE)
    setup.set_defaults(func=_setup)
    traffic = actions.add_parser("traffic", help="post browser-like events for a while")
    traffic.add_argument("--site", default=DEMO_SITE)
    traffic.add_argument("--rate", type=float, default=20.0, help="events per second")
    traffic.add_argument("--duration", type=float, default=3600.0, help="seconds")
    traffic.add_argument("--seed", type=int, default=1)
    traffic.add_argument("--gateway", help="gateway base URL (default: from settings)")
    traffic.set_defaults(func=_traffic)
