"""Counts a fixed workload with tables.counting and prints what it wrote, as one digest.

Run by test_native.py in a subprocess, once with the compiled core and once from the
sources (FOOTFALL_PURE_PYTHON), since a process imports one or the other.
"""

from __future__ import annotations

import hashlib
import zlib

import orjson

from footfall import native
from footfall.events import kafka_key
from tables.bucket_cache import BucketCache
from tables.core import new_counter
from tables.counting import CountingRules
from tests.workload import workload

PARTITIONS = 4
BATCH = 97  # odd-sized batches: records written by one batch are read back by the next


def main() -> None:
    events = workload(4000, seed=23)
    by_partition: list[list[bytes]] = [[] for _ in range(PARTITIONS)]
    for event in events:
        partition = zlib.crc32(kafka_key(event["site"], event["visitor"])) % PARTITIONS
        by_partition[partition].append(orjson.dumps(event))
    digest = hashlib.sha256()
    cache = BucketCache()
    for partition, raws in enumerate(by_partition):
        sessions: dict[bytes, bytes] = {}
        buckets: dict[bytes, bytes] = {}
        for start in range(0, len(raws), BATCH):
            chunk = raws[start : start + BATCH]
            pairs = [(start + i, orjson.loads(r)) for i, r in enumerate(chunk)]
            counter = new_counter(CountingRules(), sessions.get, buckets.get, cache)
            result = counter.apply(partition, pairs)
            for key, bucket in result.buckets.items():
                buckets[key] = encoded = bucket.encode()
                cache.keep(key, bucket, encoded)
            for key, session in result.sessions.items():
                sessions[key] = session.encode()
        for key in sorted(buckets):
            digest.update(key + b"=" + buckets[key] + b";")
        for key in sorted(sessions):
            digest.update(key + b"=" + sessions[key] + b";")
    said = {"compiled": native.compiled(), "rust": native.core() is not None}
    print(orjson.dumps({**said, "digest": digest.hexdigest()}).decode())


if __name__ == "__main__":
    main()
