"""JSON log lines with Elastic Common Schema (ECS) field names, for every Footfall process.

One object per line on stderr, which Filebeat or Elastic Agent ship to Elasticsearch as is
(no parsing rules): `@timestamp`, `log.level`, `message`, `ecs.version`, `log.logger`,
`service.name` (and `service.environment`, `process.pid`), `error.*` for an exception,
`trace.id`/`span.id` when an OpenTelemetry span is active (so Kibana links a log line to
its trace). Fields passed with `extra=` are written under their ECS name when they have
one (ECS_FIELDS: what the gateway's request line passes), under their own dotted name
when they contain a dot (`extra={"url.path": ...}`), and under the `footfall.` namespace
otherwise (ECS's rule for custom fields). Named `logs`, not `logging`, so that it never
shadows the standard library's module.

The gateway calls `configure(settings, service="footfall-gateway")`; the Faust worker
passes `dict_config(settings, service="footfall-worker")` to `faust.Worker(logging_config=)`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from footfall.settings import Settings

ECS_VERSION: Final = "8.11.0"

#: `extra=` keys with an ECS name (the gateway's request line: web/gateway/logs.py).
ECS_FIELDS: Final[Mapping[str, str]] = {
    "method": "http.request.method",
    "route": "url.path",
    "status": "http.response.status_code",
    "events": "footfall.events",
    "outcome": "footfall.outcome",
}

# Attributes every LogRecord has; anything else was passed with `extra=`.
_RECORD_ATTRS: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}

TraceIds = Callable[[], tuple[str, str] | None]


def _no_trace() -> tuple[str, str] | None:
    return None


def _put(doc: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `value` at the nested path `a.b.c` of `doc`."""
    *parents, leaf = dotted.split(".")
    node = doc
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value


class EcsFormatter(logging.Formatter):
    """Formats a record as one ECS JSON object (module docstring)."""

    def __init__(
        self,
        service: str = "footfall",
        environment: str = "",
        trace_ids: TraceIds | None = None,
    ) -> None:
        super().__init__()
        self.service = service
        self.environment = environment
        self.trace_ids = trace_ids or _no_trace
        self.pid = os.getpid()

    def format(self, record: logging.LogRecord) -> str:
        # The three fields ECS loggers put first, dotted, as ecs-logging libraries do.
        line: dict[str, Any] = {
            "@timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "log.level": record.levelname.lower(),
            "message": record.getMessage(),
            "ecs.version": ECS_VERSION,
        }
        doc: dict[str, Any] = {
            "log": {"logger": record.name},
            "service": {"name": self.service},
            "process": {"pid": self.pid},
        }
        if self.environment:
            doc["service"]["environment"] = self.environment
        for key, value in record.__dict__.items():
            if key in _RECORD_ATTRS:
                continue
            if key == "duration_ms" and isinstance(value, int | float):
                _put(doc, "event.duration", int(value * 1_000_000))  # ECS: nanoseconds
                continue
            _put(doc, ECS_FIELDS.get(key) or (key if "." in key else f"footfall.{key}"), value)
        status = record.__dict__.get("status")
        if isinstance(status, int):
            _put(doc, "event.outcome", "failure" if status >= 500 else "success")
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, exc, _ = record.exc_info
            doc["error"] = {
                "type": exc_type.__name__,
                "message": str(exc),
                "stack_trace": self.formatException(record.exc_info),
            }
        ids = self.trace_ids()
        if ids is not None:
            doc["trace"] = {"id": ids[0]}
            doc["span"] = {"id": ids[1]}
        line.update(doc)
        return orjson.dumps(line, default=str).decode()


def _trace_ids(settings: Settings) -> TraceIds | None:
    if not settings.tracing_enabled:
        return None
    from footfall.tracing import current_ids

    return current_ids


def formatter(settings: Settings, service: str) -> EcsFormatter:
    return EcsFormatter(service, settings.environment, _trace_ids(settings))


def configure(settings: Settings, service: str, *, level: str | None = None) -> None:
    """Send every log record of the process to stderr as ECS JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(settings, service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or settings.log_level)
    # aiohttp's own access log would be a second line per request; the gateway logs its own.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def dict_config(settings: Settings, service: str, *, level: str | None = None) -> dict[str, Any]:
    """The same set-up as a `logging.config.dictConfig` dict (what faust.Worker takes)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "ecs": {
                "()": EcsFormatter,
                "service": service,
                "environment": settings.environment,
                "trace_ids": _trace_ids(settings),
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "ecs",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {"aiohttp.access": {"level": "WARNING"}},
        "root": {"level": level or settings.log_level, "handlers": ["stderr"]},
    }
