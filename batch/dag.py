"""Airflow DAGs that keep the batch layer's truth current (Airflow 3; scripts/airflow-venv).

- `footfall_batch_hourly`, at 5 past every hour: recompute yesterday and today so far
  (`footfall reprocess` marks yesterday complete once it is closed, and leaves today's last
  `batch_close_delay_s` to the stream);
- `footfall_batch_daily`, at 02:30 UTC: recompute the last three full days, which covers
  events arriving up to 72 h late (the gateway's `ts` window, spec/events.md).

Each task runs the `footfall reprocess` CLI of the project's own environment with a
BashOperator, rather than importing footfall here: Airflow's pins clash with the workers'
(so Airflow lives in its own virtual environment), the DAG file then parses in
milliseconds with nothing but Airflow installed, and a run by Airflow is exactly what an
operator types by hand. `FOOTFALL_BIN` names the executable (default: `footfall` on
PATH); every `FOOTFALL_*` setting reaches it through the worker's environment. On
Kubernetes the same command becomes a KubernetesPodOperator on the Footfall image.

A failed try is retried (`FOOTFALL_DAG_RETRIES`, default 3, with exponential back-off; a
rerun is safe, as `reprocess` overwrites whole days). When the last try fails,
`alert_on_failure` logs the failure and, if `FOOTFALL_ALERT_WEBHOOK` is set, POSTs it there
as JSON (`{"text": ...}`, what Slack-style incoming webhooks take). Both DAGs run in the
pool `FOOTFALL_DAG_POOL` (default `footfall_batch`; create it with one slot:
`airflow pools set footfall_batch 1 "footfall reprocess"`) so that two rewrites of the same
day never interleave.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.bash import (  # type: ignore[import-not-found]
    BashOperator,
)
from airflow.sdk import DAG  # type: ignore[import-not-found]

log = logging.getLogger(__name__)

# The run's day: the end of its data interval (scheduled runs); a manual run has no
# interval, and without a logical date not even that (Airflow 3 leaves both undefined), so
# then the logical date, else the time it was triggered.
END_DAY = (
    "(data_interval_end if data_interval_end is defined and data_interval_end else"
    " (logical_date if logical_date is defined and logical_date else dag_run.run_after)) | ds"
)


def _day(offset: int) -> str:
    """A Jinja template: the UTC day `offset` days from the end of the run's interval."""
    expression = END_DAY if offset == 0 else f"macros.ds_add({END_DAY}, {offset})"
    return "{{ " + expression + " }}"


def reprocess_command(first: int, last: int) -> str:
    """The task's bash command: `footfall reprocess` over days `first`..`last` (offsets)."""
    return f'"${{FOOTFALL_BIN:-footfall}}" reprocess --from {_day(first)} --to {_day(last)}'


def alert_on_failure(context: Mapping[str, Any]) -> None:
    """Report a task that failed its last try: to the log, and to FOOTFALL_ALERT_WEBHOOK."""
    ti = context.get("task_instance") or context.get("ti")
    dag_id = getattr(ti, "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    run_id = getattr(ti, "run_id", "?")
    try_number = getattr(ti, "try_number", "?")
    error = context.get("exception")
    text = f"footfall batch: {dag_id}.{task_id} failed (run {run_id}, try {try_number}): {error}"
    log.error(text)
    url = os.environ.get("FOOTFALL_ALERT_WEBHOOK", "")
    if not url:
        return
    body = json.dumps(
        {
            "text": text,
            "dag_id": dag_id,
            "task_id": task_id,
            "run_id": run_id,
            "try_number": try_number,
            "error": str(error),
        },
        default=str,
    ).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except OSError as exc:  # an alert that cannot be delivered must not hide the failure
        log.error("footfall batch: alert to %s failed: %s", url, exc)


DEFAULT_ARGS: dict[str, Any] = {
    "owner": "footfall",
    "retries": int(os.environ.get("FOOTFALL_DAG_RETRIES", "3")),
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=40),
    "execution_timeout": timedelta(hours=3),
    "on_failure_callback": alert_on_failure,
    "pool": os.environ.get("FOOTFALL_DAG_POOL", "footfall_batch"),
}
START = datetime(2026, 1, 1, tzinfo=UTC)

with DAG(
    dag_id="footfall_batch_hourly",
    description="Recompute yesterday and today so far from the raw archive",
    schedule="5 * * * *",
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["footfall", "batch"],
):
    BashOperator(
        task_id="reprocess_yesterday_and_today",
        bash_command=reprocess_command(-1, 0),
    )

with DAG(
    dag_id="footfall_batch_daily",
    description="Recompute the last three full days (late events) from the raw archive",
    schedule="30 2 * * *",
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["footfall", "batch"],
):
    BashOperator(
        task_id="reprocess_last_three_days",
        bash_command=reprocess_command(-3, -1),
    )
