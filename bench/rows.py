"""Breakdown rows per dimension and per combination of dimensions: what the rows cost.

Run: ``.venv/bin/python bench/rows.py [--per-day 3000] [--days 30]`` (no services).

bench/api.py's month of a shop's events is counted with the stream's own rules
(tables.counting) twice: over 8 partitions (the stream's `site|minute|partition` buckets)
and over one (the batch layer's `site|dim|minute|value` rows: one per minute and value).
Prints the rows of every dimension and combination (footfall.metrics.COMBINATIONS).
"""

from __future__ import annotations

import argparse
import sys
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.api import month  # noqa: E402
from footfall.events import kafka_key  # noqa: E402
from footfall.metrics import COMBINATIONS  # noqa: E402
from footfall.visitors import SketchConfig  # noqa: E402
from tables.counting import BatchCounter, CountingRules  # noqa: E402

NOW = 1_795_500_000_000


def rows_per_dimension(events: list[dict[str, Any]], partitions: int) -> Counter[str]:
    """Breakdown rows of every dimension over all minute buckets of `partitions`."""
    data: dict[bytes, bytes] = {}
    sessions: dict[bytes, bytes] = {}
    rules = CountingRules(sketch=SketchConfig(14, "HLL_8"), retention_ms=10**13)
    counter = BatchCounter(rules, sessions.get, data.get)
    by_partition: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    for event in events:
        partition = zlib.crc32(kafka_key(event["site"], event["visitor"])) % partitions
        rows = by_partition.setdefault(partition, [])
        rows.append((len(rows), event))
    found: Counter[str] = Counter()
    for partition, rows in by_partition.items():
        for bucket in counter.apply(partition, rows).buckets.values():
            for dimension, values in bucket.breakdowns.items():
                found[dimension] += len(values)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=3000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    events = month(args.per_day, args.days, NOW)
    print(f"{len(events):,} events, {args.days} days")
    for partitions in (8, 1):
        found = rows_per_dimension(events, partitions)
        print(f"\n{partitions} partition(s)")
        for dimension, n in sorted(found.items()):
            print(f"  {dimension:28s} {n:>10,d}")
        combined = sum(n for d, n in found.items() if d in COMBINATIONS)
        alone = sum(n for d, n in found.items() if d not in COMBINATIONS)
        print(f"  {'dimensions':28s} {alone:>10,d}")
        print(f"  {'combinations':28s} {combined:>10,d}  (+{100 * combined / alone:.0f} %)")


if __name__ == "__main__":
    main()
