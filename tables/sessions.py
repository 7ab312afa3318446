"""The state kept per site and visitor: the current session and the recent event ids.

Keyed like `events.raw` (footfall.events.kafka_key), so a visitor's record lives on the
partition that carries the visitor's events, and `offset` is the last of those events
applied to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Protocol

import orjson

from tables.codec import CodecError

_VERSION: Final = 1


class CountedSession(Protocol):
    """What is written of a session counting changed: this module's or footfall._core's."""

    def encode(self) -> bytes: ...


@dataclass(slots=True)
class Session:
    """A visitor's current session, and the event ids seen in the dedupe window."""

    partition: int
    offset: int
    start: int  # event_time of the first event, epoch ms: the session's bucket
    last: int  # latest event_time in the session
    events: int
    pageviews: int
    rate: int  # sample rate of the first event: what the session counts for
    # Values of the session-scoped dimensions taken from the first event
    # (footfall.metrics.SESSION_DIMENSIONS order, exit_page excluded).
    attributes: list[str]
    exit_page: str
    exit_time: int  # event_time of the pageview that set exit_page (-1: none yet)
    last_received: int  # newest received_at: the clock of the dedupe window and the purge
    ids: dict[str, int] = field(default_factory=dict)  # id -> received_at, oldest first

    @property
    def duration_ms(self) -> int:
        return self.last - self.start

    def remember(self, event_id: str, received_at: int, window_ms: int, max_ids: int) -> None:
        """Add an id; forget ids older than the window and the oldest beyond `max_ids`."""
        ids = self.ids
        ids[event_id] = received_at
        if received_at > self.last_received:
            self.last_received = received_at
        horizon = self.last_received - window_ms
        while len(ids) > max_ids:
            del ids[next(iter(ids))]
        while ids:
            oldest = next(iter(ids))
            if ids[oldest] >= horizon:
                break
            del ids[oldest]

    def encode(self) -> bytes:
        flat_ids: list[str | int] = []
        for event_id, received in self.ids.items():
            flat_ids.append(event_id)
            flat_ids.append(received)
        return orjson.dumps(
            [
                _VERSION,
                self.partition,
                self.offset,
                self.start,
                self.last,
                self.events,
                self.pageviews,
                self.rate,
                self.attributes,
                self.exit_page,
                self.exit_time,
                self.last_received,
                flat_ids,
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> Session:
        try:
            (
                version,
                partition,
                offset,
                start,
                last,
                events,
                pageviews,
                rate,
                attributes,
                exit_page,
                exit_time,
                last_received,
                flat_ids,
            ) = orjson.loads(data)
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            raise CodecError(f"bad session value: {exc}") from exc
        if version != _VERSION:
            raise CodecError(f"session value version {version}, expected {_VERSION}")
        ids = dict(zip(flat_ids[::2], flat_ids[1::2], strict=True))
        return cls(
            partition,
            offset,
            start,
            last,
            events,
            pageviews,
            rate,
            attributes,
            exit_page,
            exit_time,
            last_received,
            ids,
        )

    @staticmethod
    def peek_expiry(data: bytes) -> tuple[int, int]:
        """(partition, last_received) of an encoded session, for the purge."""
        session = Session.decode(data)
        return session.partition, session.last_received
