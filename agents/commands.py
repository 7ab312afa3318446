"""`footfall worker`: run the stream layer (agents, tables, sinks) until SIGTERM/SIGINT.

A worker that was killed (SIGKILL, OOM, power loss) may leave local RocksDB writes whose
changelog messages never reached Kafka; counting from such a state could skip events that
the changelog does not hold. So the worker keeps a marker file while it runs, removes it
only after a clean stop, and when it finds the marker at start it wipes its local tables
and rebuilds them from the changelog topics (docs/stream.md, "Crashes").
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from footfall.settings import Settings, get_settings
from footfall.topics import ensure_topic

log = logging.getLogger(__name__)

MARKER_NAME = "RUNNING"


def marker_path(settings: Settings) -> Path:
    from footfall.app import app_datadir

    return app_datadir(settings) / MARKER_NAME


def prepare_local_state(settings: Settings, tabledir: Path) -> bool:
    """Wipe `tabledir` when the last run did not stop cleanly; True when it did wipe."""
    marker = marker_path(settings)
    unclean = marker.exists()
    if unclean and tabledir.exists():
        shutil.rmtree(tabledir)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{os.getpid()}\n")
    return unclean


def run_worker(args: argparse.Namespace) -> int:
    settings = get_settings()
    import faust

    from footfall.app import app

    # Faust subscribes only to topics that exist; the gateway may not have made it yet.
    asyncio.run(
        ensure_topic(
            settings.kafka_bootstrap, settings.events_topic, partitions=settings.topic_partitions
        )
    )
    tabledir = Path(app.conf.tabledir)
    if prepare_local_state(settings, tabledir):
        log.warning("Last run did not stop cleanly: local tables wiped, recovering from changelogs")
    # Counting allocates many short-lived objects while sessions and tables keep many long-
    # lived ones: with the default thresholds the collector spends a large share of the
    # time rescanning the long-lived ones.
    gc.set_threshold(100_000, 50, 1000)
    from footfall import logs, tracing
    from footfall.gc_clock import GC_CLOCK

    GC_CLOCK.install()

    # Everything imported so far lives as long as the process: out of every collection.
    gc.freeze()

    level = args.loglevel or settings.log_level
    tracing.setup(settings, "footfall-worker")
    worker = faust.Worker(
        app,
        loglevel=level,
        logging_config=logs.dict_config(settings, "footfall-worker", level=level),
    )
    code: Any = 1
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code
    finally:
        tracing.shutdown()
    if code in (0, None) and app.crash_reason is None:
        marker_path(settings).unlink(missing_ok=True)
        return 0
    return 1 if code in (0, None) else int(code)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a stream worker: count events into tables, InfluxDB and the archive",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--loglevel", default=None, help="log level (default: settings)")
    parser.set_defaults(func=run_worker)


if __name__ == "__main__":  # `python -m agents.commands`: the same as `footfall worker`
    import sys

    root = argparse.ArgumentParser(prog="footfall")
    register(root.add_subparsers(dest="command", required=True))
    namespace = root.parse_args(["worker", *sys.argv[1:]])
    sys.exit(namespace.func(namespace))
