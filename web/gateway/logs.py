"""JSON logs for the gateway: one object per line, at most one line per request.

A request line holds method, route, status, duration, event count and the outcome;
never the client address, the query string, cookies or any API key.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

ACCESS_LOGGER = "footfall.gateway.access"

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: ts, level, logger, msg and the `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure(level: str) -> None:
    """Send every log record of the process to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's own access log would be a second line per request; ours replaces it.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


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
