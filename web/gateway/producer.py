"""Publishing a request's events to Kafka: all acknowledged before the deadline, or none.

The gateway answers 202 only once the broker acknowledged every event of the request
(idempotent producer, ``acks=all``). When that does not happen before the deadline, the
request is answered 503 and the producer that held its events is *abandoned*: its sender
is stopped and every record it still holds is failed, so that nothing answered 503 is
delivered later by a retry (an idempotent aiokafka producer otherwise retries a batch
until it succeeds, which after a broker restart would publish events whose request was
told they were not accepted). A fresh producer takes over for later requests.

Requests already on the wire when the deadline nears are let finish (see `publish`), so
the answer follows what the broker acknowledged. What cannot be known: a broker that
wrote a batch and then died before answering. Such an event is on the topic although its
request got a 503; the emitter's retry carries the same event `id` (when the emitter sets
one), which the stream layer deduplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.codec import has_lz4, has_zstd  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError, KafkaTimeoutError  # type: ignore[import-untyped]
from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]

from footfall.settings import Settings
from footfall.topics import TopicError, ensure_topic

log = logging.getLogger(__name__)

Record = tuple[bytes, bytes]  # (key, value)

_PROBE_TIMEOUT_S = 2.0
_PROBE_CACHE_S = 1.0
_RECONNECT_MAX_S = 2.0
_IN_FLIGHT_SHARE = 0.4


class Unavailable(Exception):
    """Kafka did not acknowledge every event in time; nothing of the request counts."""


def pick_compression(setting: str) -> str | None:
    """The producer's compression_type for a `kafka_compression` setting."""
    if setting == "none":
        return None
    if setting == "auto":
        # zstd (level 3) compresses tracker JSON about 16x at ~700 MB/s per core here;
        # aiokafka's lz4 is level 9 (slower, larger) and its gzip level 9 (~15x slower).
        if has_zstd():
            return "zstd"
        if has_lz4():
            return "lz4"
        return "gzip"
    if (setting == "lz4" and not has_lz4()) or (setting == "zstd" and not has_zstd()):
        raise ValueError(
            f"kafka_compression={setting} needs its codec: pip install 'aiokafka[{setting}]'"
        )
    return setting


class KeyHashCache:
    """Kafka's default partitioner (the Java client's murmur2 of the key), with the hashes
    of recent keys cached: the events of one request mostly share one key, and aiokafka's
    murmur2 is pure Python. Same partition for a key as every other Kafka client."""

    def __init__(self, size: int = 65_536) -> None:
        self._hash: Callable[[bytes], int] = lru_cache(maxsize=size)(murmur2)

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        return all_partitions[(self._hash(key) & 0x7FFFFFFF) % len(all_partitions)]


