"""What writing the raw archive costs the worker: Arrow's JSON reader against decoded envelopes.

Run: ``.venv/bin/python bench/archive.py [--events 100000] [--repeats 3]`` (no services).

The archive agent buffers a partition's events and turns them into a Parquet file
(footfall.archive). The JSON fields' columns come either from the records' JSON, parsed by
Arrow's reader in C++ (`_read_json`, the archive's path), or from the decoded envelopes,
converted by pyarrow value by value (`_from_envelopes`, the baseline: how the archive built
them before, and its fallback). Both run on the same events (bench/stream.py's, ~560 bytes
each). For each, per event: wall and CPU time alone; and "GIL left", how fast the main
thread spins while the conversion runs in another thread (as the worker runs it, with
asyncio.to_thread, while its event loop counts) against its speed alone. Then the memory a
buffer of the events holds, as rows and as decoded envelopes, and what the Parquet
write itself costs. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stream import make_events  # noqa: E402
from footfall import archive  # noqa: E402


def spin_rate(seconds: float) -> float:
    """Loop iterations per second of the main thread with nothing else running."""
    count = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        count += 1
    return count / seconds


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """(wall s, CPU s) of `work`, alone in this thread."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    work()
    return time.perf_counter() - wall0, time.process_time() - cpu0


def gil_left(work: Callable[[], object], idle_rate: float) -> float:
    """How fast this thread spins, against `idle_rate`, while `work` runs in another thread.

    The worker runs the archive's conversion in a thread while its event loop counts: the
    share is what the counting would get (about 0.5 for work that holds the GIL throughout:
    two threads wanting it take turns).
    """
    done = threading.Event()

    def run() -> None:
        work()
        done.set()

    thread = threading.Thread(target=run)
    started = time.perf_counter()
    thread.start()
    count = 0
    while not done.is_set():
        count += 1
    thread.join()
    return min(1.0, count / (time.perf_counter() - started) / idle_rate)


def buffer_bytes(build: Callable[[], object]) -> int:
    """Bytes allocated by what `build` returns (and keeps), traced."""
    gc.collect()
    tracemalloc.start()
    kept = build()
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    events = make_events(args.events)
    values = [orjson.dumps(e) for e in events]
    envelopes: list[dict[str, Any]] = [orjson.loads(v) for v in values]
    pairs = list(zip(envelopes, values, strict=True))
    rows = [archive.archive_row(i, e, v) for i, (e, v) in enumerate(pairs)]
    n = len(rows)
    print(f"{n:,} events of ~{statistics.mean(len(v) for v in values):.0f} bytes")

    json_read = archive._read_json(rows)
    by_envelopes = archive._from_envelopes(envelopes)
    same = all(json_read.column(c).equals(by_envelopes.column(c)) for c in json_read.column_names)
    print(f"same columns either way: {same}")

    paths: dict[str, Callable[[], object]] = {
        "Arrow's JSON reader (records' JSON)": lambda: archive._read_json(rows),
        "pyarrow from decoded envelopes": lambda: archive._from_envelopes(envelopes),
    }
    idle = spin_rate(0.5)
    results: dict[str, tuple[float, float, float]] = {}
    for name, work in paths.items():
        wall, cpu = min(timed(work) for _ in range(args.repeats))  # the least disturbed run
        share = statistics.median(gil_left(work, idle) for _ in range(args.repeats))
        results[name] = (wall, cpu, share)
    header = ("JSON fields to columns", "events/s", "wall µs", "CPU µs", "GIL left")
    print("\n{:38} {:>11} {:>8} {:>7} {:>9}".format(*header))
    for name, (wall, cpu, share) in results.items():
        per_event = (wall / n * 1e6, cpu / n * 1e6)
        print(
            f"{name:38} {n / wall:>11,.0f} {per_event[0]:>8.2f} {per_event[1]:>7.2f} {share:>9.0%}"
        )
    (json_wall, _, _), (env_wall, _, _) = results.values()
    print(f"ratio (reader / envelopes, events/s): {env_wall / json_wall:.2f}")

    table = archive.to_table(0, rows)
    sink = pa.BufferOutputStream()
    started = time.perf_counter()
    pq.write_table(table, sink, compression="zstd")
    written = time.perf_counter() - started
    size = sink.getvalue().size
    print(f"Parquet (zstd) write: {written / n * 1e6:.2f} µs/event, {size / n:.0f} bytes/event")

    # Rows as the archive agent makes them: from an envelope decoded for both agents (of
    # which the row keeps the props) and the record's JSON (a copy of it here).
    as_rows = buffer_bytes(
        lambda: [
            archive.archive_row(i, orjson.loads(v), bytes(memoryview(v)))
            for i, v in enumerate(values)
        ]
    )
    as_envelopes = buffer_bytes(lambda: [orjson.loads(v) for v in values])
    print(
        f"buffer memory: {as_rows / n:,.0f} bytes/event as rows (the record's JSON and the "
        f"decoded props included), {as_envelopes / n:,.0f} as decoded envelopes"
    )


if __name__ == "__main__":
    main()
