"""Answers reused for a few seconds, and computed once for callers asking at the same time.

Reports read live data, so reuse is bounded by `ttl_s` (report_live_ttl_s: a dashboard is
seconds behind at most, while the stream itself is). What it buys is load: a dashboard
refresh across many viewers, or 200 requests/s of one query, costs one computation per
`ttl_s`, and requests that arrive while it runs wait for it instead of repeating it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class Recent:
    """Single-flight results by key, kept `ttl_s` (0: single-flight only) up to `entries`."""

    def __init__(self, ttl_s: float, entries: int = 1000) -> None:
        self.ttl_s = ttl_s
        self.entries = entries
        self._data: dict[Hashable, tuple[float, asyncio.Future[Any]]] = {}

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        now = loop.time()
        found = self._data.get(key)
        if found is not None and (not found[1].done() or now - found[0] <= self.ttl_s):
            result: T = await asyncio.shield(found[1])
            return result
        if len(self._data) >= self.entries:
            self._data = {k: v for k, v in self._data.items() if now - v[0] <= self.ttl_s}
        future: asyncio.Future[Any] = asyncio.ensure_future(compute())
        self._data[key] = (now, future)
        try:
            return await asyncio.shield(future)
        except BaseException:
            if key in self._data and self._data[key][1] is future:
                del self._data[key]
            raise
