"""A worker's own partials: the minute buckets of the partitions it holds, read in place.

`minutes_by_site` keys are `site|minute|partition` (tables.buckets), and a RocksDB store
keeps one database per partition with keys in byte order, so a site's minutes of one
partition are one contiguous range: a seek and a short scan, whatever else the worker
holds. (Minutes have 13 digits from 2001 to 2286, so byte order is time order.)
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from hashlib import blake2b
from typing import Any, Final, Literal, Protocol, TypeVar

from footfall.visitors import SketchConfig
from tables.buckets import Bucket, Stats
from web.reports.accumulate import SeriesAcc, ValuesAcc
from web.reports.filters import Filter, grouper
from web.reports.merge import Agg, AggBuilder

Mode = Literal["total", "filter", "breakdown"]
_THIRTEEN_DIGITS = 10**12
T = TypeVar("T")
#: Minutes are read and merged in groups that never cross a UTC hour (nor a report bucket):
#: a group whose buckets are unchanged since the last read is not decoded again.
GROUP_MS: Final = 3_600_000
MEMO_ENTRIES: Final = 20_000


@dataclass(frozen=True, slots=True)
class Read:
    """What to read of one site: a series (total or filtered) or a breakdown's values.

    `dimension` names the rows read (a dimension, or a combination of dimensions: see
    web.reports.filters); a breakdown adds each row to its value of `group`.
    """

    site: str
    mode: Mode
    dimension: str = ""
    filter: Filter | None = None
    group: str = ""

    def matcher(self) -> Callable[[str], bool] | None:
        """The test a row value must pass (None: every row counts)."""
        return self.filter.matcher(self.dimension) if self.filter is not None else None

    def grouper(self) -> Callable[[str], str]:
        """A row value's breakdown value."""
        return grouper(self.dimension, self.group or self.dimension)


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


def _stats_rows(
    bucket: Bucket, dimension: str, matches: Callable[[str], bool] | None
) -> Iterator[tuple[str, Stats]]:
    rows = bucket.rows.get(dimension)
    if not rows:
        return
    for value in list(rows):
        if matches is None or matches(value):
            yield value, bucket.row(dimension, value)


class GroupMemo:
    """Merged partials of groups of one partition's buckets, reused while the bytes are equal.

    A report over the tables re-reads every bucket of its span at each recompute, but only
    the newest minutes (and the few a late event touched) have changed since the last one.
    Each group (at most an hour of minutes of one partition, see `group_cuts`) keeps a
    digest of the encoded buckets it was merged from (BLAKE2b, 128 bits per bucket: the
    bytes themselves would hold a copy of the tables per query shape); a group whose
    buckets read back the same is not decoded or merged again. The content decides, not an
    offset or a time, so a reused partial is the one those buckets give. Shared by the
    threads that read (a lock); least recently used entries go past `entries` (each holds
    the group's merged sketches: up to 16 KiB per sample rate, or per value of a breakdown).
    """

    def __init__(self, entries: int = MEMO_ENTRIES) -> None:
        self.entries = entries
        self._data: OrderedDict[Hashable, tuple[bytes, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, raws: Sequence[bytes], compute: Callable[[], T]) -> T:
        digest = b"".join(blake2b(raw, digest_size=16).digest() for raw in raws)
        with self._lock:
            found = self._data.get(key)
            if found is not None and found[0] == digest:
                self._data.move_to_end(key)
                self.hits += 1
                result: T = found[1]
                return result
            self.misses += 1
        value = compute()
        if self.entries > 0:
            with self._lock:
                self._data[key] = (digest, value)
                self._data.move_to_end(key)
                while len(self._data) > self.entries:
                    self._data.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._data)


def group_cuts(bounds: Sequence[int], start: int, end: int) -> list[int]:
    """Group boundaries of [start, end): the report's bucket bounds and every UTC hour."""
    hours = range((start // GROUP_MS + 1) * GROUP_MS, end, GROUP_MS)
    inner = {b for b in bounds if start < b < end}
    inner.update(hours)
    return [start, *sorted(inner), end]


def _groups(
    store: MinuteStore, site: str, partition: int, cuts: Sequence[int]
) -> Iterator[tuple[int, tuple[bytes, ...]]]:
    """(group index, the group's encoded buckets in minute order) of one partition."""
    current = -1
    raws: list[bytes] = []
    for minute, raw in store.scan(site, partition, cuts[0], cuts[-1]):
        index = bisect_right(cuts, minute) - 1
        if index != current:
            if raws:
                yield current, tuple(raws)
            current, raws = index, []
        raws.append(raw)
    if raws:
        yield current, tuple(raws)


def _series_partial(read: Read, raws: Iterable[bytes], config: SketchConfig) -> Agg:
    builder = AggBuilder(config)
    matches = read.matcher()
    for raw in raws:
        bucket = Bucket.decode(raw, config)
        if read.mode == "total":
            visitors = bucket.total.visitors
            builder.add(bucket.total.counts, bucket.revenue, visitors.max_rate(), visitors.by_rate)
            continue
        for _, stats in _stats_rows(bucket, read.dimension, matches):
            visitors = stats.visitors
            builder.add(stats.counts, None, visitors.max_rate(), visitors.by_rate)
    return builder.build()


def _values_partial(read: Read, raws: Iterable[bytes], config: SketchConfig) -> dict[str, Agg]:
    builders: dict[str, AggBuilder] = {}
    matches, group = read.matcher(), read.grouper()
    for raw in raws:
        bucket = Bucket.decode(raw, config)
        for row_value, stats in _stats_rows(bucket, read.dimension, matches):
            value = group(row_value)
            builder = builders.get(value)
            if builder is None:
                builder = builders[value] = AggBuilder(config)
            visitors = stats.visitors
            builder.add(stats.counts, None, visitors.max_rate(), visitors.by_rate)
    return {value: builder.build() for value, builder in builders.items()}


def read_series(
    store: MinuteStore,
    partitions: Iterable[int],
    read: Read,
    acc: SeriesAcc,
    start: int,
    end: int,
    memo: GroupMemo | None = None,
) -> None:
    """Add the minutes of [start, end) of `partitions` to a series (merged per group)."""
    config = acc.config
    memo = memo if memo is not None else GroupMemo(0)
    cuts = group_cuts(acc.bounds, start, end)
    for partition in partitions:
        for index, raws in _groups(store, read.site, partition, cuts):
            lo, hi = cuts[index], cuts[index + 1]
            agg = memo.get(
                ("series", read, partition, lo, hi),
                raws,
                partial(_series_partial, read, raws, config),
            )
            if not agg.empty:
                acc.add_loose(lo, agg)


def read_values(
    store: MinuteStore,
    partitions: Iterable[int],
    read: Read,
    acc: ValuesAcc,
    start: int,
    end: int,
    memo: GroupMemo | None = None,
) -> None:
    """Add the rows of one dimension over [start, end) of `partitions`, per value."""
    config = acc.config
    memo = memo if memo is not None else GroupMemo(0)
    cuts = group_cuts((), start, end)
    for partition in partitions:
        for index, raws in _groups(store, read.site, partition, cuts):
            lo, hi = cuts[index], cuts[index + 1]
            values = memo.get(
                ("values", read, partition, lo, hi),
                raws,
                partial(_values_partial, read, raws, config),
            )
            acc.add_values(values)
