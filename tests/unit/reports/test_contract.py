"""The OpenAPI document is valid and matches the views; the vendored chart library is current."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import orjson
from openapi_spec_validator import validate

from footfall.metrics import DIMENSIONS, METRICS
from web.reports import openapi
from web.reports.handlers import ROUTES
from web.reports.intervals import INTERVALS
from web.reports.params import BREAKDOWN_PARAMS, REALTIME_PARAMS, SERIES_PARAMS

HERE = Path(__file__).resolve().parents[3] / "web" / "reports"


def test_openapi_document_is_valid() -> None:
    document = orjson.loads(openapi.document_bytes())
    validate(document)


def test_openapi_document_matches_the_views() -> None:
    document = openapi.build_document()
    served = {path for method, path, _ in ROUTES if path.startswith("/api/v1/sites/")}
    assert set(document["paths"]) == served
    accepted = {
        "timeseries": SERIES_PARAMS,
        "breakdown": BREAKDOWN_PARAMS,
        "realtime": REALTIME_PARAMS,
    }
    for path, item in document["paths"].items():
        op = item["get"]
        names = {p["name"] for p in op["parameters"] if p["in"] == "query"}
        assert names == accepted[op["operationId"]], path
    params = {
        p["name"]: p
        for p in document["paths"]["/api/v1/sites/{site}/timeseries"]["get"]["parameters"]
    }
    assert params["interval"]["schema"]["enum"] == list(INTERVALS)
    assert all(metric in params["metrics"]["description"] for metric in METRICS)
    breakdown = document["paths"]["/api/v1/sites/{site}/breakdown"]["get"]["parameters"]
    assert next(p for p in breakdown if p["name"] == "dimension")["schema"]["enum"] == list(
        DIMENSIONS
    )
    metric_props = document["components"]["schemas"]["Metrics"]["properties"]
    assert set(metric_props) == set(METRICS)


def test_vendored_chart_library_is_the_locked_one() -> None:
    lock = json.loads((HERE / "package-lock.json").read_text())["packages"]["node_modules/uplot"]
    package = json.loads((HERE / "package.json").read_text())
    record = json.loads((HERE / "assets" / "vendor" / "VENDOR.json").read_text())
    assert package["dependencies"]["uplot"] == lock["version"] == record["version"]
    assert record["integrity"] == lock["integrity"]
    for name, digest in record["files"].items():
        vendored = (HERE / "assets" / "vendor" / name).read_bytes()
        assert hashlib.sha256(vendored).hexdigest() == digest, f"{name}: run `npm run vendor`"
        installed = HERE / "node_modules" / "uplot" / "dist" / name
        if installed.exists():  # after `npm ci`: the committed copy is what npm installed
            assert installed.read_bytes() == vendored, f"{name}: run `npm run vendor`"
    head = (HERE / "assets" / "vendor" / "uPlot.iife.min.js").read_text()[:100]
    assert f"(v{lock['version']})" in head
