"""The InfluxDB series of per-minute metrics: one point per site, minute and writer shard.

Measurement `minute`, tags `site` and `partition` (the `events.raw` partition whose events
the point sums; reports sum the points of a minute over `partition`), time = the minute's
start in ms. Fields: every counter of footfall.metrics.COUNTERS as an integer (sums of
sample rates; `duration_sum` in ms), `visitors` (the estimate, sample rates applied, so
partitions add up: their visitors are disjoint), `sample_rate_max` (reports say when a
range holds sampled data), and `revenue_<CUR>` per currency in integer millionths
(footfall.metrics.REVENUE_SCALE). A point is always written with all its fields, so a
rewrite of the same series and time replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from footfall.influx import FieldValue, line
from footfall.metrics import COUNTERS

MEASUREMENT: Final = "minute"
SITE_TAG: Final = "site"
PARTITION_TAG: Final = "partition"
VISITORS_FIELD: Final = "visitors"
SAMPLE_RATE_FIELD: Final = "sample_rate_max"
REVENUE_PREFIX: Final = "revenue_"


def minute_fields(
    counts: Mapping[str, int], visitors: float, revenue: Mapping[str, int], max_rate: int
) -> dict[str, FieldValue]:
    """The fields of one point (see the module docstring)."""
    fields: dict[str, FieldValue] = {name: int(counts[name]) for name in COUNTERS}
    fields[VISITORS_FIELD] = float(visitors)
    fields[SAMPLE_RATE_FIELD] = int(max_rate)
    for currency in sorted(revenue):
        fields[REVENUE_PREFIX + currency] = int(revenue[currency])
    return fields


def minute_line(site: str, shard: str, minute_ms: int, fields: Mapping[str, FieldValue]) -> str:
    """One point in line protocol, ms precision."""
    return line(MEASUREMENT, {SITE_TAG: site, PARTITION_TAG: shard}, fields, minute_ms)
