"""batch/dag.py under a real Airflow (its own venv: scripts/airflow-venv), `airflow dags test`.

The first run builds the Airflow venv (uv caches the wheels; later runs find it ready).
The hourly DAG then runs `footfall reprocess` for real against the stack, on an archive of
its own, and its day is checked against the reference; the daily DAG's command is checked
as rendered; a failing task is shown to reach the alerting hook.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from batch import markers
from batch.days import day_of_ms
from batch.hbase import connect
from batch.markers import DayState
from footfall.metrics import DAY_MS
from footfall.settings import Settings
from tests.integration import batchkit
from tests.reference import reference

# The first run builds Airflow's own virtual environment (minutes); later runs reuse it.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]
MIDNIGHT = batchkit.batch_midnight()


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An Airflow home with batch/dag.py as its only DAG file and a migrated database."""
    began = time.monotonic()
    venv = subprocess.run(
        [str(REPO / "scripts" / "airflow-venv")], check=True, capture_output=True, text=True
    ).stdout.strip()
    print(f"airflow venv ready in {time.monotonic() - began:.0f}s: {venv}", file=sys.stderr)
    home = tmp_path_factory.mktemp("airflow")
    dags = home / "dags"
    dags.mkdir()
    (dags / "footfall_batch.py").write_text((REPO / "batch" / "dag.py").read_text())
    wrapper = home / "footfall"
    # `footfall reprocess` of this checkout, whether or not footfall/cli.py lists it yet.
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m batch.commands "$@"\n')
    wrapper.chmod(0o755)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ["HOME"],
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "FOOTFALL_BIN": str(wrapper),
        "AIRFLOW_BIN": f"{venv}/bin/airflow",
    }
    run_airflow(env, "db", "migrate")
    return env


def run_airflow(env: dict[str, str], *args: str, check: bool = True) -> str:
    done = subprocess.run(
        [env["AIRFLOW_BIN"], *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = done.stdout + done.stderr
    if check and done.returncode != 0:
        raise AssertionError(
            f"airflow {' '.join(args)} exited {done.returncode}:\n{output[-4000:]}"
        )
    return output


def footfall_env(settings: Settings) -> dict[str, str]:
    return {
        "FOOTFALL_ARCHIVE_URL": settings.archive_url,
        "FOOTFALL_HBASE_TABLE_PREFIX": settings.hbase_table_prefix,
        "FOOTFALL_INFLUX_DB": settings.influx_db,
        "FOOTFALL_BATCH_SPARK_MASTER": "local[2]",
        "FOOTFALL_BATCH_DRIVER_MEMORY": "1g",
    }


def logical(moment_ms: int) -> str:
    return datetime.fromtimestamp(moment_ms / 1000, tz=UTC).isoformat()


def test_both_dags_import(airflow: dict[str, str]) -> None:
    run_airflow(airflow, "dags", "reserialize")
    listed = run_airflow(airflow, "dags", "list", "-o", "json")
    (table,) = [text for text in listed.splitlines() if text.startswith("[{")]
    ids = {dag["dag_id"] for dag in json.loads(table)}
    assert {"footfall_batch_hourly", "footfall_batch_daily"} <= ids
    assert "No data found" in run_airflow(airflow, "dags", "list-import-errors")


def test_hourly_dag_recomputes_yesterday_and_today(airflow: dict[str, str], tmp_path: Path) -> None:
    events = batchkit.batch_events()
    batchkit.write_archive(tmp_path / "archive", events)
    settings = batchkit.isolated_settings(tmp_path / "archive")
    batchkit.create_influx_db(settings)
    try:
        began = time.monotonic()
        # A run at 00:05 the day after MIDNIGHT's day: yesterday is that day.
        output = run_airflow(
            {**airflow, **footfall_env(settings)},
            "dags",
            "test",
            "footfall_batch_hourly",
            logical(MIDNIGHT + DAY_MS + 5 * 60_000),
        )
        print(f"hourly DAG run: {time.monotonic() - began:.0f}s", file=sys.stderr)
        day, today = day_of_ms(MIDNIGHT), day_of_ms(MIDNIGHT + DAY_MS)
        assert f"reprocess --from {day} --to {today}" in output
        assert "state=success" in output
        connection = connect(settings)
        try:
            assert markers.markers(connection, "alpha")[day].state is DayState.DONE
        finally:
            connection.close()
        sites = sorted({e["site"] for e in events})
        problems = batchkit.compare_store(
            settings, reference(events), sites, MIDNIGHT, MIDNIGHT + DAY_MS
        )
        assert not problems, "\n".join(problems[:30])
    finally:
        batchkit.drop_everything(settings)


def test_daily_dag_takes_the_last_three_days(airflow: dict[str, str]) -> None:
    at = datetime(2026, 3, 10, 2, 30, tzinfo=UTC)
    output = run_airflow(
        {**airflow, "FOOTFALL_BIN": "/bin/echo"},
        "dags",
        "test",
        "footfall_batch_daily",
        at.isoformat(),
    )
    first, last = (at - timedelta(days=3)).date(), (at - timedelta(days=1)).date()
    assert f"reprocess --from {first} --to {last}" in output
    assert "state=success" in output


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []  # noqa: RUF012 (one test server per module)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_failed_task_calls_the_alerting_hook(airflow: dict[str, str]) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {
            **airflow,
            "FOOTFALL_BIN": "/bin/false",
            "FOOTFALL_DAG_RETRIES": "0",
            "FOOTFALL_ALERT_WEBHOOK": f"http://127.0.0.1:{server.server_port}/alert",
        }
        output = run_airflow(
            env, "dags", "test", "footfall_batch_hourly", "2026-03-10T01:05:00+00:00", check=False
        )
        assert "state=failed" in output
    finally:
        server.shutdown()
        thread.join(10)
    (alert,) = _Hook.received
    assert alert["dag_id"] == "footfall_batch_hourly"
    assert alert["task_id"] == "reprocess_yesterday_and_today"
    assert "failed" in alert["text"]
