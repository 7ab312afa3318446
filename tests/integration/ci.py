"""What a test may skip on a developer's machine but must fail on in CI."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(ok: bool, why: str) -> None:
    """Skip (fail under CI=true) when a tool a test needs, like chromium, is missing."""
    if ok:
        return
    if in_ci():
        pytest.fail(f"{why} (CI must run this test)")
    pytest.skip(why)
