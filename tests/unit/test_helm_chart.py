"""The chart README's parameter tables are the ones bitnami's readme-generator-for-helm
makes from the `## @param` lines of values.yaml (which also fails on a value without
metadata). The full chart checks (lint, render, kubeconform) are scripts/check-helm."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_chart_readme_parameters_are_current() -> None:
    if shutil.which("npm") is None:
        pytest.fail("npm not found: the chart README check needs Node.js and npm")
    result = subprocess.run(
        [str(ROOT / "scripts" / "helm-readme"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
