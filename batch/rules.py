"""footfall.metrics' rules as Spark column expressions, one per function it translates.

A Spark job cannot call footfall.metrics per row without a Python UDF (a round trip through
a Python worker for every event), so each rule the job needs is written once more here as
a column expression, named after the function it mirrors, using footfall.metrics' constants.
tests/integration/test_batch_rules.py evaluates every one of them next to its original on
the edge cases (the exact timeout, one millisecond past it, midnight, half-millionths of a
currency unit) so that a change to a rule that is not carried over here fails a test.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F

from footfall.metrics import (
    ABSENT_VALUE,
    COMBINATION_SEP,
    COMBINATION_SEP_STANDIN,
    DAY_MS,
    MINUTE_MS,
    REVENUE_SCALE,
)


def minute_of(event_time: Column) -> Column:
    """footfall.metrics.minute_of: start of the UTC minute, epoch ms."""
    return event_time - F.pmod(event_time, F.lit(MINUTE_MS))


def _day_start(epoch_ms: Column) -> Column:
    # Compared instead of utc_day_of's day numbers: the same equality, no division.
    return epoch_ms - F.pmod(epoch_ms, F.lit(DAY_MS))


def starts_new_session(previous: Column, event_time: Column, timeout_s: int) -> Column:
    """footfall.metrics.starts_new_session; a visitor's first event (previous null) too."""
    return (
        previous.isNull()
        | (_day_start(event_time) != _day_start(previous))
        | (event_time - previous > F.lit(timeout_s * 1000))
    )


def counts_in_metrics(bot: Column) -> Column:
    """footfall.metrics.counts_in_metrics: bots count in no metric."""
    return ~bot


def revenue_units(amount: Column) -> Column:
    """footfall.metrics.revenue_units: integer millionths, rounded half to even like round().

    `bround` on a double rounds the shortest decimal that reads back as that double, which
    lands on the same side of every .5 as Python's exact rounding (a .5 below 2**52 is itself
    a double, so no other double's shortest decimal can be it).
    """
    return F.bround(amount * F.lit(float(REVENUE_SCALE)), 0).cast("bigint")


def text_value(value: Column) -> Column:
    """A dimension value as the stream keeps it: a missing or empty text is ABSENT_VALUE."""
    return F.when(value.isNull() | (value == F.lit("")), F.lit(ABSENT_VALUE)).otherwise(value)


def combination_value(members: Sequence[Column]) -> Column:
    """footfall.metrics.combination_value: the members' values (not null) joined.

    Every separator inside a value is replaced, which changes nothing when there is none,
    the one case where combination_value keeps the values as they are.
    """
    return F.concat_ws(
        COMBINATION_SEP,
        *[F.translate(m, COMBINATION_SEP, COMBINATION_SEP_STANDIN) for m in members],
    )
