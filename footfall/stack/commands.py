"""`footfall stack up | down | status`: the real services of a development machine or CI."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import time
from pathlib import Path

from footfall.settings import get_settings
from footfall.stack.base import Service, StackError, proc_status_kib
from footfall.stack.services import SERVICE_NAMES, build_services


def _rss_kib(pid: int) -> int:
    """Resident memory of a process and its descendants, in KiB (0 when gone)."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        total += proc_status_kib(current, "VmRSS")
        children = Path(f"/proc/{current}/task/{current}/children")
        with contextlib.suppress(OSError):
            pending.extend(int(child) for child in children.read_text().split())
    return total


def _selected(args: argparse.Namespace) -> list[Service]:
    services = build_services(get_settings())
    if args.only:
        services = [s for s in services if s.name in args.only]
    return services


def _up(args: argparse.Namespace) -> int:
    for service in _selected(args):
        began = time.monotonic()
        print(f"{service.name:<9} starting ...", flush=True)
        try:
            started = service.start()
        except StackError as exc:
            print(f"{service.name:<9} FAILED\n{exc}", file=sys.stderr, flush=True)
            return 1
        took = time.monotonic() - began
        if not service.processes():
            state = f"ready ({took:.1f}s)"  # in-process (Spark): nothing to start
        else:
            state = f"started in {took:.1f}s" if started else "already running"
        print(f"{service.name:<9} {state} at {service.address()}", flush=True)
    return 0


def _down(args: argparse.Namespace) -> int:
    settings = get_settings()
    for service in reversed(_selected(args)):
        stopped = service.stop()
        print(f"{service.name:<9} {'stopped ' + ', '.join(stopped) if stopped else 'not running'}")
    if args.wipe:
        if args.only:
            for service in _selected(args):
                shutil.rmtree(service.home, ignore_errors=True)
        else:
            shutil.rmtree(settings.state_dir, ignore_errors=True)
        print(f"wiped data under {settings.state_dir}")
    return 0


def _status(args: argparse.Namespace) -> int:
    unhealthy = 0
    total_kib = 0
    for service in _selected(args):
        reason = service.check()
        pids = service.running_pids()
        rss = sum(_rss_kib(pid) for pid in pids.values())
        total_kib += rss
        health = "healthy" if reason is None else f"DOWN ({reason})"
        unhealthy += reason is not None
        procs = ", ".join(f"{name}={pid}" for name, pid in pids.items()) or "-"
        print(
            f"{service.name:<9} {health:<10} {service.address():<34} "
            f"rss={rss / 1024:.0f}MiB pids: {procs}"
        )
    print(f"{'total':<9} rss={total_kib / 1024:.0f}MiB")
    return 1 if unhealthy else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stack = subparsers.add_parser("stack", help="run the real services on 127.0.0.1")
    actions = stack.add_subparsers(dest="action", required=True)
    only_help = f"only these services ({', '.join(SERVICE_NAMES)})"
    up = actions.add_parser("up", help="fetch, start and wait for every service (idempotent)")
    up.add_argument("--only", nargs="+", choices=SERVICE_NAMES, help=only_help)
    up.set_defaults(func=_up)
    down = actions.add_parser("down", help="stop the processes `up` started")
    down.add_argument("--only", nargs="+", choices=SERVICE_NAMES, help=only_help)
    down.add_argument("--wipe", action="store_true", help="also delete their data")
    down.set_defaults(func=_down)
    status = actions.add_parser("status", help="health, address and memory of each service")
    status.add_argument("--only", nargs="+", choices=SERVICE_NAMES, help=only_help)
    status.set_defaults(func=_status)
