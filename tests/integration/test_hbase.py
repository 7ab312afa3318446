"""HBase through its Thrift1 server, as the batch layer uses it (needs `footfall stack up`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import happybase
import pytest

from footfall.settings import get_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def connection() -> Iterator[happybase.Connection]:
    settings = get_settings()
    conn = happybase.Connection(
        host=settings.hbase_host, port=settings.hbase_port, timeout=30_000, autoconnect=False
    )
    conn.open()  # no skip: a missing HBase is a failure of an integration run
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def table_name(connection: happybase.Connection) -> Iterator[str]:
    name = f"{get_settings().hbase_table_prefix}_it_{uuid.uuid4().hex[:12]}"
    connection.create_table(name, {"d": {"max_versions": 1}, "s": {}})
    try:
        yield name
    finally:
        if name.encode() in connection.tables():
            connection.delete_table(name, disable=True)


ROWS = {
    b"site-a|2024-05-01T10:00": {b"d:views": b"3", b"d:visitors": b"2"},
    b"site-a|2024-05-01T10:01": {b"d:views": b"5", b"d:visitors": b"4"},
    b"site-a|2024-05-01T10:02": {b"d:views": b"1", b"d:visitors": b"1"},
    b"site-ab|2024-05-01T10:00": {b"d:views": b"9"},  # shares the prefix "site-a" only
    b"site-b|2024-05-01T10:00": {b"d:views": b"7", b"s:hll": b"\x00\x01\xff"},
}


def test_put_get_scan_delete(connection: happybase.Connection, table_name: str) -> None:
    assert table_name.encode() in connection.tables()
    table = connection.table(table_name)

    with table.batch() as batch:
        for row, data in ROWS.items():
            batch.put(row, data)

    # get: exact cells back, binary values intact, a missing row is empty
    assert table.row(b"site-a|2024-05-01T10:01") == ROWS[b"site-a|2024-05-01T10:01"]
    assert table.row(b"site-b|2024-05-01T10:00", columns=[b"s:hll"]) == {b"s:hll": b"\x00\x01\xff"}
    assert table.row(b"site-c|2024-05-01T10:00") == {}

    # scan by row prefix: the separator keeps site-ab out, rows come back sorted
    prefixed = list(table.scan(row_prefix=b"site-a|"))
    assert [row for row, _ in prefixed] == sorted(k for k in ROWS if k.startswith(b"site-a|"))
    assert dict(prefixed) == {k: v for k, v in ROWS.items() if k.startswith(b"site-a|")}

    # scan by row range: start inclusive, stop exclusive
    ranged = list(
        table.scan(
            row_start=b"site-a|2024-05-01T10:01",
            row_stop=b"site-a|2024-05-01T10:02",
            columns=[b"d:views"],
        )
    )
    assert ranged == [(b"site-a|2024-05-01T10:01", {b"d:views": b"5"})]

    # counters: what the batch layer's truth tables use
    assert table.counter_inc(b"site-b|2024-05-01T10:00", b"d:hits", 5) == 5
    assert table.counter_inc(b"site-b|2024-05-01T10:00", b"d:hits", 2) == 7
    assert table.counter_get(b"site-b|2024-05-01T10:00", b"d:hits") == 7

    # delete a row, then the table
    table.delete(b"site-a|2024-05-01T10:00")
    assert table.row(b"site-a|2024-05-01T10:00") == {}
    assert len(list(table.scan(row_prefix=b"site-a|"))) == 2

    connection.delete_table(table_name, disable=True)
    assert table_name.encode() not in connection.tables()
