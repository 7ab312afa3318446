"""HBase reads survive the Thrift server closing an idle connection: one retry, anew."""

from __future__ import annotations

from typing import Any

import pytest

from footfall.settings import Settings
from footfall.visitors import SketchConfig
from web.reports.history import HBaseSource, SourceError


class Store:
    def __init__(self, fails: int) -> None:
        self.fails = fails
        self.closed = False

    def read(self) -> str:
        if self.fails:
            self.fails -= 1
            raise BrokenPipeError("idle connection closed by the Thrift server")
        return "rows"

    def close(self) -> None:
        self.closed = True


class Source(HBaseSource):
    """An HBaseSource whose connections are `Store`s failing `fails` times in all."""

    def __init__(self, fails: int) -> None:
        super().__init__(Settings(), SketchConfig())
        self.fails = fails
        self.opened: list[Store] = []

    def _batch_store(self) -> Any:
        if self._store is None:
            self._store = Store(1 if self.fails > 0 else 0)
            self.fails -= 1
            self.opened.append(self._store)
        return self._store


async def test_a_dead_connection_is_replaced_and_the_read_done_again() -> None:
    source = Source(fails=1)
    assert await source._call(lambda store: store.read()) == "rows"
    assert len(source.opened) == 2
    assert source.opened[0].closed


async def test_a_second_failure_is_reported() -> None:
    source = Source(fails=2)
    with pytest.raises(SourceError, match="BrokenPipeError"):
        await source._call(lambda store: store.read())
    assert len(source.opened) == 2
    assert all(store.closed for store in source.opened)
