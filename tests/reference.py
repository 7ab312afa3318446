"""An independent reference for the stream layer's numbers, and an event factory.

Written straight from spec/metrics.md, whole-history and in the obvious way (sort each
visitor's events, cut sessions, add up), deliberately sharing no code with tables/ or
footfall.metrics, so that agreeing with it means something.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from footfall.events import ENVELOPE_FIELD_NAMES

TIMEOUT_MS = 30 * 60 * 1000
SESSION_DIMS = (
    "entry_page",
    "exit_page",
    "source",
    "utm_campaign",
    "country",
    "device",
    "browser",
    "os",
)
EVENT_DIMS = ("page", "event")
# Rows per combination of values (spec: filters on several dimensions), written out here.
SESSION_COMBO = "source+country+device"
EVENT_COMBO = "page+source+country+device"

_ids = itertools.count()


def envelope(
    site: str,
    visitor: str,
    t: int,
    *,
    name: str = "pageview",
    path: str | None = "/",
    event_id: str | None = None,
    bot: bool = False,
    rate: int = 1,
    revenue: tuple[float, str] | None = None,
    source: str = "direct",
    country: str = "IN",
    device: str = "desktop",
    browser: str = "Chrome",
    os: str = "Linux",
    utm_campaign: str | None = None,
    received_at: int | None = None,
) -> dict[str, Any]:
    """A published event (every envelope field present, as the gateway sends it)."""
    event: dict[str, Any] = dict.fromkeys(ENVELOPE_FIELD_NAMES)
    event.update(
        site=site,
        name=name,
        url=f"https://{site}.example{path}" if path is not None else None,
        visitor=visitor,
        id=event_id if event_id is not None else f"e{next(_ids)}",
        ts=t,
        received_at=received_at if received_at is not None else t + 50,
        event_time=t,
        country=country,
        device=device,
        browser=browser,
        os=os,
        bot=bot,
        source=source,
        sample_rate=rate,
        path=path,
        utm_campaign=utm_campaign,
        revenue={"amount": revenue[0], "currency": revenue[1]} if revenue else None,
    )
    return event


@dataclass
class Row:
    """Counters and visitors (visitor -> sample rate) of a minute or breakdown row."""

    counts: Counter[str] = field(default_factory=Counter)
    visitors: dict[str, int] = field(default_factory=dict)

    def visitors_estimate(self) -> int:
        return sum(self.visitors.values())


@dataclass
class Minute:
    total: Row = field(default_factory=Row)
    revenue: Counter[str] = field(default_factory=Counter)
    breakdowns: dict[str, dict[str, Row]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(Row))
    )


def _minute(t: int) -> int:
    return t - t % 60_000


def _day(t: int) -> int:
    return t // 86_400_000


def reference(events: Iterable[Mapping[str, Any]]) -> dict[tuple[str, int], Minute]:
    """Per (site, minute start) metrics of events given in arrival order."""
    seen: set[tuple[str, str]] = set()
    kept: list[Mapping[str, Any]] = []
    for e in events:
        if e["bot"] or (e["site"], e["id"]) in seen:
            continue
        seen.add((e["site"], e["id"]))
        kept.append(e)
    minutes: dict[tuple[str, int], Minute] = defaultdict(Minute)
    sessions = _sessions(kept)
    # Each event's session's first event (its attributes).
    first_of = {id(e): session[0] for _, _, session in sessions for e in session}

    for e in kept:
        m = minutes[(e["site"], _minute(e["event_time"]))]
        r = e["sample_rate"]
        first = first_of[id(e)]
        combo = "\x1f".join(
            (e["path"] or "", first["source"] or "", first["country"] or "", first["device"] or "")
        )
        rows = [
            m.total,
            m.breakdowns["page"][e["path"] or ""],
            m.breakdowns["event"][e["name"]],
            m.breakdowns[EVENT_COMBO][combo],
        ]
        for row in rows:
            row.counts["events"] += r
            row.counts["pageviews"] += r if e["name"] == "pageview" else 0
            row.counts["transactions"] += r if e["revenue"] else 0
            row.visitors[e["visitor"]] = r
        if e["revenue"]:
            m.revenue[e["revenue"]["currency"]] += round(e["revenue"]["amount"] * 1e6) * r

    for site, visitor, session in sessions:
        first = session[0]
        pageviews = [e for e in session if e["name"] == "pageview"]
        values = {
            "entry_page": first["path"] or "",
            "exit_page": (pageviews[-1]["path"] or "") if pageviews else "",
            "source": first["source"] or "",
            "utm_campaign": first["utm_campaign"] or "",
            "country": first["country"] or "",
            "device": first["device"] or "",
            "browser": first["browser"] or "",
            "os": first["os"] or "",
        }
        values[SESSION_COMBO] = "\x1f".join((values["source"], values["country"], values["device"]))
        r = first["sample_rate"]
        duration = session[-1]["event_time"] - first["event_time"]
        m = minutes[(site, _minute(first["event_time"]))]
        dims = (*SESSION_DIMS, SESSION_COMBO)
        rows = [m.total] + [m.breakdowns[d][values[d]] for d in dims]
        for row in rows:
            row.counts["sessions"] += r
            row.counts["bounces"] += r if len(session) == 1 else 0
            row.counts["duration_sum"] += r * duration
        for d in dims:
            m.breakdowns[d][values[d]].visitors[visitor] = r
    return dict(minutes)


def _sessions(
    kept: list[Mapping[str, Any]],
) -> list[tuple[str, str, list[Mapping[str, Any]]]]:
    """(site, visitor, events) of every session, each session's events in time order."""
    by_visitor: dict[tuple[str, str], list[tuple[int, int, Mapping[str, Any]]]] = defaultdict(list)
    for i, e in enumerate(kept):
        by_visitor[(e["site"], e["visitor"])].append((e["event_time"], i, e))
    found: list[tuple[str, str, list[Mapping[str, Any]]]] = []
    for (site, visitor), timeline in by_visitor.items():
        timeline.sort(key=lambda item: (item[0], item[1]))
        previous: int | None = None
        for t, _, e in timeline:
            if previous is None or t - previous > TIMEOUT_MS or _day(t) != _day(previous):
                found.append((site, visitor, []))
            found[-1][2].append(e)
            previous = t
    return found


