"""footfall.worker_probes: readiness waits for every registered check."""

from __future__ import annotations

from footfall import worker_probes


def test_a_failing_check_is_waited_for_until_it_passes() -> None:
    state = {"loaded": False}
    worker_probes.require_for_readiness("test_registry", lambda: state["loaded"])
    try:
        assert "test_registry" in worker_probes.waiting_for()
        state["loaded"] = True
        assert "test_registry" not in worker_probes.waiting_for()
    finally:
        worker_probes._READINESS_CHECKS.pop("test_registry", None)
