"""A worker's own partials: the minute buckets of the partitions it holds, read in place.

`minutes_by_site` keys are `site|minute|partition` (tables.buckets), and a RocksDB store
keeps one database per partition with keys in byte order, so a site's minutes of one
partition are one contiguous range: a seek and a short scan, whatever else the worker
holds. (Minutes have 13 digits from 2001 to 2286, so byte order is time order.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from footfall.visitors import SketchConfig
from tables.buckets import Bucket, Stats
from web.reports.accumulate import SeriesAcc, ValuesAcc
from web.reports.params import Filter

Mode = Literal["total", "filter", "breakdown"]
_THIRTEEN_DIGITS = 10**12


@dataclass(frozen=True, slots=True)
class Read:
    """What to read of one site: a series (total or filtered) or a breakdown's values."""

    site: str
    mode: Mode
    dimension: str = ""
    filter: Filter | None = None


class MinuteStore(Protocol):
    """Encoded buckets of a site's minutes in [start, end) of one partition."""

    def scan(
        self, site: str, partition: int, start: int, end: int
    ) -> Iterator[tuple[int, bytes]]: ...


def _key_range(site: str, start: int, end: int) -> tuple[bytes, bytes]:
    prefix = f"{site}|".encode()
    lo = prefix + (str(start).encode() if start >= _THIRTEEN_DIGITS else b"")
    hi = prefix + (
        str(end).encode() if _THIRTEEN_DIGITS <= end < 10 * _THIRTEEN_DIGITS else b"\xff"
    )
    return lo, hi


def _minute_and_partition(key: bytes, prefix_len: int) -> tuple[int, int]:
    minute, _, partition = key[prefix_len:].partition(b"|")
    return int(minute), int(partition)


class FaustTableStore:
    """Scans a Faust table's store: RocksDB (one DB per partition) or memory (one dict)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def scan(self, site: str, partition: int, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        store = self.table.data
        lo, hi = _key_range(site, start, end)
        prefix_len = len(site) + 1
        dbs = getattr(store, "_dbs", None)
        if dbs is not None:  # faust.stores.rocksdb: rocksdict, raw mode
            db = dbs.get(partition)
            if db is None:
                return
            for key, value in db.items(from_key=lo):
                if key >= hi:
                    break
                minute, _ = _minute_and_partition(key, prefix_len)
                if start <= minute < end:
                    yield minute, value
            return
        yield from scan_mapping(store.data, site, partition, start, end)


def scan_mapping(
    data: Mapping[bytes, bytes], site: str, partition: int, start: int, end: int
) -> Iterator[tuple[int, bytes]]:
    """The same scan over any mapping of bucket keys (memory store, tests): a full pass."""
    prefix = f"{site}|".encode()
    for key, value in list(data.items()):
        if not key.startswith(prefix):
            continue
        minute, p = _minute_and_partition(key, len(prefix))
        if p == partition and start <= minute < end:
            yield minute, value


class DictStore:
    """Bucket keys and values in a dict (tests, tools)."""

    def __init__(self, data: Mapping[bytes, bytes]) -> None:
        self.data = data

    def scan(self, site: str, partition: int, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        return scan_mapping(self.data, site, partition, start, end)


def _stats_rows(bucket: Bucket, dimension: str, flt: Filter | None) -> Iterator[tuple[str, Stats]]:
    rows = bucket.rows.get(dimension)
    if not rows:
        return
    for value in list(rows):
        if flt is None or flt.matches(value):
            yield value, bucket.row(dimension, value)


def read_series(
    store: MinuteStore,
    partitions: Iterable[int],
    read: Read,
    acc: SeriesAcc,
    start: int,
    end: int,
) -> None:
    """Add the minutes of [start, end) of `partitions` to a series."""
    config = acc.config
    for partition in partitions:
        for minute, raw in store.scan(read.site, partition, start, end):
            bucket = Bucket.decode(raw, config)
            if read.mode == "total":
                visitors = bucket.total.visitors
                acc.add(
                    minute,
                    bucket.total.counts,
                    bucket.revenue,
                    visitors.max_rate(),
                    visitors.by_rate,
                )
                continue
            for _, stats in _stats_rows(bucket, read.dimension, read.filter):
                acc.add(
                    minute, stats.counts, None, stats.visitors.max_rate(), stats.visitors.by_rate
                )


def read_values(
    store: MinuteStore,
    partitions: Iterable[int],
    read: Read,
    acc: ValuesAcc,
    start: int,
    end: int,
) -> None:
    """Add the rows of one dimension over [start, end) of `partitions`, per value."""
    config: SketchConfig = acc.config
    for partition in partitions:
        for _, raw in store.scan(read.site, partition, start, end):
            bucket = Bucket.decode(raw, config)
            for value, stats in _stats_rows(bucket, read.dimension, read.filter):
                acc.add(value, stats.counts, stats.visitors.max_rate(), stats.visitors.by_rate)
