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
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import fsspec
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from footfall.events import ENVELOPE_FIELDS, FieldKind

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


def to_table(rows: Sequence[tuple[int, int, Mapping[str, Any]]]) -> pa.Table:
    """(partition, offset, envelope) rows as an Arrow table of ARCHIVE_SCHEMA."""
    columns: dict[str, list[Any]] = {}
    for spec in ENVELOPE_FIELDS:
        values = [envelope.get(spec.name) for _, _, envelope in rows]
        if spec.kind == "props":
            values = [orjson.dumps(v).decode() if v is not None else None for v in values]
        columns[spec.name] = values
    columns["kafka_partition"] = [partition for partition, _, _ in rows]
    columns["kafka_offset"] = [offset for _, offset, _ in rows]
    return pa.Table.from_pydict(columns, schema=ARCHIVE_SCHEMA)


class ArchiveWriter:
    """Writes one partition's buffered events as one file per hour directory."""

    def __init__(self, url: str) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(url)
        protocols = self.fs.protocol
        names = {protocols} if isinstance(protocols, str) else set(protocols)
        self.renames = bool(names & _RENAMING_PROTOCOLS)

    def write(
        self, partition: int, rows: Sequence[tuple[int, int, Mapping[str, Any]]]
    ) -> list[str]:
        """Write (partition, offset, envelope) rows; return the paths of the files made."""
        by_hour: dict[int, list[tuple[int, int, Mapping[str, Any]]]] = defaultdict(list)
        for row in rows:
            by_hour[row[2]["event_time"] // HOUR_MS].append(row)  # a datetime per hour only
        paths = []
        for hour, hour_rows in sorted(by_hour.items()):
            directory = hour_dir(hour * HOUR_MS)
            name = file_name(partition, hour_rows[0][1], hour_rows[-1][1])
            paths.append(self._write_file(f"{self.root}/{directory}", name, to_table(hour_rows)))
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
