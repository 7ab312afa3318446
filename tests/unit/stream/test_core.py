"""footfall._core's buckets (native/, Rust) against tables.buckets' (Python): same bytes.

The Rust buckets count in the worker when they are built; the Python ones are what reports
read and what counts without them. Every stored byte must agree, whichever wrote it and
whichever continues from it, through the sketches' three modes (list, set, register
array) and sampled rates.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import datasketches as ds
import pytest

from footfall import native
from footfall.metrics import COUNTERS
from footfall.visitors import SketchConfig
from tables.buckets import EVENT_ROWS, SESSION_ROWS, Bucket, Contribution, CountedBucket
from tables.codec import Reader
from tables.core import NativeBatchCounter, layout, new_counter
from tables.counting import BatchCounter, CountingRules
from tables.sessions import Session

CONFIG = SketchConfig()
T0 = 1_764_000_000_000
core = native.core()
needs_core = pytest.mark.skipif(core is None, reason="checked by test_the_core_is_built")


def rust_bucket() -> CountedBucket:
    assert core is not None
    bucket: CountedBucket = core.Bucket(CONFIG.lg_k)
    return bucket


def rust_decode(raw: bytes) -> CountedBucket:
    assert core is not None
    bucket: CountedBucket = core.Bucket.decode(raw, CONFIG.lg_k)
    return bucket


def _counter(config: SketchConfig) -> Any:
    return new_counter(CountingRules(sketch=config), {}.get, {}.get)


def test_the_core_is_built() -> None:
    # scripts/bootstrap builds it (`footfall native build`); without it the Python buckets
    # count, correctly but slower, and this fails so that nobody benchmarks that unawares.
    assert core is not None, "footfall._core is not built or stale: run `footfall native build`"
    assert isinstance(_counter(CONFIG), NativeBatchCounter)


def test_other_register_widths_count_with_the_python_buckets() -> None:
    counter = _counter(SketchConfig(hll_type="HLL_4"))
    assert isinstance(counter, BatchCounter)
    event = {
        "site": "s", "visitor": "v", "id": "e", "name": "pageview", "event_time": T0,
        "received_at": T0, "bot": False, "sample_rate": 1, "path": "/",
    }  # fmt: skip
    assert all(isinstance(b, Bucket) for b in counter.apply(0, [(0, event)]).buckets.values())


def _operations(seed: int, n: int, visitors: int) -> list[tuple[Any, ...]]:
    """A random mix of what counting does to a bucket, with encodes in between."""
    rng = random.Random(seed)
    ops: list[tuple[Any, ...]] = []
    contributions: dict[str, Contribution] = {}
    for _ in range(n):
        visitor = rng.choice(["", "ü-visitor", *(f"v{rng.randrange(visitors)}" for _ in range(8))])
        rate = rng.choice([1, 1, 1, 2, 8])
        pick = rng.random()
        if pick < 0.6:
            values = tuple(f"/{d}/{rng.randrange(40)}" for d in EVENT_ROWS)
            ops.append(("event", values, visitor, rate, rng.random() < 0.7, rng.random() < 0.1))
        elif pick < 0.65:
            ops.append(
                ("revenue", rng.choice(["USD", "EUR", "€uro"]), rng.randrange(-(10**6), 10**9))
            )
        elif pick < 0.95:
            before = contributions.get(visitor)
            values = tuple(f"{d}={rng.randrange(5)}" for d in SESSION_ROWS)
            if before is not None and rng.random() < 0.5:
                values = (*before[3][:-1], values[-1])  # the exit page moves
            after: Contribution = (rate, rng.choice([0, rate]), rate * rng.randrange(10**6), values)
            ops.append(("move", before, after, visitor))
            contributions[visitor] = after
        else:
            ops.append(("encode", rng.randrange(10**9)))
    return ops


def _run(
    bucket: CountedBucket, ops: list[tuple[Any, ...]], decode: Callable[[bytes], CountedBucket]
) -> tuple[CountedBucket, list[bytes]]:
    """Apply `ops`; at each encode, continue from the bytes decoded by `decode`."""
    written: list[bytes] = []
    for op in ops:
        if op[0] == "event":
            bucket.add_event(*op[1:])
        elif op[0] == "revenue":
            bucket.add_revenue(op[1], op[2])
        elif op[0] == "move":
            bucket.move_session(*op[1:])
        else:
            bucket.offset = op[1]
            written.append(bucket.encode())
            bucket = decode(written[-1])
    written.append(bucket.encode())
    return bucket, written


@needs_core
@pytest.mark.parametrize(
    ("seed", "n", "visitors"),
    [(1, 300, 5), (2, 3000, 60), (3, 6000, 4000), (4, 20000, 50000)],
    ids=["one-visitor rows", "list and set", "set to registers", "registers"],
)
def test_both_write_the_same_bytes_and_points(seed: int, n: int, visitors: int) -> None:
    ops = _operations(seed, n, visitors)
    rust, rust_bytes = _run(rust_bucket(), ops, rust_decode)
    python, python_bytes = _run(Bucket(CONFIG), ops, lambda raw: Bucket.decode(raw, CONFIG))
    assert type(rust) is not type(python)
    assert len(rust_bytes) == len(python_bytes) > 1
    for i, (mine, theirs) in enumerate(zip(rust_bytes, python_bytes, strict=True)):
        assert mine == theirs, f"encode {i} differs"
    assert rust.point() == python.point()
    assert rust.row_count() == python.row_count()


@needs_core
def test_each_continues_from_the_others_bytes() -> None:
    ops = _operations(5, 4000, 3000)
    half = len(ops) // 2
    _, python_first = _run(Bucket(CONFIG), ops[:half], lambda raw: Bucket.decode(raw, CONFIG))
    _, rust_first = _run(rust_bucket(), ops[:half], rust_decode)
    assert python_first[-1] == rust_first[-1]
    _, rust_after_python = _run(rust_decode(python_first[-1]), ops[half:], rust_decode)
    _, python_after_rust = _run(
        Bucket.decode(rust_first[-1], CONFIG), ops[half:], lambda raw: Bucket.decode(raw, CONFIG)
    )
    assert rust_after_python == python_after_rust


def _total_sketch(encoded: bytes) -> bytes:
    """The stored bytes of a bucket's one total sketch, as they are (not read and rewritten)."""
    r = Reader(encoded)
    r.uint(), r.sint()  # version, offset
    [r.sint() for _ in COUNTERS]
    assert r.uint() == 1
    r.uint()  # rate
    return r.blob()


