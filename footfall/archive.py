"""The raw event archive: hour-partitioned Parquet files under `archive_url` (any fsspec URL).

Layout, shared by the writer (agents/archive.py) and the batch layer that reads it:

    <archive_url>/dt=YYYY-MM-DD/hour=HH/part-p{partition}-o{first}-{last}.parquet

`dt` and `hour` are the UTC date and hour of the events' `event_time` (hive-style, so
Spark and pyarrow see them as partition columns); `partition`, `first`, `last` are the
`events.raw` partition and the first and last offsets of the events in the file. Columns:
the envelope fields of footfall.events in publishing order (`props` as a JSON object text,
`revenue` as a struct), then `kafka_partition` and `kafka_offset`. Bots are included,
flagged by `bot`.

A file appears whole or not at all: on filesystems with an atomic rename (local, HDFS) it
is written under a hidden temporary name (".part-...", which Spark and pyarrow skip) and
renamed; on object stores (s3://, gs://) a single PUT of the final key is already atomic,
so it is written there directly. The same offsets written again produce the same name, so
a replay overwrites rather than duplicates; an overlap between files with other offset
ranges is possible after a crash, and harmless, as readers drop duplicate event ids.

The writer takes each event as its record's JSON (`ArchiveRow`), not as the decoded
envelope, and Arrow's JSON reader turns a file's events into columns: in C++, without the
GIL, so the counting on the worker's event loop goes on meanwhile. pyarrow converting the
decoded envelopes' values instead holds the GIL throughout, and takes twice the time
(bench/archive.py); a buffered event takes 970 bytes as a row, 2,500 as a decoded envelope.
"""

from __future__ import annotations

import io
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import fsspec
import orjson
import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from footfall.events import ENVELOPE_FIELD_NAMES, ENVELOPE_FIELDS, FieldKind, encode_envelope

_TYPES: Final[dict[FieldKind, pa.DataType]] = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "props": pa.string(),  # a JSON object: its values mix strings, numbers and booleans
    "revenue": pa.struct([("amount", pa.float64()), ("currency", pa.string())]),
}
ARCHIVE_SCHEMA: Final = pa.schema(
    [pa.field(f.name, _TYPES[f.kind], nullable=f.nullable) for f in ENVELOPE_FIELDS]
    + [
        pa.field("kafka_partition", pa.int32(), nullable=False),
        pa.field("kafka_offset", pa.int64(), nullable=False),
    ]
)
HOUR_MS: Final = 3_600_000
# Filesystems whose rename is atomic; elsewhere the final key is written directly.
_RENAMING_PROTOCOLS: Final = frozenset({"file", "local", "hdfs", "viewfs"})


def hour_dir(event_time_ms: int) -> str:
    """`dt=YYYY-MM-DD/hour=HH` of an instant, UTC."""
    moment = datetime.fromtimestamp(event_time_ms / 1000, tz=UTC)
    return f"dt={moment:%Y-%m-%d}/hour={moment:%H}"


def file_name(partition: int, first_offset: int, last_offset: int) -> str:
    return f"part-p{partition}-o{first_offset}-{last_offset}.parquet"


(_PROPS_FIELD,) = (f.name for f in ENVELOPE_FIELDS if f.kind == "props")  # the one such field
# The columns Arrow's JSON reader reads straight from the records: not `props`, kept as its
# JSON text, which the reader cannot give, nor the Kafka coordinates.
_JSON_SCHEMA: Final = pa.schema(
    [f for f in ARCHIVE_SCHEMA if f.name in ENVELOPE_FIELD_NAMES and f.name != _PROPS_FIELD]
)
_JSON_PARSE_OPTIONS: Final = pa_json.ParseOptions(
    explicit_schema=_JSON_SCHEMA, unexpected_field_behavior="ignore"
)


# One event as the archive buffers it: (offset in its `events.raw` partition, event_time,
# its record's value: the envelope as one JSON object, the envelope's decoded `props`). The
# record's JSON rather than its decoded envelope, and a plain tuple rather than a NamedTuple
# (twice as slow to make): one is made per event on the worker's event loop.
ArchiveRow = tuple[int, int, bytes, Any]


def archive_row(offset: int, envelope: Mapping[str, Any], value: bytes | None = None) -> ArchiveRow:
    """The row of an event: `value` is its record's JSON (encoded from `envelope` if None)."""
    if value is None:
        value = encode_envelope(dict(envelope))
    return (offset, envelope["event_time"], value, envelope.get(_PROPS_FIELD))


