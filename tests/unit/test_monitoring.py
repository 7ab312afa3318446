"""Alerts and metric names: the Prometheus rules and the Datadog monitors name the same
metrics, every one of them defined once in footfall.observability; the gateway's metrics
page carries what the catalogue says."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from footfall import observability
from footfall.observability import ALL_METRICS, GATEWAY_METRICS, MetricSpec

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "prometheus" / "rules.yml"
MONITORS = ROOT / "monitoring" / "datadog"

PROM_NAME = re.compile(r"\bfootfall_[a-z0-9_]+\b")
STATSD_NAME = re.compile(r"\bfootfall\.[a-z0-9_.]+[a-z0-9_]")


def alert_rules() -> dict[str, list[str]]:
    """Alert name -> the expressions of its rules (an alert may have several rules)."""
    alerts: dict[str, list[str]] = {}
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                alerts.setdefault(rule["alert"], []).append(rule["expr"])
    return alerts


def monitors() -> dict[str, dict[str, Any]]:
    """Alert name (from the monitor's `alert:` tag) -> the Datadog monitor definition."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(MONITORS.glob("*.json")):
        monitor = json.loads(path.read_text())
        names = [t.split(":", 1)[1] for t in monitor.get("tags", []) if t.startswith("alert:")]
        assert len(names) == 1, f"{path.name}: exactly one alert:<AlertName> tag"
        assert names[0] not in found, f"{path.name}: a second monitor for {names[0]}"
        found[names[0]] = monitor
    return found


def prometheus_metrics(expressions: list[str]) -> set[str]:
    specs = observability.by_series_name()
    names = {name for expr in expressions for name in PROM_NAME.findall(expr)}
    unknown = names - specs.keys()
    assert not unknown, f"rules name metrics not in footfall/observability.py: {unknown}"
    return {specs[name].name for name in names}


def datadog_metrics(query: str) -> set[str]:
    specs = observability.by_statsd_name()
    names = set(STATSD_NAME.findall(query))
    unknown = names - specs.keys()
    assert not unknown, f"monitor names metrics not in footfall/observability.py: {unknown}"
    return {specs[name].name for name in names}


def test_every_alert_has_one_datadog_monitor_and_no_monitor_is_extra() -> None:
    assert set(monitors()) == set(alert_rules())


@pytest.mark.parametrize("alert", sorted(alert_rules()))
def test_monitor_names_the_same_metrics_as_the_rule(alert: str) -> None:
    from_rules = prometheus_metrics(alert_rules()[alert])
    from_monitor = datadog_metrics(monitors()[alert]["query"])
    assert from_rules, f"{alert}: its rules name no footfall metric"
    assert from_monitor == from_rules, f"{alert}: Datadog {from_monitor} vs Prometheus {from_rules}"


@pytest.mark.parametrize("alert", sorted(alert_rules()))
def test_monitor_is_a_complete_definition(alert: str) -> None:
    monitor = monitors()[alert]
    assert monitor["type"] in ("query alert", "metric alert")
    assert monitor["name"].startswith("[footfall] ")
    assert alert in monitor["message"]
    assert "thresholds" in monitor["options"]
    assert "service:footfall" in monitor["tags"]


def test_catalogue_names_are_unique_and_well_formed() -> None:
    names = [spec.name for spec in ALL_METRICS]
    assert len(names) == len(set(names))
    for spec in ALL_METRICS:
        assert re.fullmatch(r"footfall_(gateway|worker|batch)_[a-z0-9_]+", spec.name), spec.name
        assert not spec.name.endswith("_total"), f"{spec.name}: counters are named without _total"
        assert spec.help.endswith("."), spec.name
        assert spec.statsd_name.startswith(f"footfall.{spec.name.split('_')[1]}.")


def test_the_gateway_page_carries_the_catalogue() -> None:
    """web/gateway/metrics.py defines its metrics itself for now: the same names, kinds,
    labels and help as the catalogue, which this keeps true."""
    from web.gateway.metrics import GatewayMetrics

    registry = GatewayMetrics().registry
    families = {family.name: family for family in registry.collect()}
    for spec in GATEWAY_METRICS:
        family = families.get(spec.name)
        assert family is not None, f"{spec.name} is not on the gateway's page"
        assert family.type == spec.kind, spec.name
        assert family.documentation == spec.help, spec.name


def test_specs_create_their_kind_of_metric_only() -> None:
    registry = CollectorRegistry()
    counter = MetricSpec("footfall_worker_x", "X.", "counter", ("a",))
    counter.counter(registry).labels("1").inc()
    with pytest.raises(TypeError):
        counter.gauge(registry)
    assert counter.series_names == ("footfall_worker_x_total",)
    histogram = MetricSpec("footfall_worker_y_seconds", "Y.", "histogram")
    assert histogram.series_names == (
        "footfall_worker_y_seconds_bucket",
        "footfall_worker_y_seconds_sum",
        "footfall_worker_y_seconds_count",
    )