@needs_core
def test_the_total_sketch_is_the_datasketches_librarys() -> None:
    visitors = [f"visitor-{i}" for i in range(3000)]
    rust = rust_bucket()
    reference = ds.hll_sketch(CONFIG.lg_k, ds.tgt_hll_type.HLL_8)
    for visitor in visitors:
        rust.add_event(("/", "pageview", "/|a|b|c"), visitor, 1, True, False)
        reference.update(visitor)
        if visitor.endswith("00"):  # list, set and register modes on the way
            assert _total_sketch(rust.encode()) == reference.serialize_compact()
    assert rust.point()[1] == pytest.approx(reference.get_estimate(), rel=1e-12)


@needs_core
@pytest.mark.parametrize(
    "raw",
    [b"", b"\x02", b"\x01\x00", b"\x01\x00\x00\x00\x00\x00\x00\x00\x01\x02\x05hll"],
    ids=["empty", "version 2", "truncated", "not a sketch"],
)
def test_bad_bytes_are_a_value_error_in_both(raw: bytes) -> None:
    # Both say what is wrong; the words differ (Python's CodecError is a ValueError).
    with pytest.raises(ValueError, match=r"version|truncated|sketch"):
        rust_decode(raw)
    with pytest.raises(ValueError, match=r"version|truncated|sketch|Insufficient|Invalid|range"):
        Bucket.decode(raw, CONFIG)


