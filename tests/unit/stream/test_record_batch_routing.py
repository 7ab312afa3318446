"""footfall.record_batches: a batch waits until every reader of its topic has an actor."""

from __future__ import annotations

from types import SimpleNamespace

from faust.types import TP

import agents.archive  # noqa: F401 - registers the archive agent beside the counting one
from agents.topics import events_topic
from footfall.app import app
from footfall.record_batches import readers_of, subscribed


def test_both_agents_read_the_events_topic_and_nothing_else() -> None:
    topic = events_topic.get_topic_name()
    assert readers_of(app.agents.values(), topic) == 2
    assert readers_of(app.agents.values(), "some.other.topic") == 0


def test_a_partition_counts_the_channels_that_take_it() -> None:
    tp = TP("events", 3)
    channels = [
        SimpleNamespace(active_partitions={tp}),
        SimpleNamespace(active_partitions={TP("events", 2)}),
        SimpleNamespace(active_partitions=None, topics=("other",)),
    ]
    assert subscribed(channels, tp) == 1
    # A channel that is not an isolated actor's takes every partition of its topics.
    channels.append(SimpleNamespace(active_partitions=None, topics=("events",)))
    assert subscribed(channels, tp) == 2
    channels.append(SimpleNamespace(active_partitions={tp, TP("events", 0)}))
    assert subscribed(channels, tp) == 3
