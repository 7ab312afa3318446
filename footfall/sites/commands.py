"""`footfall sites add | list | rotate-key | mp-secret`: the site registry from the command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from footfall.settings import get_settings


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sites",
        help="register sites and manage their API keys",
        description="The site registry (a compacted Kafka topic).",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="register a site; prints its API key as the last line")
    add.add_argument("site", help="site id: ^[a-z0-9][a-z0-9_.-]{0,63}$")
    add.add_argument("--timezone", default="UTC", help="IANA time zone of reports (default UTC)")
    add.add_argument(
        "--domain",
        dest="domains",
        action="append",
        default=[],
        metavar="HOST",
        help="a host of the site (repeatable); referrers from it count as internal",
    )
    add.add_argument(
        "--cookieless",
        action="store_true",
        help="no visitor cookie: a daily-salted hash of IP and User-Agent instead",
    )
    add.add_argument(
        "--alias",
        dest="aliases",
        action="append",
        default=[],
        metavar="NAME",
        help="another name of the site for /api/event and /mp/collect (repeatable): "
        "an app's Plausible domain, a GA4 measurement id",
    )
    add.set_defaults(func=_add)

    listing = actions.add_parser("list", help="list registered sites")
    listing.set_defaults(func=_list)

    rotate = actions.add_parser(
        "rotate-key", help="give a site a new API key (the old one stops working)"
    )
    rotate.add_argument("site")
    rotate.set_defaults(func=_rotate)

    mp = actions.add_parser(
        "mp-secret",
        help="give a site a new GA4 Measurement Protocol api_secret (printed as the last line)",
    )
    mp.add_argument("site")
    mp.add_argument(
        "--measurement-id", metavar="G-XXXXXXX", help="accept this measurement_id for the site"
    )
    mp.set_defaults(func=_mp_secret)


def _add(args: argparse.Namespace) -> int:
    from footfall.sites.registry import RegistryError, add_site

    try:
        record, key = asyncio.run(
            add_site(
                get_settings(),
                args.site,
                timezone=args.timezone,
                domains=args.domains,
                cookieless=args.cookieless,
                aliases=args.aliases,
            )
        )
    except RegistryError as exc:
        return _fail(exc)
    mode = "cookieless" if record.cookieless else "cookie"
    domains = ", ".join(record.domains) or "-"
    print(f"added site {record.site} (timezone {record.timezone}, {mode}, domains: {domains})")
    print("API key (shown once, store it now):")
    print(key)
    return 0


def _list(args: argparse.Namespace) -> int:
    from footfall.sites.registry import RegistryError, list_sites

    try:
        records = asyncio.run(list_sites(get_settings()))
    except RegistryError as exc:
        return _fail(exc)
    rows = [("SITE", "TIMEZONE", "VISITORS", "CREATED", "DOMAINS")]
    for r in records:
        mode = "cookieless" if r.cookieless else "cookie"
        rows.append((r.site, r.timezone, mode, r.created_at, ",".join(r.domains) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        )
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from footfall.sites.registry import RegistryError, rotate_key

    try:
        record, key = asyncio.run(rotate_key(get_settings(), args.site))
    except RegistryError as exc:
        return _fail(exc)
    print(f"new API key for site {record.site} (the old one no longer works):")
    print(key)
    return 0


def _mp_secret(args: argparse.Namespace) -> int:
    from footfall.sites.registry import RegistryError, set_mp_secret

    try:
        record, secret = asyncio.run(
            set_mp_secret(get_settings(), args.site, measurement_id=args.measurement_id)
        )
    except RegistryError as exc:
        return _fail(exc)
    names = ", ".join(record.aliases) or "-"
    print(f"new Measurement Protocol api_secret for site {record.site} (aliases: {names}):")
    print(secret)
    return 0


def _fail(exc: Exception) -> int:
    print(f"footfall sites: {exc}", file=sys.stderr)
    return 1
