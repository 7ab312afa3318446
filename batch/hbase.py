"""The batch layer's HBase tables: names, row keys, cell encodings, deletes and writes.

Four tables (each name after `settings.hbase_table_prefix` + "_"; docs/batch.md says why):

| table | row key | cells |
|---|---|---|
| batch_minutes | `site|minute` | c:<counter>, c:sample_rate_max, c:revenue_<CUR>; v:<rate> |
| batch_breakdowns | `site|dimension|minute|value` | c:<counter> of the dimension's kind; v:<rate> |
| batch_days | `site|YYYY-MM-DD`, `*|YYYY-MM-DD` | d:state, d:cutoff, d:read, ... |
| batch_day_sites | `YYYY-MM-DD|site` | d:seen |

`minute` is the minute's start in epoch ms, written as 13 decimal digits (fixed width, so
text order is time order until the year 2286). Site ids cannot hold `|` (events.md), and
`|` sorts above every character a site id can hold, so `site|` is a prefix of that site's
rows only. Integers are 8-byte big-endian signed (HBase's own `Bytes.toBytes(long)`, so
the shell and `counter_get` read them); sketches are DataSketches HLL images in compact
form, one per sample rate (`v:1`, `v:4`, ...: see footfall/visitors.py).

Every write of a day carries explicit cell timestamps (`DayVersion`): deletes at T, rows
at T + 1, so the new rows are never hidden by the delete markers of their own rewrite
(HBase masks a put whose timestamp is not above a delete's).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import datasketches as ds
import happybase
import pyarrow as pa

from footfall.metrics import COMBINATIONS, DIMENSIONS
from footfall.settings import Settings

MINUTES: Final = "batch_minutes"
BREAKDOWNS: Final = "batch_breakdowns"
DAYS: Final = "batch_days"
DAY_SITES: Final = "batch_day_sites"
TABLE_PREFIX_SEPARATOR: Final = "_"

COUNTERS_FAMILY: Final = b"c"
SKETCHES_FAMILY: Final = b"v"
DAY_FAMILY: Final = b"d"
_ONE_VERSION: Final = {"max_versions": 1}
FAMILIES: Final[dict[str, dict[str, dict[str, int]]]] = {
    MINUTES: {"c": _ONE_VERSION, "v": _ONE_VERSION},
    BREAKDOWNS: {"c": _ONE_VERSION, "v": _ONE_VERSION},
    DAYS: {"d": _ONE_VERSION},
    DAY_SITES: {"d": _ONE_VERSION},
}

SEP: Final = "|"
ALL_SITES: Final = "*"  # not a valid site id: the key of markers that cover every site
MINUTE_DIGITS: Final = 13
_KEY_ONLY: Final = b"KeyOnlyFilter() AND FirstKeyOnlyFilter()"
_SCAN_BATCH: Final = 1000


# --- connection --------------------------------------------------------------------------
def connect(settings: Settings, timeout_ms: int = 120_000) -> happybase.Connection:
    """A Thrift connection whose table names get `settings.hbase_table_prefix`."""
    return happybase.Connection(
        host=settings.hbase_host,
        port=settings.hbase_port,
        timeout=timeout_ms,
        table_prefix=settings.hbase_table_prefix,
        table_prefix_separator=TABLE_PREFIX_SEPARATOR,
    )


def ensure_tables(connection: happybase.Connection) -> None:
    """Create the tables that do not exist yet."""
    prefix = f"{connection.table_prefix.decode()}{TABLE_PREFIX_SEPARATOR}".encode()
    existing = {name.removeprefix(prefix).decode() for name in connection.tables()}
    for name, families in FAMILIES.items():
        if name not in existing:
            connection.create_table(name, families)


def drop_tables(connection: happybase.Connection) -> None:
    """Delete every batch table (tests and `reset`-style tooling only)."""
    prefix = f"{connection.table_prefix.decode()}{TABLE_PREFIX_SEPARATOR}".encode()
    existing = {name.removeprefix(prefix).decode() for name in connection.tables()}
    for name in FAMILIES:
        if name in existing:
            connection.delete_table(name, disable=True)


# --- row keys ------------------------------------------------------------------------------
def minute_token(minute_ms: int) -> str:
    return f"{minute_ms:0{MINUTE_DIGITS}d}"


def minute_key(site: str, minute_ms: int) -> bytes:
    return f"{site}{SEP}{minute_token(minute_ms)}".encode()


def breakdown_key(site: str, dimension: str, minute_ms: int, value: str = "") -> bytes:
    """`site|dimension|minute|value`; with value "" it is the first key of that minute."""
    return f"{site}{SEP}{dimension}{SEP}{minute_token(minute_ms)}{SEP}{value}".encode()


def parse_minute_key(key: bytes) -> tuple[str, int]:
    site, minute = key.decode().split(SEP)
    return site, int(minute)


def parse_breakdown_key(key: bytes) -> tuple[str, str, int, str]:
    """(site, dimension, minute, value); the value may itself hold `|`."""
    site, dimension, minute, value = key.decode().split(SEP, 3)
    return site, dimension, int(minute), value


def day_key(site: str, day: str) -> bytes:
    return f"{site}{SEP}{day}".encode()


def day_site_key(day: str, site: str) -> bytes:
    return f"{day}{SEP}{site}".encode()


# --- cells -----------------------------------------------------------------------------------
def encode_int(n: int) -> bytes:
    return int(n).to_bytes(8, "big", signed=True)


def decode_int(data: bytes) -> int:
    return int.from_bytes(data, "big", signed=True)


def compact_sketch(image: bytes) -> bytes:
    """A sketch image (Spark's updatable form or any other) in compact form."""
    return bytes(ds.hll_sketch.deserialize(bytes(image)).serialize_compact())


def encode_cells(counters: Mapping[str, int], sketches: Mapping[int, bytes]) -> dict[bytes, bytes]:
    """The cells of a minutes or breakdowns row."""
    cells = {COUNTERS_FAMILY + b":" + name.encode(): encode_int(n) for name, n in counters.items()}
    for rate, image in sketches.items():
        cells[SKETCHES_FAMILY + b":" + str(int(rate)).encode()] = compact_sketch(image)
    return cells


def decode_cells(cells: Mapping[bytes, bytes]) -> tuple[dict[str, int], dict[int, bytes]]:
    """(counters, rate -> sketch image) of a minutes or breakdowns row."""
    counters: dict[str, int] = {}
    sketches: dict[int, bytes] = {}
    for column, value in cells.items():
        family, _, qualifier = column.partition(b":")
        if family == COUNTERS_FAMILY:
            counters[qualifier.decode()] = decode_int(value)
        elif family == SKETCHES_FAMILY:
            sketches[int(qualifier)] = value
    return counters, sketches


# --- a day's rows ------------------------------------------------------------------------------
def site_day_ranges(site: str, start_ms: int, end_ms: int) -> list[tuple[str, bytes, bytes]]:
    """(table, first key, stop key) of every row of a site in [start_ms, end_ms)."""
    ranges = [(MINUTES, minute_key(site, start_ms), minute_key(site, end_ms))]
    # Combination rows are breakdown rows too: a rerun must not leave a value it no longer has.
    for dimension in (*DIMENSIONS, *COMBINATIONS):
        ranges.append(
            (
                BREAKDOWNS,
                breakdown_key(site, dimension, start_ms),
                breakdown_key(site, dimension, end_ms),
            )
        )
    return ranges


def scan_keys(table: happybase.Table, start: bytes, stop: bytes) -> Iterator[bytes]:
    for key, _ in table.scan(
        row_start=start, row_stop=stop, filter=_KEY_ONLY, batch_size=_SCAN_BATCH
    ):
        yield key


def delete_site_day(
    connection: happybase.Connection, site: str, start_ms: int, end_ms: int, timestamp: int
) -> int:
    """Delete every cell of a site's rows in [start_ms, end_ms) up to `timestamp`; count rows."""
    deleted = 0
    for name, start, stop in site_day_ranges(site, start_ms, end_ms):
        table = connection.table(name)
        with table.batch(timestamp=timestamp, batch_size=_SCAN_BATCH) as batch:
            for key in scan_keys(table, start, stop):
                batch.delete(key)
                deleted += 1
    return deleted


@dataclass(frozen=True, slots=True)
class RowTarget:
    """Where and at which cell timestamp an executor writes rows (picklable for Spark)."""

    host: str
    port: int
    table_prefix: str
    timestamp: int
    rows_per_write: int = 1000

    @classmethod
    def of(cls, settings: Settings, timestamp: int) -> RowTarget:
        return cls(
            settings.hbase_host,
            settings.hbase_port,
            settings.hbase_table_prefix,
            timestamp,
            settings.batch_hbase_rows_per_write,
        )


def row_key(table: str, row: Any) -> bytes:
    """The key of a row of batch.compute's `rows` frame."""
    if table == MINUTES:
        return minute_key(row["site"], row["minute"])
    return breakdown_key(row["site"], row["dimension"], row["minute"], row["value"])


def write_partition(target: RowTarget, rows: Iterable[Any]) -> Iterator[int]:
    """`mapPartitions` body: put one partition of batch.compute's `rows`, yield the count."""
    yield write_rows(target, rows)


def write_arrow(target: RowTarget, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """`mapInArrow` body: put one partition of batch.compute's `rows`, yield the count.

    Arrow batches rather than `rdd.mapPartitions`: pickling millions of Spark Rows to the
    Python worker cost more than encoding and sending them (docs/batch.md, Performance).
    """
    yield pa.RecordBatch.from_pydict({"written": [write_rows(target, arrow_rows(batches))]})


def arrow_rows(batches: Iterable[pa.RecordBatch]) -> Iterator[dict[str, Any]]:
    """The rows of Arrow batches as dicts (map columns as dicts, a null map empty),
    converted column by column: far cheaper than Arrow's own row-wise `to_pylist`."""
    for batch in batches:
        names = batch.schema.names
        columns = [
            _maps(column) if isinstance(column, pa.MapArray) else column.to_pylist()
            for column in batch.columns
        ]
        for values in zip(*columns, strict=True):
            yield dict(zip(names, values, strict=True))


def _maps(column: pa.MapArray) -> list[dict[Any, Any]]:
    # offsets index the unsliced keys and items (pyarrow's ListArray convention)
    keys, items = column.keys.to_pylist(), column.items.to_pylist()
    bounds = column.offsets.to_pylist()
    return [
        dict(zip(keys[lo:hi], items[lo:hi], strict=True)) for lo, hi in itertools.pairwise(bounds)
    ]


def write_rows(target: RowTarget, rows: Iterable[Any]) -> int:
    """Put rows of batch.compute's `rows` frame (Spark Rows or dicts), `rows_per_write`
    rows per Thrift call (happybase's own `batch_size` counts cells, not rows)."""
    connection = happybase.Connection(
        host=target.host,
        port=target.port,
        timeout=120_000,
        table_prefix=target.table_prefix,
        table_prefix_separator=TABLE_PREFIX_SEPARATOR,
    )
    written = 0
    try:
        batches: dict[str, happybase.Batch] = {}
        pending = 0
        for row in rows:
            table = row["table"]
            batch = batches.get(table)
            if batch is None:
                batch = batches[table] = connection.table(table).batch(timestamp=target.timestamp)
            batch.put(row_key(table, row), encode_cells(row["counters"], row["sketches"]))
            written += 1
            pending += 1
            if pending >= target.rows_per_write:
                for each in batches.values():
                    each.send()
                pending = 0
        for batch in batches.values():
            batch.send()
    finally:
        connection.close()
    return written
