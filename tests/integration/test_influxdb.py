"""The InfluxDB stack service and footfall.influx against a real influxd (`footfall stack up`).

Each test gets its own throw-away database, so the project's database is never touched.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from footfall.influx import (
    MINUTE_RP,
    FieldValue,
    InfluxClient,
    InfluxError,
    line,
    quote_ident,
    quote_literal,
)
from footfall.settings import Settings, get_settings
from footfall.stack.base import pid_alive
from footfall.stack.influxdb import InfluxDB

pytestmark = pytest.mark.integration

# A minute boundary a day ago, in ms: points older than the RP's 400 days are refused.
T0 = (int(time.time()) // 60 - 24 * 60) * 60_000


@pytest.fixture(scope="session")
def settings() -> Settings:
    settings = get_settings()
    reason = InfluxDB(settings).check()
    if reason is not None:
        pytest.fail(f"InfluxDB is not answering ({reason}); start it with `footfall stack up`")
    return settings


@pytest.fixture
def db(settings: Settings) -> Iterator[str]:
    """A fresh database set up exactly as the stack sets up the project's one."""
    name = f"footfall_test_{uuid.uuid4().hex[:10]}"
    service = InfluxDB(settings.model_copy(update={"influx_db": name}))
    service.after_start()
    yield name
    service.run_query(f"DROP DATABASE {quote_ident(name)}")


@pytest.fixture
async def client(settings: Settings, db: str) -> AsyncIterator[InfluxClient]:
    async with InfluxClient(settings.influx_url, db, timeout_s=10) as influx:
        yield influx


# --- the stack service -------------------------------------------------------------------------
def test_check_and_address(settings: Settings) -> None:
    service = InfluxDB(settings)
    assert service.check() is None
    assert service.address() == settings.influx_url


def test_check_names_the_reason_when_nothing_listens(settings: Settings) -> None:
    port = _free_port()
    service = InfluxDB(settings.model_copy(update={"influx_url": f"http://127.0.0.1:{port}"}))
    reason = service.check()
    assert reason is not None
    assert f"127.0.0.1:{port}/ping" in reason
    assert "refused" in reason.lower()


def _retention_policies(service: InfluxDB, db: str) -> dict[str, list[object]]:
    (series,) = service.run_query(f"SHOW RETENTION POLICIES ON {quote_ident(db)}")
    return {row[0]: row[1:] for row in series["values"]}


def test_after_start_makes_minutes_the_default_rp_idempotently(settings: Settings, db: str) -> None:
    service = InfluxDB(settings.model_copy(update={"influx_db": db}))
    # Columns: duration, shardGroupDuration, replicaN, default.
    assert _retention_policies(service, db)[MINUTE_RP] == ["9600h0m0s", "168h0m0s", 1, True]
    service.after_start()  # again: no error, same result
    assert _retention_policies(service, db)[MINUTE_RP] == ["9600h0m0s", "168h0m0s", 1, True]
    # An RP changed by hand (or by an older version) is brought back in line, not a conflict.
    ident = quote_ident(db)
    service.run_query(
        f"ALTER RETENTION POLICY {MINUTE_RP} ON {ident} DURATION 2d SHARD DURATION 1d"
    )
    service.run_query(f'ALTER RETENTION POLICY "autogen" ON {ident} DEFAULT')
    assert _retention_policies(service, db)[MINUTE_RP] == ["48h0m0s", "24h0m0s", 1, False]
    service.after_start()
    assert _retention_policies(service, db)[MINUTE_RP] == ["9600h0m0s", "168h0m0s", 1, True]


# --- writing and reading --------------------------------------------------------------------
async def test_write_then_read_back_with_types(client: InfluxClient) -> None:
    def point(site: str, device: str, pageviews: int, revenue: float, at: int) -> str:
        tags = {"site": site, "device": device}
        return line("minute", tags, {"pageviews": pageviews, "revenue": revenue}, at)

    await client.write(
        [
            point("s1", "mobile", 3, 9.5, T0),
            point("s1", "desktop", 4, 0.25, T0),
            point("s2", "mobile", 1, 2.0, T0),
            point("s1", "mobile", 5, 1.0, T0 + 60_000),
        ]
    )
    series = await client.query(
        f"SELECT pageviews, revenue FROM minute WHERE site = {quote_literal('s1')} "
        "GROUP BY device ORDER BY time"
    )
    by_device = {s["tags"]["device"]: s["values"] for s in series}
    assert by_device == {
        "desktop": [[T0, 4, 0.25]],
        "mobile": [[T0, 3, 9.5], [T0 + 60_000, 5, 1.0]],
    }
    assert all(isinstance(row[1], int) for rows in by_device.values() for row in rows)

    (total,) = await client.query(
        f"SELECT sum(pageviews) FROM {quote_ident(MINUTE_RP)}.minute "
        f"WHERE time >= {T0}ms AND time < {T0 + 120_000}ms"
    )
    assert total["values"] == [[T0, 13]]


