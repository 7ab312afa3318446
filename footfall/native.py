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

The build also compiles the Rust crate in native/ into `footfall._core` (with cargo, its
build directory under the cache directory): the counter with its sessions and minute
buckets in native memory (tables/core.py). It has a digest of its own in the record, over
the crate's files: a stale or missing `_core`, or `FOOTFALL_PURE_PYTHON`, leaves the
Python core counting. No cargo leaves it too.
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
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

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
#: The Rust crate, its module, and its key in the record.
CRATE = ROOT / "native"
CORE_MODULE = "footfall._core"
CORE_RECORD_KEY = "native/ (Rust)"


def source_of(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def extension_of(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")).with_name(module.rsplit(".", 1)[1] + _SUFFIX)


def digests() -> dict[str, str]:
    """The SHA-256 of each compiled module's source as it is now."""
    return {m: hashlib.sha256(source_of(m).read_bytes()).hexdigest() for m in NATIVE_MODULES}


#: The Python whose rules and formats the crate mirrors: an edit there makes it stale too,
#: so that the Python core counts (with a warning) until it is rebuilt and checked again.
MIRRORED = (
    "footfall/metrics.py",
    "footfall/visitors.py",
    *(f"tables/{m}.py" for m in ("codec", "sessions", "buckets", "counting")),
)


def crate_digest() -> str:
    """The SHA-256 over the crate's files and the Python it mirrors, as they are now."""
    digest = hashlib.sha256()
    files = [CRATE / "Cargo.toml", CRATE / "Cargo.lock", *sorted((CRATE / "src").glob("*.rs"))]
    for path in [*files, *(ROOT / m for m in MIRRORED)]:
        if path.exists():
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _pure_python() -> bool:
    return os.environ.get(PURE_PYTHON_ENV, "").lower() in ("1", "true", "yes")


def core() -> ModuleType | None:
    """`footfall._core` if it is built from the crate as it is now, and wanted; else None."""
    if _pure_python() or not extension_of(CORE_MODULE).exists():
        return None
    if core_stale():
        log.warning(
            "footfall._core out of date with native/: the Python core counts "
            "(rebuild with `footfall native build`)"
        )
        return None
    try:
        return importlib.import_module(CORE_MODULE)
    except ImportError as exc:  # built for another interpreter, or damaged
        log.warning("footfall._core does not import (%s): the Python core counts", exc)
        return None


def build_core(cache_dir: Path) -> bool:
    """Compile native/ with cargo into footfall/_core; False (and why, logged) if it cannot."""
    cargo = shutil.which("cargo")
    if cargo is None:
        log.warning("no cargo: footfall._core not built, the Python core counts")
        return False
    target = cache_dir / "cargo-target"
    # PYO3_PYTHON: the interpreter the module is for, whatever python3 is on PATH.
    env = {**os.environ, "CARGO_TARGET_DIR": str(target), "PYO3_PYTHON": sys.executable}
    manifest = str(CRATE / "Cargo.toml")
    done = subprocess.run(
        [cargo, "build", "--release", "--quiet", "--locked", "--manifest-path", manifest],
        env=env,
        check=False,
    )
    if done.returncode != 0:
        log.warning("cargo build failed: footfall._core not built, the Python core counts")
        return False
    library = target / "release" / "lib_core.so"
    destination = extension_of(CORE_MODULE)
    partial = destination.with_suffix(".partial")
    shutil.copyfile(library, partial)
    partial.replace(destination)  # a running process keeps the file it mapped
    return True


def built() -> bool:
    """Whether every compiled module is there."""
    return all(extension_of(m).exists() for m in NATIVE_MODULES)


def _record() -> dict[str, str]:
    try:
        recorded: dict[str, str] = json.loads(RECORD.read_text())
    except (OSError, ValueError):
        return {}
    return recorded


def stale_modules() -> list[str]:
    """Modules whose source changed since the build (all of them without a record)."""
    recorded = _record()
    return [m for m, digest in digests().items() if recorded.get(m) != digest]


def core_stale() -> bool:
    """Whether footfall._core is missing or older than the crate."""
    return (
        not extension_of(CORE_MODULE).exists() or _record().get(CORE_RECORD_KEY) != crate_digest()
    )


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
    pure = _pure_python()
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


def build(cache_dir: Path) -> None:
    """Compile NATIVE_MODULES in place with mypyc and native/ with cargo; record digests."""
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
    record: dict[str, str] = digests()
    if build_core(cache_dir):
        record[CORE_RECORD_KEY] = crate_digest()
    RECORD.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


def clean() -> None:
    """Remove the compiled modules: the sources run again."""
    for module in NATIVE_MODULES:
        extension_of(module).unlink(missing_ok=True)
    for library in ROOT.joinpath(*GROUP.split(".")[:-1]).glob(
        f"{GROUP.rsplit('.', 1)[-1]}__mypyc*{_SUFFIX}"
    ):
        library.unlink()
    extension_of(CORE_MODULE).unlink(missing_ok=True)
    RECORD.unlink(missing_ok=True)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "native", help="build, remove or check the compiled counting core (mypyc)"
    )
    parser.add_argument("action", choices=("build", "clean", "status"), nargs="?", default="status")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.action == "build":
        if built() and not stale_modules() and not core_stale():
            print("compiled counting core: up to date")
            return 0
        from footfall.settings import get_settings

        build(get_settings().cache_dir)
        rust = "" if core_stale() else f", {CORE_MODULE}"
        print(f"compiled counting core: built ({', '.join(NATIVE_MODULES)}{rust})")
    elif args.action == "clean":
        clean()
        print("compiled counting core: removed")
    elif not built():
        print("compiled counting core: not built (the sources run)")
    else:
        stale = stale_modules() + ([CORE_MODULE] if core_stale() else [])
        print(f"compiled counting core: {'stale: ' + ', '.join(stale) if stale else 'up to date'}")
    return 0