def load_conversions() -> None:
    """Import now what pyarrow imports on its first conversion of Python values.

    That is pandas: 0.3-0.6 s holding the GIL, which in the middle of a worker's first
    archive write would stall its event loop (and counting) as long.
    """
    pa.array([None], pa.string())


def to_table(partition: int, rows: Sequence[ArchiveRow]) -> pa.Table:
    """A partition's rows as an Arrow table of ARCHIVE_SCHEMA, in the order given."""
    try:
        read = _read_json(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Arrow's reader refuses some values the gateway never publishes but another
        # producer might, and that pyarrow's conversion of Python values coerces (a float
        # where an integer belongs): such a file's columns come from the decoded envelopes.
        read = _from_envelopes([orjson.loads(value) for _, _, value, _ in rows])
    props = [orjson.dumps(p).decode() if p is not None else None for _, _, _, p in rows]
    columns: dict[str, Any] = {}
    for spec in ENVELOPE_FIELDS:
        if spec.name == _PROPS_FIELD:
            columns[spec.name] = pa.array(props, pa.string())
        else:
            columns[spec.name] = read.column(spec.name)
    columns["kafka_partition"] = pa.array([partition] * len(rows), pa.int32())
    columns["kafka_offset"] = pa.array([offset for offset, _, _, _ in rows], pa.int64())
    return pa.Table.from_pydict(columns, schema=ARCHIVE_SCHEMA)


def _read_json(rows: Sequence[ArchiveRow]) -> pa.Table:
    """The JSON columns of `rows`, parsed by Arrow from the records' values (one per line).

    A raw line break in valid JSON is whitespace (inside a string it would be escaped), and
    the reader takes one as the end of a value: it becomes a space.
    """
    lines = b"\n".join(_one_line(value) for _, _, value, _ in rows)
    table = pa_json.read_json(io.BytesIO(lines), parse_options=_JSON_PARSE_OPTIONS)
    if table.num_rows != len(rows):
        # The columns must line up with the rows' offsets and props; one JSON object per
        # line always does, and anything else takes the other path.
        raise pa.ArrowInvalid(f"{table.num_rows} rows read from {len(rows)} events")
    return table


def _one_line(value: bytes) -> bytes:
    if b"\n" in value or b"\r" in value:
        return value.replace(b"\n", b" ").replace(b"\r", b" ")
    return value


def _from_envelopes(envelopes: Sequence[Mapping[str, Any]]) -> pa.Table:
    """The JSON columns of decoded envelopes, converted by pyarrow value by value."""
    columns = {f.name: [envelope.get(f.name) for envelope in envelopes] for f in _JSON_SCHEMA}
    return pa.Table.from_pydict(columns, schema=_JSON_SCHEMA)


class ArchiveWriter:
    """Writes one partition's buffered events as one file per hour directory."""

    def __init__(self, url: str) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(url)
        protocols = self.fs.protocol
        names = {protocols} if isinstance(protocols, str) else set(protocols)
        self.renames = bool(names & _RENAMING_PROTOCOLS)

    def write(self, partition: int, rows: Sequence[ArchiveRow]) -> list[str]:
        """Write a partition's rows (offset order); return the paths of the files made."""
        by_hour: dict[int, list[ArchiveRow]] = defaultdict(list)
        for row in rows:
            by_hour[row[1] // HOUR_MS].append(row)  # by event_time; a datetime per hour only
        paths = []
        for hour, hour_rows in sorted(by_hour.items()):
            directory = hour_dir(hour * HOUR_MS)
            name = file_name(partition, hour_rows[0][0], hour_rows[-1][0])
            table = to_table(partition, hour_rows)
            paths.append(self._write_file(f"{self.root}/{directory}", name, table))
        return paths

    def _write_file(self, directory: str, name: str, table: pa.Table) -> str:
        final = f"{directory}/{name}"
        self.fs.makedirs(directory, exist_ok=True)
        target = f"{directory}/.{name}.{uuid.uuid4().hex}.tmp" if self.renames else final
        with self.fs.open(target, "wb") as handle:
            pq.write_table(table, handle, compression="zstd")
        if self.renames:
            self.fs.mv(target, final)
        return final
