"""footfall.collector: no collection inside a batch, its survivors frozen, thaws collect cycles."""

from __future__ import annotations

import gc
import weakref

from footfall.collector import Thaws, paused


class Node:
    """An object that can be part of a reference cycle and be weakly referenced."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_what_a_batch_leaves_is_frozen_and_a_thaw_collects_its_cycles() -> None:
    gc.unfreeze()
    with paused():
        assert not gc.isenabled()
        alive = Node()
        garbage = cycle()
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
    assert not [o for o in gc.get_objects() if isinstance(o, Node)]  # out of the generations
    gc.collect()
    assert garbage() is not None  # a frozen cycle waits for the thaw...

    thaws = Thaws()
    thaws.thaw(now=0.0)
    assert garbage() is None  # ...which collects it
    assert alive.other is None  # objects still referenced are untouched (and frozen again)
    assert gc.get_freeze_count() > 0
    assert thaws.live_after_last > 0


def test_thaws_come_when_the_frozen_objects_grew_by_a_quarter_or_time_is_up() -> None:
    gc.unfreeze()
    thaws = Thaws(growth=0.25, max_interval_s=600.0)
    assert not thaws.maybe_thaw(now=999.0)  # the first check only takes the base
    assert thaws.thaws == 0
    thaws.thaw(now=1000.0)
    live = thaws.live_after_last
    assert not thaws.maybe_thaw(now=1001.0)
    with paused():
        kept = [Node() for _ in range(live // 4 + 100)]
    assert thaws.maybe_thaw(now=1002.0)  # grew by more than a quarter
    assert thaws.thaws == 2
    assert not thaws.maybe_thaw(now=1003.0)
    assert thaws.maybe_thaw(now=1002.0 + 600.0)  # nothing grew, but ten minutes passed
    assert len(kept) > 0


def test_a_collector_disabled_by_someone_else_stays_disabled_and_nothing_is_frozen() -> None:
    gc.unfreeze()
    gc.disable()
    try:
        with paused():
            pass
        assert not gc.isenabled()
        assert gc.get_freeze_count() == 0
    finally:
        gc.enable()
