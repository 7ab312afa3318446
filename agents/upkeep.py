"""Worker upkeep: the InfluxDB sink task, full rewrites after recovery, purges, rebalances.

- After table recovery (worker start, every rebalance) every bucket of the partitions this
  worker owns is marked dirty, so InfluxDB gets a full rewrite: a crash loses the dirty
  set, never the points.
- A revoked partition's dirty points are dropped (its next owner, maybe this worker
  again, rewrites them after recovery), after any write in flight has finished; the
  archive buffer of a partition that went to another worker is dropped (its events were
  never acked, so the new owner archives them).
- Every `purge_interval_s`, buckets older than `bucket_retention_h` and sessions idle for
  longer than the dedupe window (plus the session timeout) are deleted, measured in
  stream time (the newest `received_at` of the partition), so a replay purges alike.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, cast

from faust.types import TP
from faust.web import Request, Response, View

from agents.archive import archiver
from agents.count import HOUR_MS, RULES, STATS, sink
from agents.metrics import METRICS
from agents.sink import bucket_line
from agents.topics import events_topic
from footfall import dogstatsd, worker_probes
from footfall.app import app
from footfall.gc_clock import GC_CLOCK
from footfall.record_batches import readers_of, subscribed
from footfall.settings import get_settings
from tables import io
from tables.buckets import Bucket, parse_bucket_key
from tables.codec import CodecError
from tables.definitions import minutes_by_site, sessions_by_visitor
from tables.sessions import Session

log = logging.getLogger(__name__)
_settings = get_settings()
_CHUNK = 2000


def owned_partitions() -> set[int]:
    """Partitions of events.raw this worker processes now."""
    topic = events_topic.get_topic_name()
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}


async def write_to_influx() -> None:
    """Write changed minute buckets to InfluxDB (agents.sink), forever."""
    try:
        await sink.run()
    finally:
        await sink.close()


app.task(write_to_influx)


async def route_to_every_actor(wait_s: float = 10.0) -> None:
    """Make sure every agent's actor of every owned partition receives that partition.

    Faust builds its partition -> channels index once per rebalance, right after it has
    started the actors of newly assigned partitions; an actor whose stream registers its
    channel later is left out until the index is rebuilt. Table recovery ends before the
    stream partitions are resumed, so here, once every actor has registered, the index is
    rebuilt. A partition still missing one after `wait_s` is not delivered to the others
    (footfall.record_batches): it waits, and is routed when its last actor arrives.
    """
    topic = events_topic.get_topic_name()
    readers = readers_of(app.agents.values(), topic)
    assigned = app.consumer.assignment()
    wanted = {tp for tp in assigned if tp.topic == topic}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        missing = sorted(tp.partition for tp in wanted if subscribed(app.topics, tp) < readers)
        if not missing or loop.time() > deadline:
            break
        await asyncio.sleep(0.05)
    if missing:
        log.warning("Actors of partitions %s have not subscribed yet; those wait for them", missing)
    await app.topics.on_partitions_assigned(assigned)


@minutes_by_site.on_recover
async def rewrite_owned_buckets() -> None:
    """Route every owned partition to every actor; mark every owned bucket dirty."""
    await route_to_every_actor()
    owned = owned_partitions()
    marked = 0
    for key, value in list(minutes_by_site.data.items()):
        if parse_bucket_key(key)[2] not in owned:
            continue  # a standby copy
        sink.mark(key, bucket_line(key, Bucket.decode(value, RULES.sketch)))
        marked += 1
        if marked % _CHUNK == 0:
            await asyncio.sleep(0)
    log.info("Recovered %d minute buckets of partitions %s; rewriting them", marked, owned)


async def drop_revoked(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Stop writing points of partitions that may go elsewhere (module docstring).

    Kafka's eager rebalance revokes every partition and then assigns them again, most of
    them to the same worker; the points dropped here come back with the full rewrite
    after recovery.
    """
    revoked: set[TP] = args[0]
    topic = events_topic.get_topic_name()
    partitions = {tp.partition for tp in revoked if tp.topic == topic}
    if partitions:
        async with sink.lock:
            sink.forget_partitions(partitions)


