"""Crash and replay at the level of the counting rules: any crash point, same numbers.

A worker's writes reach two changelog partitions (buckets, sessions), each an ordered log
of which a crash keeps some prefix. The commit point says which events are replayed; the
worker writes a batch's buckets, waits for them, then its sessions. These tests crash a
run at random places allowed by that protocol, rebuild the tables from the kept prefixes
(as recovery does), replay from the committed offset with other batch sizes, and check
the result against the reference.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from tables.buckets import Bucket, parse_bucket_key
from tables.counting import BatchCounter, CountingRules
from tests.reference import compare, merge_buckets, reference
from tests.workload import workload

RULES = CountingRules()
Write = tuple[bytes, bytes]


def run(
    events: list[tuple[int, dict[str, Any]]],
    sessions: dict[bytes, bytes],
    buckets: dict[bytes, bytes],
    rng: random.Random,
) -> list[tuple[int, list[Write], list[Write]]]:
    """Process events in random batches; return (first offset, bucket writes, session writes)."""
    log = []
    i = 0
    while i < len(events):
        size = rng.randint(1, 300)
        batch = events[i : i + size]
        result = BatchCounter(RULES, sessions.get, buckets.get).apply(0, batch)
        bucket_writes = [(k, b.encode()) for k, b in result.buckets.items()]
        session_writes = [(k, s.encode()) for k, s in result.sessions.items()]
        buckets.update(bucket_writes)
        sessions.update(session_writes)
        log.append((batch[0][0], bucket_writes, session_writes))
        i += size
    return log


def check(buckets: dict[bytes, bytes], events: list[dict[str, Any]]) -> list[str]:
    decoded = {parse_bucket_key(k): Bucket.decode(v, RULES.sketch) for k, v in buckets.items()}
    return compare(merge_buckets(decoded), reference(events), tolerance=0.02)


@pytest.mark.parametrize("seed", range(12))
def test_any_crash_point_then_replay_gives_the_uninterrupted_numbers(seed: int) -> None:
    rng = random.Random(seed)
    events = workload(1200, seed=100 + seed)
    offsets = list(enumerate(events))
    log = run(offsets, {}, {}, rng)

    commit_batch = rng.randrange(len(log))  # batches before it are committed, hence durable
    bucket_log = [w for _, writes, _ in log for w in writes]
    done_buckets = sum(len(writes) for _, writes, _ in log[:commit_batch])
    kept_buckets = rng.randint(done_buckets, len(bucket_log))
    # A batch's sessions are sent only once all its buckets are in: the sessions log may
    # hold batch j's sessions only if the buckets prefix covers batch j.
    covered = 0
    boundary = 0
    for j, (_, writes, _) in enumerate(log):
        boundary += len(writes)
        if boundary <= kept_buckets:
            covered = j + 1
    session_log = [w for _, _, writes in log[: max(covered, commit_batch)] for w in writes]
    done_sessions = sum(len(writes) for _, _, writes in log[:commit_batch])
    kept_sessions = rng.randint(done_sessions, len(session_log))

    recovered_buckets = dict(bucket_log[:kept_buckets])
    recovered_sessions = dict(session_log[:kept_sessions])
    replay_from = log[commit_batch][0]
    run(offsets[replay_from:], recovered_sessions, recovered_buckets, rng)
    assert check(recovered_buckets, events) == []


def test_replaying_everything_again_changes_no_byte() -> None:
    rng = random.Random(1)
    events = list(enumerate(workload(900, seed=2)))
    sessions: dict[bytes, bytes] = {}
    buckets: dict[bytes, bytes] = {}
    run(events, sessions, buckets, rng)
    before = (dict(sessions), dict(buckets))
    run(events, sessions, buckets, rng)
    assert (sessions, buckets) == before