class Publisher:
    """Owns the current producer, replaces it after a failure, and publishes requests."""

    def __init__(self, settings: Settings, *, topic: str | None = None) -> None:
        self.settings = settings
        self.topic = topic or settings.events_topic
        self.timeout_s = settings.gateway_publish_timeout_s
        # The share of the deadline kept for produce requests already on the wire.
        self.in_flight_s = self.timeout_s * _IN_FLIGHT_SHARE
        self.compression = pick_compression(settings.kafka_compression)
        self.backlog = 0  # events handed to a producer, not yet acked or failed
        self._producer: Any = None
        self._ready = asyncio.Event()
        self._fenced = asyncio.Event()
        self._topic_checked = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._probe_at = 0.0
        self._probe_ok = False
        self._partitioner = KeyHashCache()

    # --- lifecycle ----------------------------------------------------------------------
    async def run(self) -> None:
        """Keep a started producer available, forever (cancel to stop)."""
        backoff = 0.1
        while True:
            producer = None
            try:
                await self._ensure_topic()
                producer = self._new_producer()
                async with asyncio.timeout(max(5.0, self.timeout_s)):
                    await producer.start()
            except Exception as exc:  # a background task must not die: nothing would publish
                log.warning("producer: cannot connect to Kafka (%s); retrying", _describe(exc))
                if producer is not None:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _RECONNECT_MAX_S)
                continue
            backoff = 0.1
            self._producer = producer
            self._ready.set()
            log.info("producer: connected to Kafka at %s", self.settings.kafka_bootstrap)
            try:
                await self._fenced.wait()
            finally:
                self._fenced.clear()

    async def close(self) -> None:
        """Flush and stop the current producer; wait for abandoned ones to finish."""
        producer, self._producer = self._producer, None
        self._ready.clear()
        if producer is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timeout_s):
                    await producer.flush()
            await _abandon(producer, "the gateway is shutting down")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def connected(self) -> bool:
        return self._producer is not None

    async def probe(self) -> bool:
        """Whether Kafka answers a metadata request now (cached for a second)."""
        producer = self._producer
        if producer is None:
            return False
        now = time.monotonic()
        if now - self._probe_at < _PROBE_CACHE_S:
            return self._probe_ok
        try:
            async with asyncio.timeout(_PROBE_TIMEOUT_S):
                await producer.client.fetch_all_metadata()
            ok = True
        except (KafkaError, OSError, TimeoutError):
            ok = False
        self._probe_at, self._probe_ok = time.monotonic(), ok
        return ok

    # --- publishing ---------------------------------------------------------------------
    async def publish(
        self, records: Sequence[Record], headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        """Send every record and wait for all acks; Unavailable when not all came in time.

        Two phases share the deadline D. Until D - G (G: the in-flight request timeout)
        records are sent and acks awaited. If some are missing then, the producer is
        abandoned, which lets the requests already on the wire finish (within G) and
        fails the rest before they are ever sent; the answer then follows what the
        broker really acknowledged. So a 503 is not contradicted later by a retry, nor
        by a batch that was merely slow to be acknowledged.
        """
        if not records:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        producer: Any = None
        futures: list[asyncio.Future[Any]] = []
        self.backlog += len(records)
        try:
            try:
                async with asyncio.timeout_at(deadline - self.in_flight_s):
                    while (producer := self._producer) is None:
                        await self._ready.wait()
                    send = producer.send
                    topic = self.topic
                    kafka_headers = list(headers) or None
                    for key, value in records:
                        futures.append(await send(topic, value, key=key, headers=kafka_headers))
                    await asyncio.wait(futures)
            except TimeoutError as exc:
                if producer is None or not futures:
                    raise
                self._fence(producer, exc)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(deadline):
                        await asyncio.wait(futures)
            if not all(future.done() for future in futures):
                raise TimeoutError()
            errors = [_failure(future) for future in futures]
            first = next((error for error in errors if error is not None), None)
            if first is not None:
                raise first
        except (KafkaError, TimeoutError) as exc:
            if producer is not None:
                self._fence(producer, exc)
            raise Unavailable(_describe(exc)) from exc
        finally:
            self.backlog -= len(records)
            for future in futures:
                if not future.done():
                    future.add_done_callback(_retrieve)

    # --- internals ----------------------------------------------------------------------
    def _new_producer(self) -> Any:
        settings = self.settings
        return AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id="footfall-gateway",
            acks="all",
            enable_idempotence=True,
            linger_ms=settings.kafka_linger_ms,
            max_batch_size=settings.kafka_batch_bytes,
            compression_type=self.compression,
            partitioner=self._partitioner,
            # A request on the wire resolves within in_flight_s: see publish().
            request_timeout_ms=int(self.in_flight_s * 1000),
            retry_backoff_ms=100,
        )

    async def _ensure_topic(self) -> None:
        if self._topic_checked:
            return
        try:
            await ensure_topic(
                self.settings.kafka_bootstrap,
                self.topic,
                partitions=self.settings.topic_partitions,
            )
        except TopicError as exc:
            # Not fatal: in production the topic may be managed elsewhere (and creating
            # it not allowed); the producer then reports what is really wrong.
            log.warning("producer: %s", exc)
        self._topic_checked = True

    def _fence(self, producer: Any, exc: BaseException) -> None:
        if producer is not self._producer:
            return  # already replaced
        log.warning("producer: abandoning it after %s; starting a new one", _describe(exc))
        self._producer = None
        self._ready.clear()
        self._fenced.set()
        task = asyncio.create_task(_abandon(producer, f"abandoned after {_describe(exc)}"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _abandon(producer: Any, reason: str) -> None:
    """Stop a producer without delivering what it still holds.

    aiokafka has no public call for this (`stop()` flushes, which waits for the broker
    forever), so this reaches into it: cancel the sender task first (it finishes the
    requests already on the wire, then sends nothing more), then fail every batch left,
    then close the connections. Checked by the broker-outage integration test.
    """
    sender = producer._sender
    task = sender.sender_task if sender is not None else None
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    accumulator = producer._message_accumulator
    batches = [b for queue in accumulator._batches.values() for b in queue]
    batches += list(accumulator._pending_batches)
    accumulator.fail_all(KafkaTimeoutError(reason))
    for batch in batches:
        # fail_all also fails each batch's internal drain waiter, which nobody awaits.
        waiter = batch._drain_waiter
        if waiter.done() and not waiter.cancelled():
            waiter.exception()
    with contextlib.suppress(Exception):
        await producer.stop()


def _failure(future: asyncio.Future[Any]) -> BaseException | None:
    if future.cancelled():
        cancelled: BaseException = KafkaTimeoutError("delivery cancelled")
        return cancelled
    return future.exception()


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Mark a late failure as seen, so asyncio does not log "exception never retrieved".
    if not future.cancelled():
        future.exception()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return "no acknowledgement before the deadline"
    return f"{type(exc).__name__}: {exc}"
