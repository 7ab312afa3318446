"""The decoded-bucket cache: only what the store still holds, within its memory budget."""

from __future__ import annotations

from footfall.visitors import SketchConfig
from tables.bucket_cache import BucketCache, footprint
from tables.buckets import Bucket


def bucket_with_rows(n: int) -> tuple[Bucket, bytes]:
    bucket = Bucket(SketchConfig())
    for i in range(n):
        row = bucket.row("page", f"/p/{i}")
        row.counts[0] += 1
        row.visitors.add(f"v{i}", 1)
    return bucket, bucket.encode()


def test_a_bucket_comes_back_only_while_the_store_holds_its_bytes() -> None:
    cache = BucketCache()
    bucket, written = bucket_with_rows(3)
    cache.keep(b"shop|0|1", bucket, written)
    assert cache.take(b"shop|0|1", bytes(written)) is bucket  # equal bytes, another object
    assert cache.take(b"shop|0|1", written) is None  # taken: a failed batch leaves nothing
    cache.keep(b"shop|0|1", bucket, written)
    assert cache.take(b"shop|0|1", written + b"x") is None  # someone else wrote it since
    cache.keep(b"shop|0|1", bucket, written)
    assert cache.take(b"shop|0|1", None) is None  # purged
    assert (cache.hits, cache.misses, len(cache), cache.bytes) == (1, 3, 0, 0)


def test_the_least_recently_written_go_first_when_over_budget() -> None:
    bucket, written = bucket_with_rows(10)
    size = footprint(bucket, written)
    cache = BucketCache(max_bytes=3 * size)
    for minute in range(5):
        cache.keep(f"shop|{minute}|0".encode(), bucket, written)
    assert len(cache) == 3
    assert cache.bytes == 3 * size
    assert cache.take(b"shop|1|0", written) is None
    assert cache.take(b"shop|4|0", written) is bucket


def test_a_bucket_larger_than_the_budget_is_not_kept() -> None:
    bucket, written = bucket_with_rows(50)
    cache = BucketCache(max_bytes=footprint(bucket, written) - 1)
    cache.keep(b"shop|0|0", bucket, written)
    assert len(cache) == 0
    assert cache.bytes == 0


def test_forgetting_partitions() -> None:
    bucket, written = bucket_with_rows(1)
    cache = BucketCache()
    for partition in (1, 2, 11):
        cache.keep(f"shop|0|{partition}".encode(), bucket, written)
    cache.forget({1})
    assert cache.take(b"shop|0|11", written) is bucket
    assert cache.take(b"shop|0|1", written) is None
    cache.forget()
    assert len(cache) == 0
    assert cache.bytes == 0
