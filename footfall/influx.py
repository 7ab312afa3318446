"""A small async client for the InfluxDB v1 HTTP API: line protocol on /write, InfluxQL on /query.

Only the v1 API is used, so the same code talks to InfluxDB 1.x (the Debian package) and to
2.x/3.x through their v1 compatibility endpoints. (`influxdb-client` speaks only v2.)

Points are addressed by series (measurement + tag set) and timestamp: writing the same series
and time again overwrites the point, field by field. A field left out of the second write
keeps its old value, and there is no way to write a null, so writers should always send every
field of a point (store counts and sums, derive ratios at query time).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, NotRequired, Self, TypedDict

import aiohttp

from footfall.settings import Settings

#: Retention policy of the per-minute points, created as the database's default by the stack
#: (`footfall.stack.influxdb.InfluxDB.after_start`) and written to when no `rp` is given.
MINUTE_RP = "minutes"
#: How long minute points are kept: 400 days covers "this month vs. the same month last year".
#: Older minutes can be rebuilt from the raw archive by the batch layer if ever needed.
MINUTE_RP_DURATION = "400d"
#: Shard group length of the minute RP: a week, InfluxDB's own default for RPs of this length.
MINUTE_RP_SHARD_DURATION = "7d"

FieldValue = bool | int | float | str
Precision = Literal["ns", "u", "ms", "s", "m", "h"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


class InfluxError(RuntimeError):
    """InfluxDB refused a write or a query, or could not be reached; the message says why."""


class Series(TypedDict):
    """One series of a query result ("name" is "" and "values" [] where InfluxDB omits them)."""

    name: str
    columns: list[str]
    values: list[list[Any]]
    tags: NotRequired[dict[str, str]]


# --- line protocol -------------------------------------------------------------------------
# InfluxDB 1.x unescapes only "\," "\ " and "\=" in measurement names, tag keys, tag values and
# field keys (checked against 1.6). Any other backslash is kept as it is -- "\\" stays two
# backslashes -- so backslashes are passed through untouched. That leaves text in which a
# backslash comes right before ",", " ", "=" or the end with no line-protocol spelling at all;
# `line` refuses it (ValueError) rather than store something else. Line breaks end a point.
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\="})
_UNSPELLABLE = re.compile(r"\\(?:[, =]|\Z)")


def _check_name(kind: str, text: str) -> None:
    if not text:
        raise ValueError(f"line protocol: empty {kind}")
    if "\n" in text or "\r" in text:
        raise ValueError(f"line protocol: {kind} {text!r} contains a line break")
    if _UNSPELLABLE.search(text):
        raise ValueError(
            f"line protocol: {kind} {text!r} has a backslash before ',', ' ', '=' or the end, "
            "which InfluxDB 1.x cannot store as written"
        )


def escape_measurement(name: str) -> str:
    """A measurement name for line protocol (commas and spaces escaped)."""
    _check_name("measurement", name)
    if name.startswith("#"):
        raise ValueError(f"line protocol: measurement {name!r} starts with '#' (a comment)")
    return name.translate(_MEASUREMENT_ESCAPES)


def escape_key(text: str, kind: str = "tag key") -> str:
    """A tag key, tag value or field key for line protocol (commas, equals, spaces escaped)."""
    _check_name(kind, text)
    if text == "time" and kind != "tag value":
        raise ValueError(f"line protocol: {kind} 'time' is reserved by InfluxDB")
    return text.translate(_KEY_ESCAPES)


def format_field(value: FieldValue) -> str:
    """A field value: `true`/`false`, `12i` for ints, `1.5` for floats, `"..."` for strings."""
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"line protocol: integer {value} is outside int64")
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"line protocol: float {value} is not finite")
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"line protocol: unsupported field type {type(value).__name__}")


def line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue | None],
    time: int | None = None,
) -> str:
    """One point in line protocol: ``measurement,tag=v field=1i,other=2.5 <time>``.

    Tags are sorted by key (InfluxDB's preferred order). Tags with an empty value are left
    out: InfluxDB does not store empty tag values, and InfluxQL treats a missing tag as ''.
    Fields whose value is None are left out; at least one field must remain. `time` is an
    integer in the precision the write uses (milliseconds for `InfluxClient.write`).
    """
    parts = [escape_measurement(measurement)]
    for key in sorted(tags):
        value = tags[key]
        if value == "":
            continue
        parts.append(f"{escape_key(key)}={escape_key(value, 'tag value')}")
    field_text = ",".join(
        f"{escape_key(key, 'field key')}={format_field(value)}"
        for key, value in fields.items()
        if value is not None
    )
    if not field_text:
        raise ValueError(f"line protocol: point of {measurement!r} has no fields")
    text = f"{','.join(parts)} {field_text}"
    if time is not None:
        if isinstance(time, bool) or not isinstance(time, int):
            raise TypeError(f"line protocol: time must be an int, not {type(time).__name__}")
        text += f" {time}"
    return text


# --- InfluxQL quoting ------------------------------------------------------------------------
def quote_ident(name: str) -> str:
    """An InfluxQL identifier (database, RP, measurement, tag or field name), double-quoted."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_literal(text: str) -> str:
    """An InfluxQL string literal, single-quoted."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- client ------------------------------------------------------------------------------------
class InfluxClient:
    """Async v1 HTTP client. Use as ``async with InfluxClient(...) as client:`` or close()."""

    def __init__(
        self,
        url: str,
        db: str,
        *,
        user: str = "",
        password: str = "",
        timeout_s: float = 10.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.db = db
        self._auth = aiohttp.BasicAuth(user, password) if user else None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = session
        self._owns_session = session is None

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> InfluxClient:
        return cls(
            settings.influx_url,
            settings.influx_db,
            user=settings.influx_user,
            password=settings.influx_password.get_secret_value(),
            **kwargs,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, auth=self._auth)
        return self._session

    async def write(
        self,
        lines: Sequence[str],
        *,
        db: str | None = None,
        rp: str | None = None,
        precision: Precision = "ms",
    ) -> None:
        """POST points in line protocol (see `line`); raise InfluxError unless InfluxDB took all.

        Timestamps are in `precision` units (milliseconds by default). Without `rp` the
        database's default retention policy is used. A 'partial write' is an error too.
        """
        if not lines:
            return
        database = db or self.db
        params = {"db": database, "precision": precision}
        if rp:
            params["rp"] = rp
        body = "\n".join(lines).encode()
        try:
            async with self._http().post(f"{self.url}/write", params=params, data=body) as resp:
                if resp.status // 100 == 2:
                    return
                detail = await _error_text(resp)
                raise InfluxError(
                    f"InfluxDB write of {len(lines)} point(s) to db {database!r} failed: "
                    f"HTTP {resp.status}: {detail}"
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise InfluxError(f"InfluxDB write to {self.url} failed: {exc!r}") from exc

    async def query(
        self, q: str, *, db: str | None = None, epoch: Precision | None = "ms"
    ) -> list[Series]:
        """Run InfluxQL (one or more `;`-separated statements); return all result series.

        Times come back as integers in `epoch` units (milliseconds by default; None gives
        RFC 3339 strings). Raises InfluxError when InfluxDB reports an error for any statement.
        """
        params = {"q": q, "db": db or self.db}
        if epoch is not None:
            params["epoch"] = epoch
        try:
            # POST: InfluxDB 1.x refuses statements that change data (CREATE, DROP) over GET.
            async with self._http().post(f"{self.url}/query", data=params) as resp:
                if resp.status // 100 != 2:
                    detail = await _error_text(resp)
                    raise InfluxError(f"InfluxDB query failed: HTTP {resp.status}: {detail}: {q}")
                payload = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise InfluxError(f"InfluxDB query at {self.url} failed: {exc!r}") from exc
        return series_of(payload, q)


def series_of(payload: Any, q: str = "") -> list[Series]:
    """The series of a /query answer, raising InfluxError for any error it reports."""
    if not isinstance(payload, dict):
        raise InfluxError(f"InfluxDB query: unexpected answer {payload!r}: {q}")
    if "error" in payload:
        raise InfluxError(f"InfluxDB query failed: {payload['error']}: {q}")
    found: list[Series] = []
    for result in payload.get("results", []):
        if "error" in result:
            raise InfluxError(
                f"InfluxDB statement {result.get('statement_id', '?')} failed: "
                f"{result['error']}: {q}"
            )
        for raw in result.get("series", []):
            series = Series(
                name=raw.get("name", ""),
                columns=list(raw.get("columns", [])),
                values=list(raw.get("values", [])),
            )
            if "tags" in raw:
                series["tags"] = dict(raw["tags"])
            found.append(series)
    return found


async def _error_text(resp: aiohttp.ClientResponse) -> str:
    text = await resp.text()
    try:
        data = await resp.json(content_type=None)
    except ValueError:
        return text.strip()[:500] or resp.reason or "no detail"
    if isinstance(data, dict) and "error" in data:
        return str(data["error"])
    return text.strip()[:500]
