"""The raw archive's files: layout, names, schema, atomic appearance, columns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from footfall import archive
from footfall.archive import ARCHIVE_SCHEMA, ArchiveWriter, archive_row, file_name, hour_dir
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
    rows = [archive_row(40 + i, e) for i, e in enumerate(events)]
    paths = ArchiveWriter(str(tmp_path)).write(2, rows)
    assert paths == [
        f"{tmp_path}/dt=2025-11-24/hour=23/part-p2-o40-41.parquet",
        f"{tmp_path}/dt=2025-11-25/hour=00/part-p2-o42-42.parquet",
    ]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "part-p2-o40-41.parquet",
        "part-p2-o42-42.parquet",
    ]
    table = pads.dataset(tmp_path, format="parquet", partitioning="hive").to_table()
    read = sorted(table.to_pylist(), key=lambda r: r["kafka_offset"])
    assert [r["bot"] for r in read] == [False, True, False]
    assert read[0]["props"] == '{"plan":"pro","seats":3.0,"trial":false}'
    assert read[2]["revenue"] == {"amount": 9.5, "currency": "EUR"}
    assert (read[2]["dt"], read[2]["hour"]) == ("2025-11-25", 0)


def test_writing_the_same_offsets_again_overwrites(tmp_path: Path) -> None:
    writer = ArchiveWriter(str(tmp_path))
    rows = [archive_row(7, envelope("shop", "v", T0))]
    writer.write(0, rows)
    writer.write(0, rows)
    assert len(list(tmp_path.rglob("*.parquet"))) == 1


def _edge_envelopes() -> list[dict[str, Any]]:
    """Envelopes whose every column takes a value Arrow's reader could get wrong."""
    plain = envelope("shop", "v1", T0)
    unicode = envelope("shöp", "v\u00e9", T0 + 1, path="/caf\u00e9/\u65e5\u672c")
    unicode["title"] = 'quote " backslash \\ tab \t nul \u0000 line sep \u2028 emoji \U0001f600'
    unicode["props"] = {"nested": {"a": [1, 2.5, None, True]}, "é": "x\ny"}
    sparse = dict.fromkeys(ENVELOPE_FIELD_NAMES)  # every optional field null
    sparse.update(envelope("shop", "v2", T0 + 2, path=None, name="signup"))
    sparse.update(url=None, referrer=None, title=None, screen=None, lang=None, ts=None)
    whole_amount = envelope("shop", "v3", T0 + 3, name="purchase", revenue=(12.0, "EUR"))
    whole_amount["revenue"] = {"amount": 12, "currency": "EUR"}  # an integer in the JSON
    extra = envelope("shop", "v4", T0 + 4) | {"not_a_field": [1, 2]}
    missing = {k: v for k, v in envelope("shop", "v5", T0 + 5).items() if k != "utm_medium"}
    return [plain, unicode, sparse, whole_amount, extra, missing]


def _by_envelopes(partition: int, events: list[dict[str, Any]]) -> pa.Table:
    """The archive's columns converted from decoded envelopes value by value: the reference."""
    columns: dict[str, list[Any]] = {
        name: [e.get(name) for e in events] for name in ENVELOPE_FIELD_NAMES
    }
    columns["props"] = [
        orjson.dumps(v).decode() if v is not None else None for v in columns["props"]
    ]
    columns["kafka_partition"] = [partition] * len(events)
    columns["kafka_offset"] = list(range(len(events)))
    return pa.Table.from_pydict(columns, schema=ARCHIVE_SCHEMA)


def test_columns_read_from_the_records_json_equal_the_envelopes_values() -> None:
    events = _edge_envelopes()
    rows = [archive_row(i, e) for i, e in enumerate(events)]
    assert archive._read_json(rows).num_rows == len(events)  # Arrow's path, not the fallback
    assert archive.to_table(3, rows).equals(_by_envelopes(3, events))


def test_a_record_in_several_lines_is_read_as_one_event() -> None:
    events = _edge_envelopes()
    rows = [
        archive_row(i, e, orjson.dumps(e, option=orjson.OPT_INDENT_2).replace(b"\n", b"\r\n"))
        for i, e in enumerate(events)
    ]
    assert all(b"\n" in value for _, _, value, _ in rows)
    assert archive._read_json(rows).num_rows == len(events)
    assert archive.to_table(3, rows).equals(_by_envelopes(3, events))


def test_a_value_the_json_reader_refuses_is_converted_from_the_decoded_envelope(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A float where an integer belongs: not from the gateway, but any producer can publish.
    odd = envelope("shop", "v", T0) | {"ts": 1.0}
    events = [envelope("shop", "u", T0), odd]
    with pytest.raises(pa.ArrowInvalid):
        archive._read_json([archive_row(i, e) for i, e in enumerate(events)])
    table = archive.to_table(0, [archive_row(i, e) for i, e in enumerate(events)])
    assert table.column("ts").to_pylist() == [T0, 1]
    assert table.equals(_by_envelopes(0, events))


def test_after_load_conversions_writing_a_file_imports_nothing() -> None:
    # pyarrow imports pandas on its first conversion of Python values: at the worker's
    # start (agents/archive.py), not in the middle of its first write, holding the GIL.
    event = envelope("shop", "v", T0) | {"props": {"plan": "pro"}}
    script = (
        "import sys, orjson\n"
        "from footfall import archive\n"
        "archive.load_conversions()\n"
        "before = set(sys.modules)\n"
        "archive.to_table(0, [archive.archive_row(0, orjson.loads(sys.argv[1]))])\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, orjson.dumps(event).decode()],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]", done.stdout
