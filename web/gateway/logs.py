"""The gateway's request line: at most one log line per request (footfall/logs.py makes
it an ECS JSON object).

A request line holds method, route, status, duration, event count and the outcome;
never the client address, the query string, cookies or any API key.
"""

from __future__ import annotations

import logging
import time

ACCESS_LOGGER = "footfall.gateway.access"

_access = logging.getLogger(ACCESS_LOGGER)


def request_line(
    *,
    method: str,
    route: str,
    status: int,
    started: float,
    events: int,
    outcome: str,
    error: BaseException | None = None,
) -> None:
    """Log the one line of a finished request (INFO; 5xx WARNING; a crash ERROR + trace)."""
    level = logging.ERROR if error else logging.WARNING if status >= 500 else logging.INFO
    if not _access.isEnabledFor(level):
        return
    _access.log(
        level,
        "request",
        extra={
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "events": events,
            "outcome": outcome,
        },
        exc_info=error,
    )
