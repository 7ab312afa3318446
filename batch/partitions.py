"""Rows of a Spark partition as plain dicts, for the writers run on executors.

The writers get their partitions through `DataFrame.mapInArrow` (Arrow record batches),
not `foreachPartition`: Spark's pickled `Row`s cost about 100 us each with map columns,
which made the Python side of a write the slowest step of the job; Arrow columns turned
into lists cost a few.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

import pyarrow as pa

#: The schema of what a writer yields back: how many rows it wrote.
WRITTEN_SCHEMA: Final = "written long"


def arrow_rows(batches: Iterable[pa.RecordBatch]) -> Iterator[dict[str, Any]]:
    """Each row of the batches as {column: value}; map columns become dicts."""
    for batch in batches:
        maps = {f.name for f in batch.schema if pa.types.is_map(f.type)}
        columns = batch.to_pydict()
        for name in maps:
            columns[name] = [dict(v) if v is not None else None for v in columns[name]]
        names = list(columns)
        for values in zip(*(columns[n] for n in names), strict=True):
            yield dict(zip(names, values, strict=True))


def written(count: int) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {"written": [count]}, schema=pa.schema([("written", pa.int64())])
    )
