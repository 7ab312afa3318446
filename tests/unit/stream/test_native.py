"""The compiled counting core (footfall/native.py): same bytes as the sources, never stale."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from footfall import native
from footfall.visitors import SketchConfig

ROOT = Path(__file__).resolve().parents[3]


def _python_says(args: list[str], cwd: Path, *, pure: bool = False) -> str:
    """The last line a fresh interpreter prints: compiled core, or sources with `pure`."""
    env = {k: v for k, v in os.environ.items() if k not in (native.PURE_PYTHON_ENV, "PYTHONPATH")}
    if pure:
        env[native.PURE_PYTHON_ENV] = "1"
    out = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    )
    return out.stdout.splitlines()[-1]


def _count_in_subprocess(pure: bool) -> dict[str, object]:
    said = _python_says(["-m", "tests.unit.stream.native_digest"], ROOT, pure=pure)
    result: dict[str, object] = orjson.loads(said)
    return result


def test_the_compiled_core_writes_the_same_records_as_the_sources() -> None:
    # scripts/bootstrap builds it; a failed build would leave the sources running, slower.
    assert native.built(), "the counting core is not compiled: run `footfall native build`"
    assert native.stale_modules() == [], "the compiled core is stale: `footfall native build`"
    compiled = _count_in_subprocess(pure=False)
    sources = _count_in_subprocess(pure=True)
    assert compiled["compiled"] is True
    assert compiled["rust"] is True, "footfall._core is not built: `footfall native build`"
    assert sources["compiled"] is False
    assert sources["rust"] is False
    assert compiled["digest"] == sources["digest"]


def test_the_compiled_core_imports_outside_the_project_directory(tmp_path: Path) -> None:
    # Spark's Python workers and Airflow's tasks start elsewhere; an editable install maps
    # the packages only, so mypyc's shared library must live inside one.
    assert native.built(), "the counting core is not compiled: run `footfall native build`"
    probe = "import tables.counting, footfall.native as n; print(n.compiled())"
    assert _python_says(["-c", probe], tmp_path) == "True"


def test_a_source_changed_since_the_build_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "native.json"
    digests = native.digests()
    digests["tables.buckets"] = "0" * 64
    record.write_text(json.dumps(digests))
    monkeypatch.setattr(native, "RECORD", record)
    assert native.stale_modules() == ["tables.buckets"]
    record.unlink()
    assert native.stale_modules() == list(native.NATIVE_MODULES)


def test_a_crate_changed_since_the_build_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "native.json"
    monkeypatch.setattr(native, "RECORD", record)
    record.write_text(json.dumps({native.CORE_RECORD_KEY: native.crate_digest()}))
    assert not native.core_stale()
    assert native.core() is not None
    record.write_text(json.dumps({native.CORE_RECORD_KEY: "0" * 64}))
    assert native.core_stale()
    assert native.core() is None  # the Python core counts, with a warning


def test_the_sources_finder_serves_only_the_compiled_modules_sources() -> None:
    finder = native._SourcesFirst()
    spec = finder.find_spec("tables.counting", None)
    assert spec is not None
    assert spec.origin == str(ROOT / "tables" / "counting.py")
    assert finder.find_spec("tables.io", None) is None


def test_a_sketch_config_travels_to_spark_executors() -> None:
    # Spark pickles the batch job's closures; a compiled frozen dataclass needs __reduce__.
    config = SketchConfig(12, "HLL_4")
    assert pickle.loads(pickle.dumps(config)) == config
