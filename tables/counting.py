"""Applying one partition's micro-batch of events to sessions and minute buckets.

Pure: records come in through `load_session` / `load_bucket` (encoded bytes, or None) and
leave as the `BatchResult`, so the same code runs under Faust (agents/count.py) and in
tests. The rules are footfall.metrics'; this module decides only how the stream layer
keeps them incrementally:

- A record (session or bucket) holds the source offset of the last event applied to it.
  An event whose offset is not above a record's offset is already in that record and is
  not applied to it again: a replay after a crash changes nothing (docs/stream.md).
- Event-scoped metrics go to the event's minute, session-scoped ones to the minute the
  session started, updated as the session grows: a second event undoes the bounce, the
  duration grows, the exit page row moves to the new exit page. A session's change to its
  start bucket is applied once per batch, whatever number of events it got (_PendingMove).
- Events arrive in offset order, which for a visitor is normally event_time order. An
  event earlier than its session's last event joins the session if it falls inside it,
  and otherwise counts in its own minute's event-scoped metrics only (it would belong to
  a session already closed or not known here); the batch layer recomputes such days.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from footfall.events import kafka_key
from footfall.metrics import (
    ABSENT_VALUE,
    COMBINATIONS,
    DIMENSION_FIELDS,
    EVENT_COMBINATIONS,
    EVENT_DIMENSIONS,
    PAGEVIEW,
    SESSION_COMBINATIONS,
    combination_value,
    counts_in_metrics,
    minute_of,
    revenue_units,
    starts_new_session,
)
from footfall.visitors import SketchConfig
from tables.bucket_cache import BucketCache
from tables.buckets import START_DIMENSIONS, Bucket, Contribution, CountedBucket, bucket_key
from tables.sessions import CountedSession, Session

START_FIELDS: Final = tuple(DIMENSION_FIELDS[d] for d in START_DIMENSIONS)
EXIT_FIELD: Final = DIMENSION_FIELDS["exit_page"]
# The fields of EVENT_ROWS' dimensions (the combinations follow them there).
EVENT_FIELDS: Final = tuple(DIMENSION_FIELDS[d] for d in EVENT_DIMENSIONS)
# Session combinations: the positions of their members in a session's attributes.
SESSION_COMBINATION_MEMBERS: Final = tuple(
    (name, tuple(START_DIMENSIONS.index(m) for m in COMBINATIONS[name]))
    for name in SESSION_COMBINATIONS
)
# Event combinations: per member, the event field (event-scoped members) or the position in
# the session's attributes (session-scoped ones, from the event's own fields when the
# event is in no session known here).
EVENT_COMBINATION_MEMBERS: Final = tuple(
    tuple(
        (DIMENSION_FIELDS[m], START_DIMENSIONS.index(m) if m in START_DIMENSIONS else -1)
        for m in COMBINATIONS[name]
    )
    for name in EVENT_COMBINATIONS
)

Loader = Callable[[bytes], bytes | None]


@dataclass(frozen=True, slots=True)
class CountingRules:
    """The settings counting depends on (footfall.settings)."""

    session_timeout_s: int = 1800
    dedupe_window_ms: int = 24 * 3_600_000
    dedupe_max_ids: int = 1000
    retention_ms: int = 74 * 3_600_000
    sketch: SketchConfig = field(default_factory=SketchConfig)


@dataclass(slots=True)
class BatchResult:
    """Records changed by a batch, to be written once each: buckets first (docs/stream.md)."""

    buckets: dict[bytes, CountedBucket] = field(default_factory=dict)
    sessions: dict[bytes, CountedSession] = field(default_factory=dict)
    applied: int = 0  # events newly counted (not bots, duplicates or replays)
    stream_time: int = 0  # newest received_at seen


def _text(value: Any) -> str:
    return value if isinstance(value, str) and value else ABSENT_VALUE


class BatchCounter:
    """Applies micro-batches of one partition's events; see the module docstring."""

    def __init__(
        self,
        rules: CountingRules,
        load_session: Loader,
        load_bucket: Loader,
        cache: BucketCache | None = None,
    ) -> None:
        self.rules = rules
        self._load_session = load_session
        self._load_bucket = load_bucket
        self._cache = cache
        self._timeout_s = rules.session_timeout_s
        # Records as the batches applied so far left them (None: no such session). Kept
        # from one apply to the next: a counter whose results are not written yet
        # (agents/count.py writes them per interval) must see its own changes.
        self._sessions: dict[bytes, Session | None] = {}
        self._buckets: dict[bytes, CountedBucket] = {}

    def apply(self, partition: int, batch: Iterable[tuple[int, Mapping[str, Any]]]) -> BatchResult:
        """Apply (offset, envelope) pairs, in offset order, of one partition.

        The result holds the records this batch changed. Applies after the first one read
        records through the loaders only if no earlier apply of this counter read them.
        """
        result = BatchResult()
        self._result = result
        self._moves: dict[bytes, _PendingMove] = {}
        for offset, event in batch:
            received = event["received_at"]
            if received > result.stream_time:
                result.stream_time = received
            if not counts_in_metrics(event["bot"]):
                continue
            self._apply_one(partition, offset, event)
        for move in self._moves.values():
            move.finish()
        return result

    # --- records ----------------------------------------------------------------------
    def _session(self, key: bytes) -> Session | None:
        if key in self._sessions:
            return self._sessions[key]
        raw = self._load_session(key)
        session = Session.decode(raw) if raw is not None else None
        self._sessions[key] = session
        return session

    def _bucket(self, key: bytes) -> CountedBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            raw = self._load_bucket(key)
            if self._cache is not None:
                bucket = self._cache.take(key, raw)
            if bucket is None:
                sketch = self.rules.sketch
                bucket = Bucket.decode(raw, sketch) if raw is not None else Bucket(sketch)
            self._buckets[key] = bucket
        return bucket

    def _bucket_at(
        self,
        touched: dict[bytes, CountedBucket | None],
        site: str,
        minute: int,
        partition: int,
        offset: int,
    ) -> CountedBucket | None:
        key = bucket_key(site, minute, partition)
        if key in touched:
            return touched[key]
        bucket = self._bucket(key)
        found = touched[key] = bucket if bucket.offset < offset else None
        return found

    # --- one event ------------------------------------------------------------------
    def _apply_one(self, partition: int, offset: int, event: Mapping[str, Any]) -> None:
        rules = self.rules
        site: str = event["site"]
        visitor: str = event["visitor"]
        event_time: int = event["event_time"]
        received: int = event["received_at"]
        minute = minute_of(event_time)
        if minute < received - rules.retention_ms:
            return  # its bucket may be purged already; never recreate a partial one
        skey = kafka_key(site, visitor)
        session = self._session(skey)
        if session is not None and session.offset >= offset:
            return  # replay: this event is in the session and in every bucket it touched
        event_id: str = event["id"]
        if session is not None and event_id in session.ids:
            return  # a retried send: counted once

        # Buckets this event changes, each decided once: None when it already holds the
        # event (written before the crash that caused this replay).
        touched: dict[bytes, CountedBucket | None] = {}
        bucket_at = self._bucket_at

        rate: int = event["sample_rate"]
        is_pageview = event["name"] == PAGEVIEW
        path = _text(event.get(EXIT_FIELD))
        event_bucket = bucket_at(touched, site, minute, partition, offset)
        # The session whose attributes the event's combination rows take (None: the
        # event's own fields).
        attributes: list[str] | None = None

        if session is None or (
            event_time >= session.last
            and starts_new_session(session.last, event_time, self._timeout_s)
        ):
            ids = session.ids if session is not None else {}
            previous = self._moves.pop(skey, None)
            if previous is not None:
                previous.finish()  # the session this one ends, before it is replaced
            session = Session(
                partition=partition,
                offset=offset,
                start=event_time,
                last=event_time,
                events=1,
                pageviews=int(is_pageview),
                rate=rate,
                attributes=[_text(event.get(f)) for f in START_FIELDS],
                exit_page=path if is_pageview else ABSENT_VALUE,
                exit_time=event_time if is_pageview else -1,
                last_received=received,
                ids=ids,
            )
            attributes = session.attributes
            start_bucket = bucket_at(touched, site, minute, partition, offset)
            if start_bucket is not None:
                self._moves[skey] = _PendingMove(start_bucket, None, session, visitor)
        elif event_time >= session.start:
            attributes = session.attributes
            start_bucket = bucket_at(touched, site, minute_of(session.start), partition, offset)
            if start_bucket is not None and skey not in self._moves:
                self._moves[skey] = _PendingMove(
                    start_bucket, _contribution(session), session, visitor
                )
            session.events += 1
            if event_time > session.last:
                session.last = event_time
            if is_pageview:
                session.pageviews += 1
                if event_time >= session.exit_time:
                    session.exit_page = path
                    session.exit_time = event_time
        # else: earlier than its session's start: event-scoped only (module docstring).
        if event_bucket is not None:
            self._add_event(event_bucket, event, visitor, rate, is_pageview, attributes)

        session.offset = offset
        session.remember(event_id, received, rules.dedupe_window_ms, rules.dedupe_max_ids)
        self._sessions[skey] = session
        self._result.sessions[skey] = session
        for key, bucket in touched.items():
            if bucket is not None:
                bucket.offset = offset
                self._result.buckets[key] = bucket
        self._result.applied += 1

    @staticmethod
    def _add_event(
        bucket: CountedBucket,
        event: Mapping[str, Any],
        visitor: str,
        rate: int,
        is_pageview: bool,
        attributes: list[str] | None,
    ) -> None:
        revenue = event.get("revenue")
        values = [_text(event.get(f)) for f in EVENT_FIELDS]
        for members in EVENT_COMBINATION_MEMBERS:
            combined = [
                _text(event.get(f)) if i < 0 or attributes is None else attributes[i]
                for f, i in members
            ]
            values.append(combination_value(combined))
        bucket.add_event(tuple(values), visitor, rate, is_pageview, revenue is not None)
        if revenue is not None:
            units = revenue_units(revenue["amount"]) * rate
            bucket.add_revenue(revenue["currency"], units)


class _PendingMove:
    """A session's change to its start bucket, applied once at the end of the batch.

    A session usually gets several events in a batch; moving its contribution at each
    would touch its dozen session rows every time, for the same net change. `before` is
    what the bucket held of the session when the batch first changed it (None: the session
    started in this batch). A start bucket that already held an event (a replay) holds
    every earlier one too, so the events applied to it are a tail of the batch's, and
    `before` is taken at the first of them.
    """

    __slots__ = ("before", "bucket", "session", "visitor")

    def __init__(
        self, bucket: CountedBucket, before: Contribution | None, session: Session, visitor: str
    ) -> None:
        self.bucket = bucket
        self.before = before
        self.session = session
        self.visitor = visitor

    def finish(self) -> None:
        self.bucket.move_session(self.before, _contribution(self.session), self.visitor)


def _contribution(session: Session) -> Contribution:
    rate = session.rate
    return (
        rate,
        rate if session.events == 1 else 0,
        rate * (session.last - session.start),
        (*session.attributes, *_combinations_of(session.attributes), session.exit_page),
    )


def _combinations_of(attributes: list[str]) -> Iterator[str]:
    for _, positions in SESSION_COMBINATION_MEMBERS:
        yield combination_value([attributes[i] for i in positions])
