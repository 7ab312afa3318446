"""The `footfall` command: one entry point, one sub-command module per concern."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module exposes `register(subparsers)` adding its sub-command with `func` set.
# Imported lazily so `footfall stack status` does not pay for Spark or Faust imports.
_COMMAND_MODULES = (
    "footfall.stack.commands",
    "footfall.sites.commands",
    "web.gateway.commands",
    "agents.commands",
    "batch.commands",
    "footfall.demo",
    "footfall.native",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="footfall", description="Footfall: web analytics for merchants."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a part of the system not built yet in this checkout
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
