"""Answers reused for a few seconds, and computed once for callers asking at the same time.

Reports read live data, so reuse is bounded by `ttl_s` (report_live_ttl_s: a dashboard is
seconds behind at most, while the stream itself is). What it buys is load: a dashboard
refresh across many viewers, or 200 requests/s of one query, costs one computation per
`ttl_s`, and requests that arrive while it runs wait for it instead of repeating it.

With `stale_s` > 0 they do not wait either (stale-while-revalidate): once a result is older
than `ttl_s`, the next caller starts its recomputation and every caller is answered from
the previous result until the new one is ready, as long as the previous one is at most
`ttl_s + stale_s` old. A recomputation that fails drops the entry, so the next caller
computes again and sees the error itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class _Entry(Generic[T]):
    started: float  # when the newest computation began: its result is at least this fresh
    future: asyncio.Future[T]
    previous: tuple[float, T] | None = None  # the last good result, while `future` runs


class Recent:
    """Single-flight results by key, kept `ttl_s` (0: single-flight only) up to `entries`."""

    def __init__(self, ttl_s: float, entries: int = 1000, stale_s: float = 0.0) -> None:
        self.ttl_s = ttl_s
        self.stale_s = stale_s
        self.entries = entries
        self._data: dict[Hashable, _Entry[Any]] = {}

    def _fresh(self, started: float, now: float) -> bool:
        return now - started <= self.ttl_s

    def _usable(self, started: float, now: float) -> bool:
        return now - started <= self.ttl_s + self.stale_s

    async def get(
        self, key: Hashable, compute: Callable[[], Awaitable[T]], *, stale: bool = True
    ) -> T:
        """The result for `key`; `stale=False`: never one older than `ttl_s`."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        entry = self._data.get(key)
        if entry is not None:
            future = entry.future
            if not future.done():
                previous = entry.previous
                if stale and previous is not None and self._usable(previous[0], now):
                    kept: T = previous[1]
                    return kept
                result: T = await asyncio.shield(future)
                return result
            if future.exception() is None:
                value: T = future.result()
                if self._fresh(entry.started, now):
                    return value
                if stale and self.stale_s > 0 and self._usable(entry.started, now):
                    self._start(key, compute, now, (entry.started, value))
                    return value
        if len(self._data) >= self.entries:
            self._data = {
                k: v
                for k, v in self._data.items()
                if not v.future.done() or self._usable(v.started, now)
            }
        started = self._start(key, compute, now, None)
        return await asyncio.shield(started)

    def _start(
        self,
        key: Hashable,
        compute: Callable[[], Awaitable[T]],
        now: float,
        previous: tuple[float, T] | None,
    ) -> asyncio.Future[T]:
        future: asyncio.Future[T] = asyncio.ensure_future(compute())
        self._data[key] = _Entry(now, future, previous)

        def done(fut: asyncio.Future[T]) -> None:
            if fut.cancelled() or fut.exception() is not None:
                entry = self._data.get(key)
                if entry is not None and entry.future is fut:
                    del self._data[key]

        future.add_done_callback(done)
        return future