async def drop_unassigned(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Forget the archive buffers of partitions this worker lost in a rebalance.

    Only those: a partition revoked and assigned back keeps its actor and its buffer,
    which is written as usual (dropping it would only make the archive read it back).
    """
    assigned: set[TP] = args[0]
    topic = events_topic.get_topic_name()
    kept = {tp.partition for tp in assigned if tp.topic == topic}
    async with archiver.lock:
        archiver.drop([p for p in list(archiver.buffers) if p not in kept])


# mode types signal handlers loosely
app.on_partitions_revoked.connect(cast(Any, drop_revoked))
app.on_partitions_assigned.connect(cast(Any, drop_unassigned))


async def purge_expired() -> None:
    """Delete expired buckets and sessions of the owned partitions (module docstring)."""
    await purge(owned_partitions(), STATS.stream_time)


async def purge(owned: set[int], stream_time: Mapping[int, int]) -> tuple[int, int]:
    """Purge the partitions in `owned` as of their stream time; (buckets, sessions) deleted."""
    now = {p: t for p, t in stream_time.items() if p in owned}
    if not now:
        return 0, 0
    bucket_cutoff = {p: t - RULES.retention_ms for p, t in now.items()}
    session_cutoff = {
        p: t - RULES.dedupe_window_ms - RULES.session_timeout_s * 1000 - HOUR_MS
        for p, t in now.items()
    }
    old_buckets = []
    for key in list(minutes_by_site.data.keys()):
        _, minute, partition = parse_bucket_key(key)
        if partition in bucket_cutoff and minute < bucket_cutoff[partition]:
            old_buckets.append((partition, key))
    idle_sessions = []
    for n, (key, value) in enumerate(list(sessions_by_visitor.data.items())):
        try:
            partition, last_received = Session.peek_expiry(value)
        except CodecError:
            continue
        if partition in session_cutoff and last_received < session_cutoff[partition]:
            idle_sessions.append((partition, key))
        if n % _CHUNK == 0:
            await asyncio.sleep(0)
    for start in range(0, len(old_buckets), _CHUNK):
        await io.delete_many(minutes_by_site, old_buckets[start : start + _CHUNK])
    sink.forget(key for _, key in old_buckets)
    for start in range(0, len(idle_sessions), _CHUNK):
        await io.delete_many(sessions_by_visitor, idle_sessions[start : start + _CHUNK])
    if old_buckets or idle_sessions:
        log.info("Purged %d buckets and %d sessions", len(old_buckets), len(idle_sessions))
    return len(old_buckets), len(idle_sessions)


app.timer(interval=_settings.purge_interval_s)(purge_expired)


@app.page("/stream/stats/")
class StreamStats(View):
    """What this worker counted and archived, and how fresh (for tests and the benchmark)."""

    async def get(self, request: Request) -> Response:
        """`?since=<epoch ms>` adds the freshness of the events received from then on."""
        since = request.query.get("since")
        return self.json(
            {
                **STATS.as_dict(int(since) if since is not None else None),
                "owned_partitions": sorted(owned_partitions()),
                "archive_files": archiver.files_written,
                "archive_events": archiver.events_archived,
                "archive_read_back": archiver.events_read_back,
                "gc": GC_CLOCK.as_dict(),
            }
        )


# --- probes, /metrics, DogStatsD -------------------------------------------------------------
worker_probes.install(
    app,
    METRICS,
    topic=events_topic.get_topic_name(),
    stream_time_ms=lambda: STATS.stream_time,
    owned_partitions=owned_partitions,
)
METRICS.sink_pending.labels("influx").set_function(sink.pending)
METRICS.sink_pending.labels("archive").set_function(
    lambda: sum(len(buffer.rows) for buffer in archiver.buffers.values())
)
_dogstatsd = dogstatsd.bridge_from_settings(_settings, "footfall-worker", [METRICS.registry])


async def send_to_dogstatsd() -> None:
    """Send the worker's metrics to DogStatsD (FOOTFALL_DOGSTATSD_ENABLED), forever."""
    if _dogstatsd is not None:
        await _dogstatsd.run(_settings.dogstatsd_interval_s)


app.task(send_to_dogstatsd)
