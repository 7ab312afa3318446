"""The tables' partials of a report, gathered from every worker that holds partitions.

`minutes_by_site` is partitioned like `events.raw`: each worker holds the buckets of its
assigned partitions only, and a site's visitors are spread over all of them. So the
worker that receives a report asks Faust's assignor who holds which partition
(`app.router.table_metadata`), reads its own partitions in place (web.reports.local), and
asks each other worker for its partials over `POST /internal/v1/partials`, forwarding the
caller's `Authorization` (the peer checks the key itself, so the endpoint needs no secret
of its own). A peer answers for the partitions it holds *now* and says which those are;
the answer is used only when the partitions served add up to all of them, otherwise
(a rebalance in flight, a peer down) the report is a 503 with Retry-After.

Peers send merged partials per bucket (or per value), sketches included; the receiver
unions them (web.reports.merge), so any span's visitors is one merged sketch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import aiohttp
import orjson
from yarl import URL

from footfall.visitors import SketchConfig
from tables.codec import CodecError
from web.reports.accumulate import SeriesAcc, ValuesAcc
from web.reports.filters import Filter, members_of
from web.reports.local import GroupMemo, MinuteStore, Mode, Read, read_series, read_values
from web.reports.merge import Agg, Partials, decode_partials, encode_partials
from web.reports.recent import Recent

log = logging.getLogger(__name__)
T = TypeVar("T")
PARTIALS_PATH = "/internal/v1/partials"
_MODES: tuple[Mode, ...] = ("total", "filter", "breakdown")


class Unavailable(RuntimeError):
    """Some partitions cannot be read now (rebalance, recovery, a peer down): a 503."""


class Cluster(Protocol):
    """Who holds which partition of the table."""

    partitions: int

    def self_url(self) -> str: ...

    def hosts(self) -> Mapping[str, set[int]]:
        """Worker URL -> the partitions it is active for, as the assignor last said."""
        ...

    def local_partitions(self) -> set[int]:
        """Partitions this worker can read now (empty while rebalancing or recovering)."""
        ...


class FaustCluster:
    """The Cluster of a running Faust app, for one table."""

    def __init__(self, app: Any, table: Any, partitions: int) -> None:
        self.app = app
        self.table = table
        self.partitions = partitions

    def self_url(self) -> str:
        return normal_url(str(self.app.conf.canonical_url))

    def _topic(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    def hosts(self) -> Mapping[str, set[int]]:
        topic = self._topic()
        found: dict[str, set[int]] = {}
        for url, topics in self.app.router.table_metadata(self.table.name).items():
            partitions = set(topics.get(topic, ()))
            if partitions:
                found.setdefault(normal_url(url), set()).update(partitions)
        return found

    def local_partitions(self) -> set[int]:
        app = self.app
        if getattr(app, "rebalancing", False) or getattr(app, "in_recovery", False):
            return set()
        topic = self._topic()
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}


class SingleNode:
    """A cluster of one worker holding every partition (tests, tools)."""

    def __init__(self, partitions: int, url: str = "http://local") -> None:
        self.partitions = partitions
        self.url = url
        self.available = True

    def self_url(self) -> str:
        return self.url

    def hosts(self) -> Mapping[str, set[int]]:
        return {self.url: set(range(self.partitions))}

    def local_partitions(self) -> set[int]:
        return set(range(self.partitions)) if self.available else set()


def normal_url(url: str) -> str:
    parsed = URL(url)
    return str(parsed.with_path("")).rstrip("/")


class TablesSource:
    """The tables' partials of a report: this worker's read in place, the others' asked."""

    name = "tables"

    def __init__(
        self,
        store: MinuteStore,
        cluster: Cluster,
        config: SketchConfig,
        *,
        timeout_s: float = 10.0,
        in_thread: bool = True,
        ttl_s: float = 0.0,
    ) -> None:
        self.store = store
        self.cluster = cluster
        self.config = config
        self.timeout_s = timeout_s
        self.in_thread = in_thread
        self.ttl_s = ttl_s
        self._http: aiohttp.ClientSession | None = None
        # The same live span asked again within ttl_s is answered from here, and asked
        # meanwhile, gathered once (web.reports.recent).
        self._recent = Recent(ttl_s)
        # Merged groups of this worker's buckets, reused while unchanged (web.reports.local).
        self.memo = GroupMemo()

    # --- this worker's part ------------------------------------------------------------------
    async def run(self, fun: Callable[[], T]) -> T:
        """Run CPU work of a report off the event loop (in a thread) unless in_thread is off."""
        # RocksDB scans and sketch unions of a long range take a while: off the event loop,
        # so the worker keeps counting meanwhile. The memory store is read in place.
        if self.in_thread:
            return await asyncio.to_thread(fun)
        return fun()

    def _local(self, wanted: Iterable[int]) -> list[int]:
        return sorted(set(wanted) & self.cluster.local_partitions())

    async def local_partials(
        self, read: Read, bounds: Sequence[int], wanted: Iterable[int]
    ) -> bytes:
        """The answer to a peer: this worker's partials of `wanted` partitions it holds."""
        served = self._local(wanted)
        if read.mode == "breakdown":
            values = ValuesAcc(self.config)
            await self.run(
                lambda: read_values(
                    self.store, served, read, values, bounds[0], bounds[-1], self.memo
                )
            )
            return await self.run(
                lambda: encode_partials(
                    served, [], {v: b.build() for v, b in values.values.items()}
                )
            )
        acc = SeriesAcc(self.config, bounds)
        await self.run(
            lambda: read_series(self.store, served, read, acc, bounds[0], bounds[-1], self.memo)
        )
        return await self.run(lambda: encode_partials(served, [b.build() for b in acc.buckets], {}))

    # --- a report ----------------------------------------------------------------------------
    def _plan(self) -> tuple[list[int], dict[str, list[int]]]:
        hosts = self.cluster.hosts()
        me = self.cluster.self_url()
        local: list[int] = []
        remote: dict[str, list[int]] = {}
        for url, partitions in hosts.items():
            if url == me:
                local = self._local(partitions)
            else:
                remote[url] = sorted(partitions)
        return local, remote

    async def _ask(
        self, url: str, read: Read, bounds: Sequence[int], partitions: list[int], authorization: str
    ) -> Partials:
        body = orjson.dumps(
            {
                "site": read.site,
                "mode": read.mode,
                "dimension": read.dimension,
                "filter": read.filter.as_json() if read.filter is not None else None,
                "group": read.group,
                "bounds": list(bounds),
                "partitions": partitions,
            }
        )
        headers = {"Authorization": authorization, "Content-Type": "application/json"}
        try:
            async with self._session().post(
                url + PARTIALS_PATH, data=body, headers=headers
            ) as resp:
                data = await resp.read()
                if resp.status != 200:
                    raise Unavailable(f"worker {url} answered {resp.status}: {data[:200]!r}")
            return decode_partials(data)
        except (aiohttp.ClientError, TimeoutError, CodecError) as exc:
            raise Unavailable(f"worker {url}: {exc!r}") from exc

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        return self._http

    async def _gather(
        self,
        read: Read,
        bounds: Sequence[int],
        authorization: str,
        local: Callable[[list[int]], Awaitable[None]],
    ) -> list[Partials]:
        local_parts, remote = self._plan()
        asks = {
            url: asyncio.ensure_future(self._ask(url, read, bounds, parts, authorization))
            for url, parts in remote.items()
        }
        try:
            await local(local_parts)
            answers = list(await asyncio.gather(*asks.values()))
        finally:
            for task in asks.values():
                task.cancel()
        served = set(local_parts)
        for answer in answers:
            served.update(answer.partitions)
        missing = set(range(self.cluster.partitions)) - served
        if missing:
            raise Unavailable(
                f"partitions {sorted(missing)} of the tables are not readable now "
                "(a rebalance or recovery in progress)"
            )
        return answers

    async def series(
        self, read: Read, acc: SeriesAcc, start: int, end: int, authorization: str
    ) -> None:
        """Add the tables' minutes of [start, end) to a series, from every partition."""
        first, bounds = acc.sub_bounds(start, end)
        if self.ttl_s > 0:

            async def compute() -> tuple[list[Agg], Agg]:
                part = SeriesAcc(self.config, bounds)
                await self._series(read, part, start, end, authorization)
                return await self.run(
                    lambda: ([b.build() for b in part.buckets], part.total.build())
                )

            aggs, total = await self._recent.get(("series", read, tuple(bounds)), compute)
            acc.add_buckets(first, aggs, total)
            return
        await self._series(read, acc, start, end, authorization)

    async def _series(
        self, read: Read, acc: SeriesAcc, start: int, end: int, authorization: str
    ) -> None:
        first, bounds = acc.sub_bounds(start, end)

        async def local(partitions: list[int]) -> None:
            await self.run(
                lambda: read_series(self.store, partitions, read, acc, start, end, self.memo)
            )

        for answer in await self._gather(read, bounds, authorization, local):
            acc.add_buckets(first, answer.buckets)

    async def values(
        self, read: Read, acc: ValuesAcc, start: int, end: int, authorization: str
    ) -> None:
        """Add the tables' rows of one dimension over [start, end), from every partition."""
        if self.ttl_s > 0:

            async def compute() -> dict[str, Agg]:
                part = ValuesAcc(self.config)
                await self._values(read, part, start, end, authorization)
                return await self.run(lambda: {v: b.build() for v, b in part.values.items()})

            acc.add_values(await self._recent.get(("values", read, start, end), compute))
            return
        await self._values(read, acc, start, end, authorization)

    async def _values(
        self, read: Read, acc: ValuesAcc, start: int, end: int, authorization: str
    ) -> None:

        async def local(partitions: list[int]) -> None:
            await self.run(
                lambda: read_values(self.store, partitions, read, acc, start, end, self.memo)
            )

        for answer in await self._gather(read, [start, end], authorization, local):
            acc.add_values(answer.values)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


def parse_partials_request(body: bytes) -> tuple[Read, list[int], list[int]]:
    """(read, bounds, partitions) of a peer's request; ValueError when malformed."""
    data = orjson.loads(body)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    mode = data.get("mode")
    if mode not in _MODES:
        raise ValueError("bad mode")
    bounds = [int(b) for b in data["bounds"]]
    if len(bounds) < 2 or any(b >= a for a, b in zip(bounds[1:], bounds, strict=False)):
        raise ValueError("bounds must increase")
    flt = data.get("filter")
    dimension = str(data.get("dimension") or "")
    group = str(data.get("group") or "")
    if group and group not in members_of(dimension):
        raise ValueError("group is not a member of dimension")
    read = Read(
        site=str(data["site"]),
        mode=mode,
        dimension=dimension,
        filter=Filter.from_json(flt) if flt is not None else None,
        group=group,
    )
    if read.filter is not None and not set(read.filter.dimensions) <= set(members_of(dimension)):
        raise ValueError("the filter names a dimension the rows do not hold")
    partitions = [int(p) for p in data["partitions"]]
    return read, bounds, partitions
