"""The counting core compiled with mypyc, when it is built, and the guard against a stale build.

The modules in NATIVE_MODULES are plain typed Python. `footfall native build`
(scripts/bootstrap runs it) compiles them with mypyc into extension modules beside their
sources: the core counts 1.3-1.6 times as fast, the worker 1.2-1.3 times (bench/stream.py
prints which one ran). An extension module shadows its .py on import, so an edited source
that was not rebuilt would silently run the old code: the build records a digest of each
source (`footfall/native.json`, not in git), and when the `footfall` package is imported
(first: `tables` imports it), if any source differs from its record, or
`FOOTFALL_PURE_PYTHON` is set, every one of them is imported from its source instead (with
one warning for a stale build). All or none: the compiled modules reach into each other's
compiled classes.

No compiler, no mypy or a failed build leave the sources in use: the same code, slower.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

NATIVE_MODULES = (
    "footfall.visitors",
    "tables.codec",
    "tables.sessions",
    "tables.buckets",
    "tables.counting",
)
#: mypyc's group: its shared library is the module `footfall.counting_core__mypyc`, inside
#: the package so that it imports wherever the package does (an editable install maps the
#: packages, not the project root).
GROUP = "footfall.counting_core"
PURE_PYTHON_ENV = "FOOTFALL_PURE_PYTHON"
ROOT = Path(__file__).resolve().parents[1]
RECORD = Path(__file__).with_name("native.json")
_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"


def source_of(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def extension_of(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")).with_name(module.rsplit(".", 1)[1] + _SUFFIX)


def digests() -> dict[str, str]:
    """The SHA-256 of each compiled module's source as it is now."""
    return {m: hashlib.sha256(source_of(m).read_bytes()).hexdigest() for m in NATIVE_MODULES}


def built() -> bool:
    """Whether every compiled module is there."""
    return all(extension_of(m).exists() for m in NATIVE_MODULES)


def stale_modules() -> list[str]:
    """Modules whose source changed since the build (all of them without a record)."""
    try:
        recorded = json.loads(RECORD.read_text())
    except (OSError, ValueError):
        return list(NATIVE_MODULES)
    return [m for m, digest in digests().items() if recorded.get(m) != digest]


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds the compiled modules' sources before the path finder finds their extensions."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in NATIVE_MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, source_of(fullname))


def activate() -> bool:
    """Choose compiled modules or sources before any is imported; True if compiled."""
    if not built():
        return False
    pure = os.environ.get(PURE_PYTHON_ENV, "").lower() in ("1", "true", "yes")
    stale = [] if pure else stale_modules()
    if pure or stale:
        if stale:
            log.warning(
                "compiled %s out of date with its source: running the sources "
                "(rebuild with `footfall native build`)",
                ", ".join(stale),
            )
        if not any(isinstance(finder, _SourcesFirst) for finder in sys.meta_path):
            sys.meta_path.insert(0, _SourcesFirst())
        return False
    return True


def compiled() -> bool:
    """Whether the counting core running in this process is the compiled one."""
    counting = sys.modules.get("tables.counting")
    return counting is not None and not str(getattr(counting, "__file__", "")).endswith(".py")


def build() -> None:
    """Compile NATIVE_MODULES in place with mypyc, then record their sources' digests."""
    from mypyc.build import mypycify
    from setuptools import setup  # type: ignore[import-untyped]

    sources = [str(source_of(m).relative_to(ROOT)) for m in NATIVE_MODULES]
    before = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="footfall-native-") as scratch:
        os.chdir(ROOT)  # mypycify takes paths relative to the project
        try:
            setup(
                name="footfall-native",
                packages=[],
                ext_modules=mypycify(sources, opt_level="3", group_name=GROUP),
                script_args=[
                    "--quiet",
                    "build_ext",
                    "--inplace",
                    "--build-temp",
                    f"{scratch}/temp",
                    "--build-lib",
                    f"{scratch}/lib",
                ],
            )
        finally:
            os.chdir(before)
    RECORD.write_text(json.dumps(digests(), indent=1, sort_keys=True) + "\n")


def clean() -> None:
    """Remove the compiled modules: the sources run again."""
    for module in NATIVE_MODULES:
        extension_of(module).unlink(missing_ok=True)
    for library in ROOT.joinpath(*GROUP.split(".")[:-1]).glob(
        f"{GROUP.rsplit('.', 1)[-1]}__mypyc*{_SUFFIX}"
    ):
        library.unlink()
    RECORD.unlink(missing_ok=True)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "native", help="build, remove or check the compiled counting core (mypyc)"
    )
    parser.add_argument("action", choices=("build", "clean", "status"), nargs="?", default="status")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.action == "build":
        if built() and not stale_modules():
            print("compiled counting core: up to date")
            return 0
        build()
        print(f"compiled counting core: built ({', '.join(NATIVE_MODULES)})")
    elif args.action == "clean":
        clean()
        print("compiled counting core: removed")
    elif not built():
        print("compiled counting core: not built (the sources run)")
    else:
        stale = stale_modules()
        print(f"compiled counting core: {'stale: ' + ', '.join(stale) if stale else 'up to date'}")
    return 0
