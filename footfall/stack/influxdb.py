"""InfluxDB 1.x from the Debian package, run as our own `influxd` with data under the stack home."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from footfall.influx import (
    MINUTE_RP,
    MINUTE_RP_DURATION,
    MINUTE_RP_SHARD_DURATION,
    InfluxError,
    Series,
    quote_ident,
    series_of,
)
from footfall.stack.base import ProcessSpec, Service, StackError

INSTALL_HINT = (
    "influxd not found on PATH: install the Debian package with "
    "`sudo apt-get update && sudo apt-get install -y influxdb` "
    "(and `sudo systemctl disable --now influxdb` where systemd runs it as a service)"
)


class InfluxDB(Service):
    """`influxd` with a config file written under the stack home; v1 HTTP API on 127.0.0.1.

    The HTTP port is the one of `settings.influx_url` (8086 by default); the RPC port used by
    backup/restore is two above it (8088 by default), both on 127.0.0.1. No auth, no usage
    reporting, no `_internal` monitor database. (`CREATE DATABASE` still adds the empty
    `autogen` RP; `ensure_database` makes `minutes` the default.)
    """

    name = "influxdb"

    def address(self) -> str:
        return self.settings.influx_url

    # --- configuration ------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.home / "influxdb.conf"

    def _http_port(self) -> int:
        parsed = urllib.parse.urlsplit(self.settings.influx_url)
        return parsed.port or 8086

    @staticmethod
    def _influxd() -> str:
        path = shutil.which("influxd")
        if path is None:
            raise StackError(f"influxdb: {INSTALL_HINT}")
        return path

    def prepare(self) -> None:
        self._influxd()
        for sub in ("meta", "data", "wal"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)

        def q(path: object) -> str:  # TOML basic string; JSON escaping is a subset of it
            return json.dumps(str(path))

        self.config_file.write_text(
            f"""# Written by footfall.stack.influxdb on every start: edit the code, not this file.
reporting-enabled = false
bind-address = "127.0.0.1:{self._http_port() + 2}"

[meta]
  dir = {q(self.home / "meta")}
  retention-autocreate = true
  logging-enabled = true

[data]
  dir = {q(self.home / "data")}
  wal-dir = {q(self.home / "wal")}
  index-version = "inmem"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{self._http_port()}"
  auth-enabled = false
  log-enabled = true
  suppress-write-log = true
  pprof-enabled = false

[logging]
  level = "info"
  suppress-logo = true

[continuous_queries]
  enabled = false
"""
        )

    def processes(self) -> list[ProcessSpec]:
        return [
            ProcessSpec(
                name="influxd",
                argv=[self._influxd(), "run", "-config", str(self.config_file)],
                cwd=self.home,
            )
        ]

    # --- health ---------------------------------------------------------------------------
    def check(self) -> str | None:
        """None when GET /ping answers 204 from an InfluxDB, else why not."""
        url = f"{self.settings.influx_url.rstrip('/')}/ping"
        try:
            with urllib.request.urlopen(url, timeout=2.0) as resp:
                status = resp.status
                version = resp.headers.get("X-Influxdb-Version")
        except urllib.error.HTTPError as exc:
            return f"GET {url} answered HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return f"no answer at {url}: {reason}"
        if status != 204:
            return f"GET {url} answered HTTP {status}, expected 204"
        if not version:
            return f"GET {url} answered 204 but not as InfluxDB (no X-Influxdb-Version header)"
        return None

    # --- databases ------------------------------------------------------------------------
    def after_start(self) -> None:
        self.ensure_database(self.settings.influx_db)

    def ensure_database(self, db: str) -> None:
        """Create `db` and make `minutes` (400 days, 7-day shards) its default RP; idempotent.

        Minute points are the only thing Footfall stores in InfluxDB: the stream layer's
        per-minute metrics, later overwritten day by day by the batch layer. They are kept
        400 days, enough to compare a month with the same month a year earlier; the batch
        "truth" in HBase keeps everything and can rewrite older days if ever needed. Coarser
        intervals (hour, day, ...) and time zones are aggregated from minutes at query time,
        so there are no downsampling RPs or continuous queries to keep in step.

        `CREATE DATABASE` is a no-op when the database exists; the RP is created when absent
        and otherwise ALTERed to the settings above, so reruns converge instead of failing
        with "retention policy conflicts with an existing policy".
        """
        ident = quote_ident(db)
        self.run_query(f"CREATE DATABASE {ident}")
        existing = {
            row[0]
            for series in self.run_query(f"SHOW RETENTION POLICIES ON {ident}")
            for row in series["values"]
        }
        verb = "ALTER" if MINUTE_RP in existing else "CREATE"
        self.run_query(
            f"{verb} RETENTION POLICY {quote_ident(MINUTE_RP)} ON {ident} "
            f"DURATION {MINUTE_RP_DURATION} REPLICATION 1 "
            f"SHARD DURATION {MINUTE_RP_SHARD_DURATION} DEFAULT"
        )

    def run_query(self, q: str, timeout_s: float = 10.0) -> list[Series]:
        """Run InfluxQL through POST /query (synchronously, for the stack CLI and fixtures)."""
        params = {"q": q}
        if self.settings.influx_user:
            params["u"] = self.settings.influx_user
            params["p"] = self.settings.influx_password.get_secret_value()
        url = f"{self.settings.influx_url.rstrip('/')}/query"
        request = urllib.request.Request(
            url, data=urllib.parse.urlencode(params).encode(), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as resp:
                payload = json.load(resp)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()
            raise StackError(f"influxdb: {q!r} failed: HTTP {exc.code}: {detail}") from exc
        except OSError as exc:
            raise StackError(f"influxdb: {q!r} failed: {exc}") from exc
        try:
            return series_of(payload, q)
        except InfluxError as exc:
            raise StackError(f"influxdb: {exc}") from exc
