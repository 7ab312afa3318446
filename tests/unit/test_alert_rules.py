"""The Prometheus alert rules are valid and pass their unit tests, by promtool (Debian's
`prometheus` package, installed by scripts/bootstrap)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "prometheus" / "rules.yml"
RULE_TESTS = ROOT / "monitoring" / "prometheus" / "tests" / "rules_test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool not found: install Debian's `prometheus` package (scripts/bootstrap)")
    result = subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=120, check=False
    )
    print(result.stdout + result.stderr)
    return result


def test_rules_are_valid() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
