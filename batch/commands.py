"""`footfall reprocess`: recompute UTC days from the raw archive by hand (or from the DAG)."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from datetime import date
from typing import Any

from batch.days import days_between, parse_day
from footfall import dogstatsd, logs
from footfall.observability import BatchRun, batch_registry, push_batch_metrics
from footfall.settings import Settings, get_settings

DESCRIPTION = """\
Recompute whole UTC days, --from and --to both included, from the raw archive: sessions,
per-minute metrics, breakdowns and visitor sketches, written to HBase as a whole-day
overwrite (the truth the reporting API answers closed days from) and rewritten in InfluxDB.
A day is marked complete once it ended at least FOOTFALL_BATCH_CLOSE_DELAY_S ago; today is
recomputed up to that delay before now. With --dry-run nothing is written: every site, day
and metric is printed with its stored value, the recomputed one and the difference.
"""


def _day(text: str) -> date:
    try:
        return parse_day(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD day: {text!r}") from None


def _site(text: str) -> str:
    if not text or "|" in text or text != text.strip():
        raise argparse.ArgumentTypeError(f"not a site id: {text!r}")
    return text


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reprocess",
        help="recompute UTC days from the raw archive into HBase and InfluxDB",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--from", dest="first", required=True, type=_day, metavar="YYYY-MM-DD")
    parser.add_argument("--to", dest="last", required=True, type=_day, metavar="YYYY-MM-DD")
    parser.add_argument(
        "--site",
        dest="sites",
        action="append",
        type=_site,
        metavar="S",
        help="only this site (repeatable); default: every site",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="write nothing; print stored vs recomputed"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Heavy imports in _reprocess, so that `footfall --help` does not start loading Spark.
    try:
        days = days_between(args.first, args.last)
    except ValueError as exc:
        print(f"footfall reprocess: {exc}", file=sys.stderr)
        return 2
    settings = get_settings()
    logs.configure(settings, "footfall-batch")
    started = time.time()
    states: Counter[str] = Counter()
    read = 0
    ok = False
    try:
        read = _reprocess(args, days, settings, states)
        ok = True
    finally:
        # A dry run writes nothing, so it is no success of the batch layer.
        if not args.dry_run:
            report_run(settings, BatchRun(started, time.time(), ok, states, read))
    return 0


def report_run(settings: Settings, run: BatchRun) -> None:
    """The run's metrics to the Pushgateway and DogStatsD, when configured."""
    push_batch_metrics(settings.metrics_pushgateway_url, run)
    bridge = dogstatsd.bridge_from_settings(settings, "footfall-batch", [batch_registry(run)])
    if bridge is not None:
        bridge.send()
        bridge.close()


def _reprocess(
    args: argparse.Namespace, days: list[date], settings: Settings, states: Counter[str]
) -> int:
    """Recompute the days; count them by resulting state into `states`; return events read."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    from batch.compare import Comparison, format_comparisons
    from batch.reprocess import Reprocessor
    from footfall.spark_session import build_session

    read = 0
    spark = build_session(
        "footfall-batch",
        settings.batch_spark_master,
        driver_memory=settings.batch_driver_memory,
        java_home=settings.java_home,
    )
    reprocessor = Reprocessor(settings, spark)
    comparisons: list[Comparison] = []
    with tqdm(days, unit="day", desc="reprocess", file=sys.stderr, dynamic_ncols=True) as bar:
        for day in bar:
            label = day.isoformat()
            bar.set_postfix_str(label)

            def show(phase: str, label: str = label) -> None:
                bar.set_postfix_str(f"{label} {phase}")  # a day of 10 M events takes minutes

            outcome = reprocessor.run_day(day, args.sites, dry_run=args.dry_run, on_phase=show)
            tqdm.write(outcome.summary(), file=sys.stderr)
            comparisons += outcome.comparisons
            read += outcome.read
            if outcome.state is not None:
                states[outcome.state.value] += 1
    if args.dry_run:
        for line in format_comparisons(comparisons):
            print(line)
    return read


def main(argv: list[str] | None = None) -> int:
    """`python -m batch.commands reprocess ...`: the command without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="footfall")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
