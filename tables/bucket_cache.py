"""Decoded minute buckets kept between batches, so a busy bucket is not decoded every batch.

A bucket of a busy minute holds thousands of breakdown rows with their sketches; decoding
it from the store at every batch and re-encoding what the batch touched costs more than
the counting. The counting agent keeps the buckets it has just written here, with the
bytes it wrote. A batch takes a bucket out only if the store still holds exactly those
bytes (anything else wrote it since: a recovery, a purge, another owner), and puts it
back only once its new value is written; a batch that fails leaves nothing behind, so the
cache never holds a change the store does not.
"""

from __future__ import annotations

from collections import OrderedDict

from tables.buckets import CountedBucket

# What a decoded row costs in memory beyond its encoding: the Stats, its counters list and
# its Visitors. Measured (RSS growth over the bench's 100,000 events, 220,000 rows): ~390
# bytes for a row of one visitor (no sketch yet: footfall.visitors), ~810 for one with a
# sketch; nine rows in ten of a minute bucket counted here have one visitor. A row decoded
# from the store has its sketch (~810), one not touched since costs only its bytes: a
# blend, so the budget is approximate.
ROW_OVERHEAD_BYTES = 450


def footprint(bucket: CountedBucket, written: bytes) -> int:
    """Roughly the bytes a decoded bucket holds in memory."""
    return len(written) + ROW_OVERHEAD_BYTES * bucket.row_count()


class BucketCache:
    """Decoded buckets within `max_bytes` (footprint), least recently written evicted first."""

    def __init__(self, max_bytes: int = 128 * 2**20) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[bytes, tuple[CountedBucket, bytes, int]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, key: bytes, stored: bytes | None) -> CountedBucket | None:
        """The cached bucket of `key` if the store holds what it was written as; else None."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry[2]
            if stored is not None and entry[1] == stored:
                self.hits += 1
                return entry[0]
        self.misses += 1
        return None

    def keep(self, key: bytes, bucket: CountedBucket, written: bytes) -> None:
        """Remember a bucket whose value `written` is now in the store."""
        size = footprint(bucket, written)
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old[2]
        if size > self.max_bytes:
            return
        self._entries[key] = (bucket, written, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, _, evicted) = self._entries.popitem(last=False)
            self.bytes -= evicted

    def forget(self, partitions: set[int] | None = None) -> None:
        """Drop every bucket, or those of some partitions (keys end with |partition)."""
        if partitions is None:
            self._entries.clear()
            self.bytes = 0
            return
        suffixes = tuple(f"|{p}".encode() for p in partitions)
        for key in [k for k in self._entries if k.endswith(suffixes)]:
            self.bytes -= self._entries.pop(key)[2]
