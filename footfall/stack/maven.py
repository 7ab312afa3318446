"""Resolve Java components from Maven Central into a cached lib directory, once."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from footfall.stack.base import StackError, log_tail


def _dependency_xml(coordinate: str, exclusions: Sequence[str]) -> str:
    group, artifact, version = coordinate.split(":")
    excl = "".join(
        "<exclusion><groupId>{}</groupId><artifactId>{}</artifactId></exclusion>".format(
            *map(escape, item.split(":"))
        )
        for item in exclusions
    )
    return (
        f"<dependency><groupId>{escape(group)}</groupId><artifactId>{escape(artifact)}</artifactId>"
        f"<version>{escape(version)}</version><exclusions>{excl}</exclusions></dependency>"
    )


def resolve(
    cache_dir: Path,
    label: str,
    coordinates: Sequence[str],
    exclusions: Sequence[str] = (),
) -> Path:
    """Return a directory holding the jars of `coordinates` and their runtime dependencies.

    The directory is keyed by a hash of the request, so a change of version or exclusion
    resolves afresh while reruns reuse the cache (and Maven's own ~/.m2).
    """
    request = "\n".join([*coordinates, "--", *exclusions])
    digest = hashlib.sha256(request.encode()).hexdigest()[:12]
    target = cache_dir / "maven" / f"{label}-{digest}"
    lib = target / "lib"
    done = target / ".resolved"
    if done.exists():
        return lib
    if shutil.which("mvn") is None:
        raise StackError(f"{label}: Maven (mvn) is not on PATH; it fetches the jars")
    target.mkdir(parents=True, exist_ok=True)
    deps = "".join(_dependency_xml(c, exclusions) for c in coordinates)
    (target / "pom.xml").write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        f"<groupId>footfall.stack</groupId><artifactId>{escape(label)}</artifactId>"
        f"<version>1</version><packaging>pom</packaging><dependencies>{deps}</dependencies>"
        "</project>"
    )
    log = target / "resolve.log"
    with log.open("wb") as out:
        result = subprocess.run(
            [
                "mvn",
                "-B",
                "-q",
                "-f",
                str(target / "pom.xml"),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={lib}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        raise StackError(
            f"{label}: Maven could not resolve {', '.join(coordinates)}\n"
            f"--- tail of {log} ---\n{log_tail(log)}"
        )
    done.write_text(request)
    return lib


def java_bin(java_home: Path | None) -> str:
    """The java executable to run services with."""
    if java_home is not None:
        return str(java_home / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise StackError("java is not on PATH; set FOOTFALL_JAVA_HOME")
    return found
