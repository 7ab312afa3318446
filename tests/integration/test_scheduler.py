"""scripts/scheduler (the Procfile's `scheduler`): Airflow schedules and runs batch/dag.py.

The script runs as honcho runs it, with a state dir and API port of the test's own. Once
Airflow lists both DAGs parsed, without import errors and unpaused, the scheduler has
created their current runs by itself (catchup=False); one hourly run is then triggered.
`FOOTFALL_BIN` is a wrapper that logs every command and looks at the run id Airflow hands
it: the triggered run gets this checkout's real `footfall reprocess --dry-run` (Spark on an
empty archive, HBase tables and an InfluxDB database of the test's own), the scheduled runs
just succeed, which keeps the test to one Spark start. A second triggered run's command
sleeps: SIGTERM to the script while it runs has to end every process below it, including
the task's own process group and session.

The first run builds the Airflow venv (minutes); later runs reuse it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.integration import batchkit
from tests.integration.httpkit import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

REPO = Path(__file__).resolve().parents[2]
DAGS = ("footfall_batch_daily", "footfall_batch_hourly")
# Runs of the hourly DAG triggered by the test. A manual run's days come from the time it
# was triggered (its data interval), whatever its logical date; a logical date is still given,
# as the DAG's template needs one.
TRIGGERED_AT = "2026-03-10T01:05:00+00:00"
STOPPED_AT = "2026-03-11T01:05:00+00:00"
T = TypeVar("T")


def children() -> dict[int, list[int]]:
    """Every process's children, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> set[int]:
    tree, found, todo = children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def rss_mb(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        rss = [line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")]
        total += int(rss[0]) if rss else 0  # none: a zombie
    return total / 1024


def days_around_now() -> str:
    """The hourly DAG's command for a run triggered now: yesterday and today, UTC."""
    today = datetime.now(UTC).date()
    return f"reprocess --from {today - timedelta(days=1)} --to {today}"


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, log: Path) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(2)
    tail = log.read_text(errors="replace")[-6000:] if log.exists() else ""
    raise AssertionError(f"no {what} after {timeout:.0f}s; scheduler output:\n{tail}")


class Airflow:
    """The CLI of the scheduler's Airflow (`scripts/scheduler airflow ...`), on its home."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [str(REPO / "scripts" / "scheduler"), "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        output = done.stdout + done.stderr
        if done.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)}: {output}"[-4000:])
        return output

    def json(self, *args: str) -> list[dict[str, Any]]:
        output = self.run(*args, "-o", "json")
        lines = output.splitlines()
        table = next((line for line in lines if line.startswith("[{") or line == "[]"), "[]")
        rows: list[dict[str, Any]] = json.loads(table)
        return rows


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Airflow, Path]]:
    """scripts/scheduler running on a state dir of its own; killed, with all below it, after."""
    began = time.monotonic()
    subprocess.run([str(REPO / "scripts" / "airflow-venv")], check=True, capture_output=True)
    print(f"airflow venv ready in {time.monotonic() - began:.0f}s", file=sys.stderr)

    archive = tmp_path / "archive"
    archive.mkdir()
    settings = batchkit.isolated_settings(archive)
    batchkit.create_influx_db(settings)
    calls = tmp_path / "footfall-calls"
    wrapper = tmp_path / "footfall"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'echo "$AIRFLOW_CTX_DAG_RUN_ID $*" >> "{calls}"\n'
        'case "$AIRFLOW_CTX_DAG_RUN_ID" in\n'
        f'  footfall-test) exec "{REPO}/.venv/bin/footfall" "$@" --dry-run ;;\n'
        "  footfall-test-stop) exec sleep 600 ;;\n"
        "  *) exit 0 ;;\n"
        "esac\n"
    )
    wrapper.chmod(0o755)
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ["HOME"],
        "FOOTFALL_STATE_DIR": str(tmp_path / "state"),
        "FOOTFALL_AIRFLOW_PORT": str(port),
        "FOOTFALL_BIN": str(wrapper),
        "FOOTFALL_ARCHIVE_URL": settings.archive_url,
        "FOOTFALL_HBASE_TABLE_PREFIX": settings.hbase_table_prefix,
        "FOOTFALL_INFLUX_DB": settings.influx_db,
        "FOOTFALL_BATCH_SPARK_MASTER": "local[1]",
        "FOOTFALL_BATCH_DRIVER_MEMORY": "512m",
    }
    log = tmp_path / "scheduler.log"
    with log.open("wb") as out:
        # Its own session, as under honcho: the cleanup below can reach the whole group.
        process = subprocess.Popen(
            [str(REPO / "scripts" / "scheduler")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # Every process seen below the script, with its command line: one whose parent died
    # first is no descendant any more, and a task has a process group of its own.
    seen: dict[int, str] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            seen.update((pid, cmdline(pid)) for pid in descendants(process.pid))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield process, Airflow(env), log
    finally:
        done.set()
        watcher.join(10)
        seen.update((pid, cmdline(pid)) for pid in descendants(process.pid))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        for pid, command in seen.items():
            if alive(pid) and cmdline(pid) == command:  # not a new process on an old pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        process.wait(30)
        # The dry run creates empty tables of its prefix (and nothing in InfluxDB).
        batchkit.drop_everything(settings)


def test_the_scheduler_runs_the_dags_and_stops_cleanly(
    scheduler: tuple[subprocess.Popen[bytes], Airflow, Path],
) -> None:
    process, airflow, log = scheduler
    home = Path(airflow.env["FOOTFALL_STATE_DIR"]) / "airflow"
    started = time.monotonic()

    def dags_ready() -> list[dict[str, Any]] | None:
        if not (home / "airflow.db").exists():
            return None
        try:
            dags = [d for d in airflow.json("dags", "list") if d["dag_id"] in DAGS]
        except AssertionError:
            return None  # the database is still being migrated
        return dags if len(dags) == len(DAGS) else None

    dags = wait_for("parsed DAGs", dags_ready, 900, log)
    parsed = time.monotonic() - started
    assert all(str(d["is_paused"]) == "False" for d in dags), dags
    assert "No data found" in airflow.run("dags", "list-import-errors")
    assert all(d["fileloc"].endswith("footfall_batch.py") for d in dags), dags

    def scheduled_runs() -> list[dict[str, Any]] | None:
        runs = [
            run
            for dag in DAGS
            for run in airflow.json("dags", "list-runs", dag)
            if run["run_id"].startswith("scheduled__")
        ]
        return runs if {run["dag_id"] for run in runs} == set(DAGS) else None

    wait_for("scheduled runs of both DAGs", scheduled_runs, 300, log)

    airflow.run(
        "dags",
        "trigger",
        "footfall_batch_hourly",
        "--logical-date",
        TRIGGERED_AT,
        "--run-id",
        "footfall-test",
    )
    triggered = time.monotonic()
    days_then = days_around_now()

    def task_done() -> str | None:
        (state,) = [
            row["state"]
            for row in airflow.json(
                "tasks", "states-for-dag-run", "footfall_batch_hourly", "footfall-test"
            )
        ]
        return state if state in {"success", "failed", "up_for_retry"} else None

    assert wait_for("finished triggered task", task_done, 900, log) == "success"
    ran = time.monotonic() - triggered
    calls = (log.parent / "footfall-calls").read_text().splitlines()
    (call,) = [line for line in calls if line.startswith("footfall-test ")]
    assert call.split(" ", 1)[1] in {days_then, days_around_now()}, calls
    task_log = "\n".join(
        path.read_text(errors="replace")
        for path in (home / "logs").rglob("*.log")
        if "footfall-test" in str(path)
    )
    assert "day  site  metric  stored  recomputed" in task_log, task_log[-4000:]

    memory = rss_mb(descendants(process.pid))

    # A stop while a task runs: the task sits in a process group and session of its own.
    airflow.run(
        "dags",
        "trigger",
        "footfall_batch_hourly",
        "--logical-date",
        STOPPED_AT,
        "--run-id",
        "footfall-test-stop",
    )

    def task_running() -> set[int] | None:
        tree = descendants(process.pid)
        return tree if any(cmdline(pid) == "sleep 600" for pid in tree) else None

    tree = wait_for("running task", task_running, 300, log)
    stopping = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    stopped = time.monotonic() - stopping
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in tree):
        time.sleep(0.2)
    left = sorted(pid for pid in tree if alive(pid))
    assert not left, f"still running after the scheduler stopped: {left}"
    print(
        f"scheduler: DAGs parsed {parsed:.0f}s after start; triggered run succeeded in "
        f"{ran:.0f}s; {memory:.0f} MB RSS idle; stopped with a running task in {stopped:.1f}s",
        file=sys.stderr,
    )
