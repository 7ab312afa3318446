"""Standalone Kubernetes JSON schemas for kubeconform, made offline from a PyPI package.

kubeconform fetches its schemas from GitHub by default, which CI cannot reach. The PyPI
package `kubernetes-validate` ships the same schemas (generated from Kubernetes' OpenAPI
spec) for every Kubernetes minor version, but in a "local" layout: each kind's file has an
`$id` under https://kubernetes.io/api/ and `$ref`s into one shared `_definitions.json`,
which kubeconform would try to download. This writes, for every kind, a standalone file
holding only the definitions that kind reaches, with refs made local (`#/$defs/...`) and
no `$id`: the layout kubeconform reads with
`-schema-location DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json`.

Usage: python scripts/k8s_schemas.py SOURCE_DIR OUT_DIR
(SOURCE_DIR: `kubernetes_validate/kubernetes-json-schema/v1.NN.0-local-strict`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DEFINITIONS = "_definitions.json"
SHARED_PREFIX = "/api/_definitions.json#/$defs/"
LOCAL_PREFIX = "#/$defs/"


def _localize(node: Any, reached: set[str]) -> Any:
    """A copy of `node` with shared refs made local; the names it refers to go in `reached`."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                name = value.removeprefix(SHARED_PREFIX).removeprefix(LOCAL_PREFIX)
                if name == value:
                    raise ValueError(f"unexpected $ref {value!r}")
                reached.add(name)
                out[key] = LOCAL_PREFIX + name
            else:
                out[key] = _localize(value, reached)
        return out
    if isinstance(node, list):
        return [_localize(item, reached) for item in node]
    return node


def standalone(kind_schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """The kind's schema with the definitions it reaches (transitively) embedded."""
    reached: set[str] = set()
    schema: dict[str, Any] = _localize(
        {k: v for k, v in kind_schema.items() if k != "$id"}, reached
    )
    defs: dict[str, Any] = {}
    pending = sorted(reached)
    while pending:
        name = pending.pop()
        if name in defs:
            continue
        more: set[str] = set()
        defs[name] = _localize(definitions[name], more)
        pending.extend(sorted(more - defs.keys()))
    if defs:
        schema["$defs"] = dict(sorted(defs.items()))
    return schema


def convert(source: Path, out: Path) -> int:
    """Write a standalone schema for every kind file of `source` into `out`; return the count."""
    definitions = json.loads((source / DEFINITIONS).read_text())["$defs"]
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(source.glob("*.json")):
        if path.name in (DEFINITIONS, "all.json"):
            continue
        schema = standalone(json.loads(path.read_text()), definitions)
        (out / path.name).write_text(json.dumps(schema, separators=(",", ":")))
        count += 1
    return count


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    count = convert(Path(argv[0]), Path(argv[1]))
    print(f"k8s_schemas: {count} standalone schemas in {argv[1]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