async def test_same_series_and_time_overwrites(client: InfluxClient) -> None:
    def point(site: str, pageviews: int, visitors: int, note: str) -> str:
        fields: dict[str, FieldValue] = {"pageviews": pageviews, "visitors": visitors, "note": note}
        return line("minute", {"site": site}, fields, T0)

    await client.write([point("s1", 3, 2, "first")])
    await client.write([point("s1", 7, 5, "replay")])
    # Another series at the same time is a separate point, not an overwrite.
    await client.write([point("s2", 1, 1, "other")])

    (series,) = await client.query("SELECT pageviews, visitors, note FROM minute WHERE site = 's1'")
    assert series["values"] == [[T0, 7, 5, "replay"]]
    (count,) = await client.query("SELECT count(pageviews) FROM minute")
    assert count["values"][0][1] == 2


async def test_overwrite_is_per_field(client: InfluxClient) -> None:
    """A rewrite that leaves a field out keeps its old value: writers must send every field."""
    await client.write([line("minute", {"site": "s1"}, {"sessions": 2, "bounces": 1}, T0)])
    await client.write([line("minute", {"site": "s1"}, {"sessions": 4, "bounces": None}, T0)])
    (series,) = await client.query("SELECT sessions, bounces FROM minute")
    assert series["values"] == [[T0, 4, 1]]


async def test_awkward_names_round_trip(client: InfluxClient) -> None:
    measurement = "page views,all"
    tags = {
        "path": "/a b,c=d",
        "ua": 'Mozilla "quoted" \\o/',
        "city": "Zürich 東京",
        "tag key with space": "v",
    }
    text = 'he said "hi"\\n and a real\nline break \\'
    await client.write([line(measurement, tags, {"field, key=1": 1.5, "text": text}, T0)])

    (series,) = await client.query(
        f"SELECT * FROM {quote_ident(measurement)} "
        f"WHERE path = {quote_literal(tags['path'])} AND ua = {quote_literal(tags['ua'])}"
    )
    assert series["name"] == measurement
    row = dict(zip(series["columns"], series["values"][0], strict=True))
    assert row == {"time": T0, **tags, "field, key=1": 1.5, "text": text}


async def test_points_older_than_the_retention_policy_are_refused(client: InfluxClient) -> None:
    too_old = T0 - 401 * 24 * 3600 * 1000
    with pytest.raises(InfluxError, match="points beyond retention policy"):
        await client.write([line("minute", {"site": "s1"}, {"pageviews": 1}, too_old)])


async def test_empty_write_is_a_no_op(client: InfluxClient) -> None:
    await client.write([])
    assert await client.query("SHOW MEASUREMENTS") == []


async def test_write_errors_are_raised_with_the_reason(client: InfluxClient, db: str) -> None:
    await client.write([line("minute", {"site": "s1"}, {"pageviews": 1}, T0)])
    with pytest.raises(InfluxError, match=r"HTTP 400.*field type conflict"):
        await client.write([line("minute", {"site": "s1"}, {"pageviews": 1.5}, T0 + 60_000)])
    with pytest.raises(InfluxError, match=r"HTTP 400.*unable to parse"):
        await client.write(["minute,site=s1 pageviews= 1"])
    missing = f"{db}_missing"
    with pytest.raises(InfluxError, match=rf"{missing}.*HTTP 404.*database not found"):
        await client.write([line("m", {}, {"v": 1})], db=missing)


async def test_query_errors_are_raised(client: InfluxClient) -> None:
    with pytest.raises(InfluxError, match="error parsing query"):
        await client.query("SELEC nonsense")
    with pytest.raises(InfluxError, match="database not found"):
        await client.query("SELECT * FROM m", db="footfall_test_no_such_db")


async def test_unreachable_server_is_an_influx_error() -> None:
    async with InfluxClient(f"http://127.0.0.1:{_free_port()}", "x", timeout_s=2) as client:
        with pytest.raises(InfluxError, match="write to"):
            await client.write([line("m", {}, {"v": 1})])


# --- the whole lifecycle, on a second influxd of its own ----------------------------------------
def test_lifecycle_of_a_private_influxd(settings: Settings, tmp_path: Path) -> None:
    port = _free_port(pair=True)
    service = InfluxDB(
        settings.model_copy(
            update={
                "state_dir": tmp_path,
                "influx_url": f"http://127.0.0.1:{port}",
                "influx_db": "lifecycle",
                "stack_start_timeout_s": 30.0,
            }
        )
    )
    try:
        assert service.start() is True
        assert service.check() is None
        assert service.start() is False  # already healthy: nothing to do
        pid = service.running_pids()["influxd"]
        config = service.config_file.read_text()
        assert f'bind-address = "127.0.0.1:{port}"' in config
        assert f'bind-address = "127.0.0.1:{port + 2}"' in config
        assert str(tmp_path / "influxdb" / "wal") in config
        assert _retention_policies(service, "lifecycle")[MINUTE_RP][-1] is True
        service.run_query("CREATE RETENTION POLICY keep ON lifecycle DURATION 1d REPLICATION 1")

        assert service.stop() == ["influxd"]
        assert not pid_alive(pid)
        assert service.check() is not None

        assert service.start() is True  # restarts over the same data
        assert "keep" in _retention_policies(service, "lifecycle")
    finally:
        service.stop()
    assert service.running_pids() == {}


def _free_port(pair: bool = False) -> int:
    """A port nothing listens on (and, with pair, port + 2 as well)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if not pair:
            return port
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 2))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port pair found")
