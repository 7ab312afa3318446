"""Per-site, per-day completion markers, and `batch_until`, which the reporting API reads.

A rewrite of a site's day goes: marker `site|day` deleted and set to `running` (and the
site listed under the day in batch_day_sites), the site's rows of the day deleted, the new
rows written, then the marker set to `done` (a closed day) or `partial` (a day still open:
rows up to `cutoff` only), with the day's input counts. A run over every site of a day also
deletes the all-sites marker `*|day` first and sets it `done` at the end: it stands for
every site that has no marker of its own that day (a site without events has no rows to
write, and a marker per site of millions would be the bulk of the writes).

So a site's day is complete when its own marker says `done`, or when it has no marker
and the all-sites marker of the day says `done`. A crash mid-rewrite leaves `running`,
which is not complete; the next run redoes the day.

`batch_until` is the end of the last day of the unbroken run of complete days that starts
at the site's first complete day: the reporting API answers days up to it from HBase and
later ones from the stream. A gap (a day whose rewrite failed) holds it back until the day
is redone, so the API never answers a day from HBase that HBase does not hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Final

import happybase

from batch.days import day_start_ms, parse_day
from batch.hbase import (
    ALL_SITES,
    DAY_FAMILY,
    DAY_SITES,
    DAYS,
    SEP,
    day_key,
    day_site_key,
    decode_int,
    encode_int,
)
from footfall.metrics import DAY_MS

STATE: Final = DAY_FAMILY + b":state"


class DayState(StrEnum):
    RUNNING = "running"
    PARTIAL = "partial"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class SiteDayStats:
    """What a run read of one site's day: events in the window, bots, events counted."""

    read: int = 0
    bots: int = 0
    counted: int = 0

    @property
    def duplicates(self) -> int:
        return self.read - self.bots - self.counted


@dataclass(frozen=True, slots=True)
class Marker:
    """A decoded marker row."""

    state: DayState
    values: dict[str, int]


@dataclass(frozen=True, slots=True)
class BatchRange:
    """The unbroken run of complete days of a site: HBase holds the truth for these."""

    first: date
    last: date

    @property
    def until_ms(self) -> int:
        """`batch_until` as an instant: 00:00 UTC after the last complete day, epoch ms."""
        return day_start_ms(self.last) + DAY_MS


def begin(
    connection: happybase.Connection,
    day: str,
    sites: Iterable[str],
    timestamp: int,
    *,
    all_sites: bool,
) -> None:
    """Mark sites' day `running` (cells at timestamp + 1; deletes at timestamp)."""
    sites = list(sites)
    days = connection.table(DAYS)
    with days.batch(timestamp=timestamp) as batch:
        for site in [*sites, ALL_SITES] if all_sites else sites:
            batch.delete(day_key(site, day))
    with days.batch(timestamp=timestamp + 1) as batch:
        for site in sites:
            batch.put(day_key(site, day), {STATE: DayState.RUNNING.encode()})
    with connection.table(DAY_SITES).batch(timestamp=timestamp + 1) as batch:
        for site in sites:
            batch.put(day_site_key(day, site), {DAY_FAMILY + b":seen": b"1"})


def finish(
    connection: happybase.Connection,
    day: str,
    stats: Mapping[str, SiteDayStats],
    state: DayState,
    details: Mapping[str, int],
    timestamp: int,
    *,
    all_sites: bool,
) -> None:
    """Mark sites' day `state` with their stats and the run's `details` (at timestamp + 2)."""
    common = {DAY_FAMILY + b":" + k.encode(): encode_int(v) for k, v in details.items()}
    with connection.table(DAYS).batch(timestamp=timestamp + 2) as batch:
        for site, numbers in stats.items():
            cells = {
                **common,
                STATE: state.encode(),
                DAY_FAMILY + b":read": encode_int(numbers.read),
                DAY_FAMILY + b":bots": encode_int(numbers.bots),
                DAY_FAMILY + b":duplicates": encode_int(numbers.duplicates),
                DAY_FAMILY + b":counted": encode_int(numbers.counted),
            }
            batch.put(day_key(site, day), cells)
        if all_sites:
            batch.put(day_key(ALL_SITES, day), {**common, STATE: state.encode()})


def sites_of_day(connection: happybase.Connection, day: str) -> list[str]:
    """Every site a run has written (or begun writing) on `day`."""
    prefix = f"{day}{SEP}".encode()
    return [
        key[len(prefix) :].decode()
        for key, _ in connection.table(DAY_SITES).scan(row_prefix=prefix, batch_size=1000)
    ]


def _decode(cells: Mapping[bytes, bytes]) -> Marker:
    values = {
        column.partition(b":")[2].decode(): decode_int(value)
        for column, value in cells.items()
        if column != STATE
    }
    return Marker(DayState(cells[STATE].decode()), values)


def markers(connection: happybase.Connection, site: str) -> dict[date, Marker]:
    """Every marker of a site (or of ALL_SITES), by day."""
    prefix = f"{site}{SEP}".encode()
    found: dict[date, Marker] = {}
    for key, cells in connection.table(DAYS).scan(row_prefix=prefix, batch_size=1000):
        if STATE in cells:
            found[parse_day(key[len(prefix) :].decode())] = _decode(cells)
    return found


def complete_days(connection: happybase.Connection, site: str) -> set[date]:
    """The days whose truth for `site` HBase holds (module docstring)."""
    own = markers(connection, site)
    done = {day for day, marker in own.items() if marker.state is DayState.DONE}
    for day, marker in markers(connection, ALL_SITES).items():
        if marker.state is DayState.DONE and day not in own:
            done.add(day)
    return done


def batch_range(connection: happybase.Connection, site: str) -> BatchRange | None:
    """The site's first complete day and the last of the unbroken run from it, or None."""
    done = complete_days(connection, site)
    if not done:
        return None
    first = min(done)
    last = first
    while last + timedelta(days=1) in done:
        last += timedelta(days=1)
    return BatchRange(first, last)