@needs_core
def test_a_layout_other_than_the_metrics_is_refused() -> None:
    assert core is not None
    with pytest.raises(ValueError, match="counts"):
        core.configure(["events"], **layout())
    fewer = {**layout(), "session_rows": list(SESSION_ROWS[:-1])}
    with pytest.raises(ValueError, match="do not match"):
        core.configure(list(COUNTERS), **fewer)
    with pytest.raises(ValueError, match="differently"):
        core.configure(list(COUNTERS), **{**layout(), "pageview": "view"})
    core.configure(list(COUNTERS), **layout())  # the same again: fine
    with pytest.raises(ValueError, match="rows"):
        rust_bucket().add_event(("/only-one",), "v", 1, True, False)


def _session(attributes: list[str], ids: dict[str, int]) -> Session:
    return Session(3, 41, T0, T0 + 5, 2, 1, 4, attributes, "/exit", T0 + 5, T0 + 9, ids)


@needs_core
def test_sessions_are_written_as_the_python_core_writes_them() -> None:
    assert core is not None
    awkward = ['"quoted"', "back\\slash", "\x00\x1f\x7f", "\n\r\t\b\f", "é€😀", "\u2028", "", "x"]
    python = _session(awkward, {"id-1": T0, 'id"2': T0 + 1, "\x01": T0 + 2})
    raw = python.encode()
    assert core.Session.decode(raw).encode() == raw
    empty = _session(["a"] * len(awkward), {})
    assert core.Session.decode(empty.encode()).encode() == empty.encode()


@needs_core
@pytest.mark.parametrize(
    "raw",
    [b"", b"[2]", b"not json", b'[1,0,0,0,0,0,0,1,["a"],"",-1,0,["odd"]]', b"[1,2,3]"],
    ids=["empty", "version", "not json", "odd ids", "short"],
)
def test_bad_session_records_are_a_value_error(raw: bytes) -> None:
    assert core is not None
    with pytest.raises(ValueError, match="session value"):
        core.Session.decode(raw)


@needs_core
def test_both_cores_count_odd_but_countable_events_alike() -> None:
    # An empty visitor (only another producer than the gateway can send one), an amount at
    # the gateway's limit, sampled rates: the same records, under the same keys.
    base = {
        "site": "s", "name": "purchase", "received_at": T0, "bot": False, "path": "/",
        "revenue": {"amount": 1e15, "currency": "IRR"},
    }  # fmt: skip
    events = [
        (i, {**base, "visitor": visitor, "id": f"e{i}", "event_time": T0 + i, "sample_rate": rate})
        for i, (visitor, rate) in enumerate([("", 1), ("", 8), ("v", 2), ("w", 4), ("", 1)])
    ]
    written = []
    for make in (BatchCounter, new_counter):
        result = make(CountingRules(), {}.get, {}.get).apply(0, events)
        written.append(
            (
                {k: b.encode() for k, b in result.buckets.items()},
                {k: s.encode() for k, s in result.sessions.items()},
                [b.point() for b in result.buckets.values()],
            )
        )
    assert written[0] == written[1]
    assert b"s|" in written[0][1]


@needs_core
def test_a_session_written_under_other_dimensions_stops_the_counter() -> None:
    old = _session(["only", "three", "attributes"], {})
    counter = new_counter(CountingRules(), lambda key: old.encode(), lambda key: None)
    event = {
        "site": "s", "visitor": "v", "id": "e1", "name": "pageview", "event_time": T0 + 60,
        "received_at": T0 + 60, "bot": False, "sample_rate": 1, "path": "/",
    }  # fmt: skip
    with pytest.raises(ValueError, match="3 attributes"):
        counter.apply(0, [(50, event)])
