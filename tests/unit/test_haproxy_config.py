"""The HAProxy policy is the same in the development copy (haproxy/haproxy.cfg, which the
failover test runs) and in the chart's template: retries on connection failures only,
health checks on /readyz, the same timeouts, and a server timeout above the gateway's
publish deadline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from footfall.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT / "haproxy" / "haproxy.cfg"
CHART = ROOT / "helm" / "footfall"
TEMPLATE = CHART / "templates" / "haproxy" / "configmap.yaml"

POLICY = (
    "option redispatch 1",
    "retry-on conn-failure",
    "option forwardfor",
    "option httpchk",
    "http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host haproxy",
    "http-check expect status 200",
    "observe layer4 error-limit 1 on-error mark-down",
    "option dontlog-normal",
    "monitor-uri /healthz",
    "http-request use-service prometheus-exporter if { path /metrics }",
)


def directives(text: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [re.sub(r"\s+", " ", line) for line in lines if line]


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m)?", value)
    assert match, value
    number, unit = int(match[1]), match[2] or "ms"  # HAProxy's default unit is ms
    return number * {"ms": 0.001, "s": 1, "m": 60}[unit]


def dev_timeouts() -> dict[str, str]:
    found = {}
    for line in directives(DEV.read_text()):
        if line.startswith("timeout "):
            _, name, value = line.split(" ")
            found[name] = value
    return found


@pytest.mark.parametrize("directive", POLICY)
def test_policy_is_in_both_copies(directive: str) -> None:
    assert any(directive in line for line in directives(DEV.read_text())), "dev copy"
    assert any(directive in line for line in directives(TEMPLATE.read_text())), "chart"


@pytest.mark.parametrize("path", [DEV, TEMPLATE], ids=["dev", "chart"])
def test_no_retry_of_a_request_a_gateway_may_have_published(path: Path) -> None:
    retry_on = [line for line in directives(path.read_text()) if line.startswith("retry-on")]
    assert retry_on == ["retry-on conn-failure"]


def test_chart_defaults_match_the_dev_timeouts() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())["haproxy"]["config"]
    chart = values["timeouts"]
    dev = dev_timeouts()
    names = {
        "connect": "connect",
        "client": "client",
        "http-request": "httpRequest",
        "http-keep-alive": "httpKeepAlive",
        "queue": "queue",
        "server": "server",
    }
    for dev_name, chart_name in names.items():
        assert seconds(dev[dev_name]) == seconds(chart[chart_name]), dev_name
    retries = [line for line in directives(DEV.read_text()) if line.startswith("retries ")]
    assert retries == [f"retries {values['retries']}"]


def test_server_timeout_is_above_the_gateway_publish_deadline() -> None:
    deadline = get_settings().gateway_publish_timeout_s
    assert seconds(dev_timeouts()["server"]) > deadline
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart_timeout = seconds(values["haproxy"]["config"]["timeouts"]["server"])
    assert chart_timeout > values["gateway"]["publishTimeoutSeconds"]
    assert values["gateway"]["publishTimeoutSeconds"] == deadline


def test_dev_copy_listens_on_loopback_only() -> None:
    binds = [line for line in directives(DEV.read_text()) if line.startswith("presetenv")]
    addresses = [line.split(" ")[2] for line in binds]
    assert addresses
    assert all(a.startswith("127.0.0.1:") for a in addresses), addresses
