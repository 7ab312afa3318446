"""The counting core alone, Python (mypyc) against Rust: µs per event to apply and to encode.

Run: ``.venv/bin/python bench/core.py [--events 100000] [--rounds 3]`` (no services).

bench/stream.py's events (~560 bytes, visits of 4 events on average) are split over 8
partitions as `events.raw` splits them and counted in batches of `--batch` events per
partition, each batch's changed buckets and sessions encoded and kept in a dict store and
the worker's bucket cache, as agents/count.py does when it writes every batch, with the
cyclic garbage collector paused as the worker pauses it while it counts. Both cores
run in this process, alternately, `--rounds` times each; the best round of each is
reported, with the ratio between them (this machine is noisy: the ratio is the figure).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from stream import make_events  # noqa: E402

from footfall import native  # noqa: E402
from footfall.events import kafka_key  # noqa: E402
from tables.bucket_cache import BucketCache  # noqa: E402
from tables.core import core_name, new_counter  # noqa: E402
from tables.counting import BatchCounter, CountingRules  # noqa: E402

PARTITIONS = 8
Make = Callable[..., Any]


def one_round(make: Make, parts: list[list[bytes]], batch: int) -> tuple[float, float]:
    """(apply, encode) seconds over every partition's batches, with a fresh store."""
    rules = CountingRules()
    cache = BucketCache()
    buckets: dict[bytes, bytes] = {}
    sessions: dict[bytes, bytes] = {}
    applying = encoding = 0.0
    for partition, records in enumerate(parts):
        for start in range(0, len(records), batch):
            pairs = [
                (start + i, orjson.loads(r)) for i, r in enumerate(records[start : start + batch])
            ]
            began = time.perf_counter()
            result = make(rules, sessions.get, buckets.get, cache).apply(partition, pairs)
            applied = time.perf_counter()
            for key, bucket in result.buckets.items():
                buckets[key] = written = bucket.encode()
                cache.keep(key, bucket, written)
            for key, session in result.sessions.items():
                sessions[key] = session.encode()
            encoding += time.perf_counter() - applied
            applying += applied - began
    return applying, encoding


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=11_000, help="events per partition batch")
    args = parser.parse_args()
    rust = core_name(CountingRules().sketch)
    if rust != "rust":
        sys.exit(f"footfall._core is not in use ({rust}): run `footfall native build`")
    events = make_events(args.events)
    parts: list[list[bytes]] = [[] for _ in range(PARTITIONS)]
    for event in events:
        parts[zlib.crc32(kafka_key(event["site"], event["visitor"])) % PARTITIONS].append(
            orjson.dumps(event)
        )
    python = "python (mypyc)" if native.compiled() else "python (sources)"
    cores: dict[str, Make] = {python: BatchCounter, "rust": new_counter}
    gc.disable()  # agents/count.py's _collector_paused, around every batch
    best = {name: (float("inf"), float("inf")) for name in cores}
    for round_ in range(1, args.rounds + 1):
        for name, make in cores.items():
            applying, encoding = one_round(make, parts, args.batch)
            old = best[name]
            best[name] = (min(old[0], applying), min(old[1], encoding))
            print(
                f"round {round_} {name:>15}: apply {applying / len(events) * 1e6:5.2f} µs/event, "
                f"encode {encoding / len(events) * 1e6:5.2f} µs/event",
                flush=True,
            )
    n = len(events)
    for name, (applying, encoding) in best.items():
        total = applying + encoding
        print(
            f"best {name:>15}: apply {applying / n * 1e6:5.2f} + encode {encoding / n * 1e6:5.2f} "
            f"µs/event = {n / total:,.0f} events/s"
        )
    python_total, rust_total = (sum(best[name]) for name in cores)
    print(f"rust is {python_total / rust_total:.2f}x the python core's speed (apply + encode)")


if __name__ == "__main__":
    main()
