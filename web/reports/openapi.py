"""The OpenAPI 3 document of the report API, built from the same names the views check.

Metrics, dimensions, intervals and limits come from footfall.metrics and
web.reports.params / intervals, so the document cannot drift from what the views accept.
Served without a key at /api/v1/openapi.json.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final

import orjson

from footfall.metrics import COMBINABLE_DIMENSIONS, COUNTERS, DIMENSIONS, METRICS
from web.reports.filters import MAX_FILTER_CONDITIONS
from web.reports.intervals import INTERVALS, MAX_RANGE_DAYS
from web.reports.params import (
    DEFAULT_LIMIT,
    EVENT_SCOPED_METRICS,
    MAX_BREAKDOWN_DAYS,
    MAX_LIMIT,
    SESSION_SCOPED_METRICS,
)

VERSION: Final = "1.0.0"
_ERROR_REF: Final = {"$ref": "#/components/schemas/Error"}
_TIME_DOC: Final = (
    "ISO 8601 date (`YYYY-MM-DD`, the first instant of that date in `tz`) or date-time "
    "(with an offset; without one it is read in `tz`). Rounded to whole minutes."
)


def _param(
    name: str, description: str, schema: dict[str, Any], required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


_SITE: Final = {
    "name": "site",
    "in": "path",
    "required": True,
    "description": "Site id (the registry's; the key must be this site's).",
    "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,63}$"},
}
_TZ: Final = _param(
    "tz",
    "IANA time zone of buckets and labels (default: the site's time zone).",
    {"type": "string", "example": "Asia/Kolkata"},
)
_FROM: Final = _param(
    "from", _TIME_DOC + " Default: 7 days before `to`.", {"type": "string", "example": "2026-11-01"}
)
_TO: Final = _param(
    "to",
    _TIME_DOC + " Exclusive. Default: the end of today in `tz`.",
    {"type": "string", "example": "2026-11-08"},
)
_COMBINABLE: Final = ", ".join(COMBINABLE_DIMENSIONS)
_FILTER_SYNTAX: Final = (
    "Conditions `dim==value` or `dim!=value` joined by `;` (a value is taken literally, an "
    "absent one is the empty string; at most " + str(MAX_FILTER_CONDITIONS) + "), on "
    "dimensions of: " + ", ".join(DIMENSIONS) + ". Any number of conditions on one "
    "dimension; conditions on several dimensions when all of them are among "
    + _COMBINABLE
    + " (`country==IN;device==mobile`: rows are kept per combination of those). Other "
    "combinations (`country==IN;browser==Firefox`) are a 400 with `error.code` "
    "`filter_not_supported`, `error.limit.dimensions` 1 and `error.limit.combinable`: no "
    "stored rows answer them exactly."
)
_FILTERS: Final = _param(
    "filters",
    _FILTER_SYNTAX
    + " With a condition on an event-scoped dimension (page, event) the metrics are "
    + ", ".join(EVENT_SCOPED_METRICS)
    + "; otherwise "
    + ", ".join(SESSION_SCOPED_METRICS)
    + ". Buckets (and totals) that meet minutes no source holds the filtered rows for are "
    "null, with `meta.complete` false.",
    {"type": "string", "example": "country==IN;device==mobile"},
)
_BREAKDOWN_FILTERS: Final = _param(
    "filters",
    _FILTER_SYNTAX + " A breakdown takes conditions on its own `dimension` "
    "(`dimension=page&filters=page!=/`) and, when `dimension` is one of "
    + _COMBINABLE
    + ", on the others of them (`dimension=page&filters=country==IN`: the pages of sessions "
    "from IN); with page among the dimension or the conditions, the rows have the metrics "
    "of page rows. Others are a 400 `filter_not_supported`.",
    {"type": "string", "example": "country==IN"},
)
_METRICS: Final = _param(
    "metrics",
    "Comma-separated metrics (default: all that apply): " + ", ".join(METRICS) + ".",
    {"type": "string", "example": "visitors,pageviews"},
)

_NULLABLE_NUMBER: Final = {"type": "number", "nullable": True}
_MISSING: Final = " Null when part of the span has no source (`meta.complete` false)."
_METRIC_PROPERTIES: Final[dict[str, Any]] = {
    "visitors": {
        "type": "integer",
        "nullable": True,
        "description": "Distinct visitors of the span (one merged sketch; null where only "
        "per-minute estimates exist)." + _MISSING,
    },
    **{
        name: {"type": "integer", "nullable": True, "description": _MISSING.strip()}
        for name in COUNTERS
        if name != "duration_sum"
    },
    "duration_sum": {"type": "number", "nullable": True, "description": "Seconds." + _MISSING},
    "revenue": {
        "type": "object",
        "nullable": True,
        "additionalProperties": {"type": "number"},
        "description": "Per currency (ISO 4217 code), in currency units." + _MISSING,
    },
    "bounce_rate": _NULLABLE_NUMBER,
    "avg_duration": {**_NULLABLE_NUMBER, "description": "Seconds per session."},
    "views_per_session": _NULLABLE_NUMBER,
}


def _responses(ok_schema: str) -> dict[str, Any]:
    def error(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}

    return {
        "200": {
            "description": "The report.",
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{ok_schema}"}}
            },
        },
        "400": error(
            "A parameter is not allowed; `error.param` names it, `error.allowed` says what is "
            "(`error.code`: `bad_parameter`, `range_too_large`, `filter_not_supported`)."
        ),
        "401": error("No `Authorization: Bearer <key>`."),
        "403": error("The key is not this site's."),
        "503": error("A source or some partitions cannot be read now; retry (Retry-After)."),
    }


def _meta() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["batch_until", "sampled", "complete", "sources", "warnings"],
        "properties": {
            "batch_until": {
                "type": "string",
                "nullable": True,
                "description": "End of the unbroken run of days the batch layer completed "
                "(answered from its results); later minutes come from the stream layer, "
                "except completed days after a gap, which `sources` lists as hbase. Null: no "
                "batch day yet.",
            },
            "sampled": {"type": "boolean", "description": "The range holds sampled data."},
            "complete": {
                "type": "boolean",
                "description": "False when part of the range has no source for what was "
                "asked (breakdown rows older than the worker tables on days the batch layer "
                "has not completed; `sources` says `unavailable`). A breakdown then leaves "
                "those minutes out; a series has null in the buckets meeting them and in "
                "totals. `warnings` says which spans.",
            },
            "sources": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["from", "to", "source"],
                    "properties": {
                        "from": {"type": "string"},
                        "to": {"type": "string"},
                        "source": {
                            "type": "string",
                            "enum": ["hbase", "tables", "influxdb", "unavailable"],
                            "description": "hbase: batch results; tables: the workers' "
                            "tables; influxdb: stream totals (no breakdown rows); "
                            "unavailable: no source holds what was asked.",
                        },
                    },
                },
            },
            "warnings": {"type": "array", "items": {"type": "string"}},
        },
    }


def build_document() -> dict[str, Any]:
    limits = ", ".join(f"{i}: {d} days" for i, d in MAX_RANGE_DAYS.items())
    series_params = [
        _SITE,
        _FROM,
        _TO,
        _param(
            "interval",
            f"Bucket length (default day). Longest range per interval: {limits}.",
            {"type": "string", "enum": list(INTERVALS)},
        ),
        _TZ,
        _METRICS,
        _FILTERS,
    ]
    breakdown_params = [
        _SITE,
        _param(
            "dimension",
            "The dimension to break down by.",
            {"type": "string", "enum": list(DIMENSIONS)},
            True,
        ),
        _FROM,
        _TO,
        _param(
            "metrics",
            "Comma-separated; the rows are ordered by the first. Page and event rows (and "
            "those of a breakdown with a condition on page) have "
            + ", ".join(EVENT_SCOPED_METRICS)
            + " (default: visitors, pageviews, events); the other dimensions' rows have "
            + ", ".join(SESSION_SCOPED_METRICS)
            + " (default: visitors, sessions, bounce_rate, avg_duration).",
            {"type": "string"},
        ),
        _param(
            "limit",
            f"Most rows (default {DEFAULT_LIMIT}).",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        ),
        _TZ,
        _BREAKDOWN_FILTERS,
    ]
    security: list[dict[str, list[str]]] = [{"siteKey": []}]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Footfall reports",
            "version": VERSION,
            "description": "Time series, breakdowns and realtime numbers of a site, served by "
            "any stream worker. Metric definitions: spec/metrics.md.",
        },
        "paths": {
            "/api/v1/sites/{site}/timeseries": {
                "get": {
                    "operationId": "timeseries",
                    "summary": "Metrics per bucket of a range, and over the whole range.",
                    "parameters": series_params,
                    "security": security,
                    "responses": _responses("Timeseries"),
                }
            },
            "/api/v1/sites/{site}/breakdown": {
                "get": {
                    "operationId": "breakdown",
                    "summary": "Top values of a dimension over a range "
                    f"(at most {MAX_BREAKDOWN_DAYS} days).",
                    "parameters": breakdown_params,
                    "security": security,
                    "responses": _responses("Breakdown"),
                }
            },
            "/api/v1/sites/{site}/realtime": {
                "get": {
                    "operationId": "realtime",
                    "summary": "Visitors of the last 5 minutes, "
                    "pageviews per minute of the last 30.",
                    "parameters": [_SITE, _TZ],
                    "security": security,
                    "responses": _responses("Realtime"),
                }
            },
        },
        "components": {
            "securitySchemes": {
                "siteKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The site's API key (`footfall sites add` prints it once).",
                }
            },
            "schemas": {
                "Metrics": {"type": "object", "properties": _METRIC_PROPERTIES},
                "Bucket": {
                    "allOf": [
                        {
                            "type": "object",
                            "required": ["t"],
                            "properties": {
                                "t": {
                                    "type": "string",
                                    "description": "Bucket start, ISO 8601 with the zone's offset.",
                                }
                            },
                        },
                        {"$ref": "#/components/schemas/Metrics"},
                    ]
                },
                "Meta": _meta(),
                "Timeseries": {
                    "type": "object",
                    "required": ["site", "interval", "tz", "results", "totals", "meta"],
                    "properties": {
                        "site": {"type": "string"},
                        "interval": {"type": "string", "enum": list(INTERVALS)},
                        "tz": {"type": "string"},
                        "from": {"type": "string"},
                        "to": {"type": "string"},
                        "filters": {"type": "string", "nullable": True},
                        "results": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Bucket"},
                        },
                        "totals": {"$ref": "#/components/schemas/Metrics"},
                        "meta": {"$ref": "#/components/schemas/Meta"},
                    },
                },
                "Breakdown": {
                    "type": "object",
                    "required": ["site", "dimension", "tz", "results", "meta"],
                    "properties": {
                        "site": {"type": "string"},
                        "dimension": {"type": "string", "enum": list(DIMENSIONS)},
                        "tz": {"type": "string"},
                        "from": {"type": "string"},
                        "to": {"type": "string"},
                        "results": {
                            "type": "array",
                            "items": {
                                "allOf": [
                                    {
                                        "type": "object",
                                        "required": ["value"],
                                        "properties": {
                                            "value": {
                                                "type": "string",
                                                "description": "The value; empty when absent.",
                                            }
                                        },
                                    },
                                    {"$ref": "#/components/schemas/Metrics"},
                                ]
                            },
                        },
                        "meta": {"$ref": "#/components/schemas/Meta"},
                    },
                },
                "Realtime": {
                    "type": "object",
                    "required": ["site", "tz", "at", "visitors", "pageviews", "meta"],
                    "properties": {
                        "site": {"type": "string"},
                        "tz": {"type": "string"},
                        "at": {"type": "string"},
                        "visitors": {"type": "integer", "nullable": True},
                        "visitors_minutes": {"type": "integer"},
                        "pageviews": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["t", "pageviews"],
                                "properties": {
                                    "t": {"type": "string"},
                                    "pageviews": {"type": "integer"},
                                },
                            },
                        },
                        "meta": {
                            "type": "object",
                            "properties": {"sampled": {"type": "boolean"}},
                        },
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                                "param": {"type": "string"},
                                "allowed": {"type": "string"},
                                "limit": {"type": "object"},
                            },
                        }
                    },
                },
            },
        },
    }


@lru_cache(maxsize=1)
def document_bytes() -> bytes:
    return orjson.dumps(build_document())
