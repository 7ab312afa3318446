"""The InfluxDB sink: changed minute buckets written as points, batched, retried until taken.

After each micro-batch the counting agent marks the buckets it changed as dirty, with their
point already formatted. A background task writes the dirty points every
`influx_flush_interval_s`, `influx_batch_points` per request; a point leaves the dirty set
only once InfluxDB took it and the bucket has not changed since. While InfluxDB is down the
task retries with exponential backoff (up to `influx_backoff_max_s`) and the dirty set
keeps everything, so after it returns every minute is there. Rewriting a point is harmless
(same series and time overwrite), which is what makes the full rewrite of every bucket at
worker start (after a crash the dirty set is gone) and at each partition assignment cheap
to reason about.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from agents.metrics import METRICS
from footfall.influx import InfluxClient, InfluxError
from footfall.metrics import COUNTERS
from footfall.series import minute_fields, minute_line
from tables.buckets import CountedBucket, parse_bucket_key

log = logging.getLogger(__name__)


def bucket_line(key: bytes, bucket: CountedBucket) -> str:
    """The InfluxDB point of a bucket (footfall.series)."""
    site, minute, partition = parse_bucket_key(key)
    counts, visitors, revenue, max_rate = bucket.point()
    fields = minute_fields(dict(zip(COUNTERS, counts, strict=True)), visitors, revenue, max_rate)
    return minute_line(site, str(partition), minute, fields)


class InfluxSink:
    """Dirty points by bucket key, and the loop that writes them."""

    def __init__(
        self,
        client_factory: Callable[[], InfluxClient],
        *,
        batch_points: int,
        interval_s: float,
        backoff_max_s: float,
    ) -> None:
        self._client_factory = client_factory
        self._client: InfluxClient | None = None
        self.batch_points = batch_points
        self.interval_s = interval_s
        self.backoff_max_s = backoff_max_s
        self._dirty: dict[bytes, str] = {}
        #: Held while a write is in flight: a revoke waits for it, so that no point of a
        #: partition this worker no longer owns lands after the new owner's.
        self.lock = asyncio.Lock()
        self.points_written = 0
        self.failures = 0
        self.last_error = ""

    # --- the dirty set ------------------------------------------------------------------
    def mark(self, key: bytes, line: str) -> None:
        self._dirty[key] = line

    def pending(self) -> int:
        return len(self._dirty)

    def forget(self, keys: Iterable[bytes]) -> None:
        for key in keys:
            self._dirty.pop(key, None)

    def forget_partitions(self, partitions: set[int]) -> None:
        """Drop the points of partitions this worker no longer owns."""
        self.forget([key for key in self._dirty if parse_bucket_key(key)[2] in partitions])

    # --- writing ----------------------------------------------------------------------
    async def flush(self) -> int:
        """Write every dirty point once; return how many InfluxDB took. Raises InfluxError."""
        snapshot = list(self._dirty.items())
        written = 0
        async with self.lock:
            if self._client is None:
                self._client = self._client_factory()
            for start in range(0, len(snapshot), self.batch_points):
                chunk = snapshot[start : start + self.batch_points]
                started = time.perf_counter()
                await self._client.write([line for _, line in chunk])
                METRICS.sink_write_seconds.labels("influx").observe(time.perf_counter() - started)
                for key, line in chunk:
                    if self._dirty.get(key) is line:
                        del self._dirty[key]
                written += len(chunk)
                self.points_written += len(chunk)
        return written

    async def run(self) -> None:
        """Flush forever: every interval, or with growing delays while InfluxDB fails."""
        delay = self.interval_s
        while True:
            await asyncio.sleep(delay)
            try:
                await self.flush()
            except InfluxError as exc:
                self.failures += 1
                METRICS.sink_write_errors.labels("influx").inc()
                self.last_error = str(exc)
                delay = min(self.backoff_max_s, max(delay * 2, self.interval_s))
                log.warning(
                    "InfluxDB write failed (%d points pending, retry in %.1fs): %s",
                    self.pending(),
                    delay,
                    exc,
                )
            else:
                delay = self.interval_s

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
