"""Per-site rate limiting (429) and overload sampling (keep 1 in N visitors).

Both are per gateway process: with R replicas behind the load balancer a site may send
R times `rate_limit_events_per_s` in all.

Sampling keeps a visitor iff ``visitor_bucket(site, visitor) % N == 0`` and marks the
kept events ``sample_rate: N`` (spec/metrics.md, "Sampling"). The hash is stable across
processes and restarts, so every replica keeps the same visitors and their sessions stay
whole. Automatic sampling only ever moves N by factors of two from the configured base,
so the visitors kept at 4N are a subset of those kept at 2N: a rising N drops whole
visitors instead of reshuffling who is kept.

Events dropped by sampling are still answered 202 and counted as accepted: the kept
events carry `sample_rate` N and so stand for them in every metric. An emitter cannot
tell, and must not retry them.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; starts full."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def refill(self, now: float) -> None:
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.stamp = now

    def wait_for(self, n: int) -> float:
        """Seconds until `n` events may pass (0.0: now), after `refill`.

        A batch larger than the burst needs a full bucket and then leaves it in debt, so
        it can pass at all while the long-run rate still holds.
        """
        needed = min(float(n), self.burst)
        if self.tokens >= needed:
            return 0.0
        return (needed - self.tokens) / self.rate


class SiteRateLimiter:
    """One token bucket per site; a request passes only if all its sites have room."""

    _PRUNE_EVERY = 10_000

    def __init__(
        self,
        events_per_s: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.events_per_s = events_per_s
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._calls = 0

    @property
    def enabled(self) -> bool:
        return self.events_per_s > 0

    def acquire(self, counts: Mapping[str, int]) -> float:
        """Take `counts[site]` events for each site and return 0.0, or take nothing and
        return the seconds to wait before the request could pass."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        buckets = []
        wait = 0.0
        for site, n in counts.items():
            bucket = self._buckets.get(site)
            if bucket is None:
                bucket = self._buckets[site] = TokenBucket(self.events_per_s, self.burst, now)
            bucket.refill(now)
            wait = max(wait, bucket.wait_for(n))
            buckets.append((bucket, n))
        if wait > 0:
            return wait
        for bucket, n in buckets:
            bucket.tokens -= n
        self._calls += 1
        if self._calls % self._PRUNE_EVERY == 0:
            self._prune(now)
        return 0.0

    def _prune(self, now: float) -> None:
        # A full bucket is the same as no bucket: forget idle sites.
        for site, bucket in list(self._buckets.items()):
            bucket.refill(now)
            if bucket.tokens >= bucket.burst:
                del self._buckets[site]


def retry_after_s(wait: float) -> int:
    """A `Retry-After` value (whole seconds, at least 1) for a wait in seconds."""
    return max(1, math.ceil(wait))


def visitor_bucket(site: str, visitor: str) -> int:
    """A stable 64-bit hash of ``site|visitor`` (BLAKE2b), the same in every process."""
    digest = hashlib.blake2b(f"{site}|{visitor}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def keep(site: str, visitor: str, rate: int) -> bool:
    """Whether sampling at 1 in `rate` keeps this visitor's events."""
    return rate <= 1 or visitor_bucket(site, visitor) % rate == 0


class Sampler:
    """The sample rate in force: `base`, raised by doubling while Kafka acks lag behind.

    `observe` is called about once a second with the number of events waiting for Kafka
    acks. Above `backlog_limit` N doubles (up to `ceiling`); below a quarter of it, N
    halves back towards `base`. With `ceiling <= base` the rate is fixed.
    """

    def __init__(self, base: int, ceiling: int, backlog_limit: int) -> None:
        if base < 1:
            raise ValueError("sample rate must be >= 1")
        self.base = base
        self._max_shift = 0
        while base << (self._max_shift + 1) <= ceiling:
            self._max_shift += 1
        self._shift = 0
        self.backlog_limit = backlog_limit

    @property
    def rate(self) -> int:
        return self.base << self._shift

    @property
    def automatic(self) -> bool:
        return self._max_shift > 0

    def observe(self, backlog: int) -> int:
        if backlog > self.backlog_limit and self._shift < self._max_shift:
            self._shift += 1
        elif backlog < self.backlog_limit / 4 and self._shift > 0:
            self._shift -= 1
        return self.rate