# --- comparing the stream layer's buckets with the reference ---------------------------
COUNTERS = ("events", "pageviews", "transactions", "sessions", "bounces", "duration_sum")


@dataclass
class Merged:
    """A minute's buckets summed over partitions: counts, revenue, visitor estimates."""

    counts: Counter[str] = field(default_factory=Counter)
    visitors: float = 0.0
    revenue: Counter[str] = field(default_factory=Counter)
    rows: dict[tuple[str, str], tuple[Counter[str], float]] = field(default_factory=dict)


def merge_buckets(buckets: Mapping[tuple[str, int, int], Any]) -> dict[tuple[str, int], Merged]:
    """(site, minute, partition) -> tables.buckets.Bucket, summed per (site, minute)."""
    merged: dict[tuple[str, int], Merged] = defaultdict(Merged)
    for (site, minute, _), bucket in buckets.items():
        m = merged[(site, minute)]
        m.counts.update(bucket.total.as_dict())
        m.visitors += bucket.total.visitors.estimate()
        m.revenue.update(bucket.revenue)
        for dim, rows in bucket.breakdowns.items():
            for value, stats in rows.items():
                counts, visitors = m.rows.get((dim, value), (Counter(), 0.0))
                counts.update(stats.as_dict())
                m.rows[(dim, value)] = (counts, visitors + stats.visitors.estimate())
    return dict(merged)


def _close(estimate: float, exact: int, tolerance: float) -> bool:
    return abs(estimate - exact) <= max(tolerance * exact, 0.5)


def compare(
    merged: Mapping[tuple[str, int], Merged],
    ref: Mapping[tuple[str, int], Minute],
    *,
    tolerance: float = 0.0,
    breakdowns: bool = True,
) -> list[str]:
    """Every difference, one line each (empty: they agree). Counts must match exactly,
    visitors within `tolerance` (relative). `exit_page` visitors may only be higher: the
    stream keeps a visitor in every exit page row its session passed through."""
    problems: list[str] = []
    for key in sorted(set(merged) | set(ref)):
        got = merged.get(key, Merged())
        want = ref.get(key, Minute())
        for name in COUNTERS:
            if got.counts[name] != want.total.counts[name]:
                problems.append(f"{key} {name}: {got.counts[name]} != {want.total.counts[name]}")
        if not _close(got.visitors, want.total.visitors_estimate(), tolerance):
            problems.append(f"{key} visitors: {got.visitors} !~ {want.total.visitors_estimate()}")
        if +got.revenue != +want.revenue:
            problems.append(f"{key} revenue: {dict(got.revenue)} != {dict(want.revenue)}")
        if not breakdowns:
            continue
        wanted_rows = {
            (dim, value): row
            for dim, rows in want.breakdowns.items()
            for value, row in rows.items()
        }
        for row_key in sorted(set(got.rows) | set(wanted_rows)):
            counts, visitors = got.rows.get(row_key, (Counter(), 0.0))
            row = wanted_rows.get(row_key, Row())
            for name in COUNTERS:
                if counts[name] != row.counts[name]:
                    problems.append(f"{key} {row_key} {name}: {counts[name]} != {row.counts[name]}")
            exact = row.visitors_estimate()
            if row_key[0] == "exit_page":
                if visitors < exact * (1 - tolerance) - 0.5:
                    problems.append(f"{key} {row_key} visitors: {visitors} < {exact}")
            elif not _close(visitors, exact, tolerance):
                problems.append(f"{key} {row_key} visitors: {visitors} !~ {exact}")
    return problems
