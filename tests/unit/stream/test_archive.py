"""The raw archive's files: layout, names, schema, atomic appearance."""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as pads

from footfall.archive import ARCHIVE_SCHEMA, ArchiveWriter, file_name, hour_dir
from footfall.events import ENVELOPE_FIELD_NAMES
from tests.reference import envelope

HOUR = 3_600_000
T0 = 1_764_028_800_000  # 2025-11-25T00:00:00Z


def test_layout_is_hive_style_by_utc_hour_of_event_time() -> None:
    assert hour_dir(T0) == "dt=2025-11-25/hour=00"
    assert hour_dir(T0 - 1) == "dt=2025-11-24/hour=23"
    assert file_name(3, 10, 99) == "part-p3-o10-99.parquet"


def test_schema_is_the_envelope_then_kafka_coordinates() -> None:
    assert ARCHIVE_SCHEMA.names == [*ENVELOPE_FIELD_NAMES, "kafka_partition", "kafka_offset"]


def test_events_are_written_per_hour_with_bots_and_no_temporary_files(tmp_path: Path) -> None:
    events = [
        envelope("shop", "v1", T0 - 10_000, path="/a"),
        envelope("shop", "bot", T0 - 5_000, bot=True, device="bot"),
        envelope("shop", "v1", T0 + 10_000, name="purchase", revenue=(9.5, "EUR")),
    ]
    events[0]["props"] = {"plan": "pro", "seats": 3.0, "trial": False}
    paths = ArchiveWriter(str(tmp_path)).write(2, [(2, 40 + i, e) for i, e in enumerate(events)])
    assert paths == [
        f"{tmp_path}/dt=2025-11-24/hour=23/part-p2-o40-41.parquet",
        f"{tmp_path}/dt=2025-11-25/hour=00/part-p2-o42-42.parquet",
    ]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "part-p2-o40-41.parquet",
        "part-p2-o42-42.parquet",
    ]
    table = pads.dataset(tmp_path, format="parquet", partitioning="hive").to_table()
    rows = sorted(table.to_pylist(), key=lambda r: r["kafka_offset"])
    assert [r["bot"] for r in rows] == [False, True, False]
    assert rows[0]["props"] == '{"plan":"pro","seats":3.0,"trial":false}'
    assert rows[2]["revenue"] == {"amount": 9.5, "currency": "EUR"}
    assert (rows[2]["dt"], rows[2]["hour"]) == ("2025-11-25", 0)


def test_writing_the_same_offsets_again_overwrites(tmp_path: Path) -> None:
    writer = ArchiveWriter(str(tmp_path))
    rows = [(0, 7, envelope("shop", "v", T0))]
    writer.write(0, rows)
    writer.write(0, rows)
    assert len(list(tmp_path.rglob("*.parquet"))) == 1
