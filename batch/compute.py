"""The Spark computation of one UTC day: every metric, breakdown and sketch of the spec.

From the day's archive files to four DataFrames (`DayFrames`), nothing written:

1. duplicates dropped per (site, id), keeping the copy received first (lowest
   received_at, then partition and offset: what the stream kept), looking a margin into
   the neighbouring days so a copy on the other side of midnight is seen too;
2. bots left out (before duplicates, as the stream does: a bot copy never hides another);
3. sessions cut with window functions per (site, visitor) in event_time order (ties in
   Kafka order, the stream's order) wherever footfall.metrics.starts_new_session says,
   each event carrying its session's first-event values for the event combinations;
4. per minute, per Kafka partition and per sample rate: event counters and an
   `hll_sketch_agg` sketch of visitors; per session start minute: session counters;
   then the rows of the HBase tables (a breakdown row per value of each dimension and
   of each footfall.metrics.COMBINATIONS), the InfluxDB points and the per-site totals.

Sample rates follow the stream (tables/counting.py, footfall/visitors.py): an event adds its
own `sample_rate`, a session the rate of its first event, and visitors are kept as one
sketch per rate, estimated as the sum of rate x estimate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from batch import rules
from batch.days import DayWindow
from batch.hbase import BREAKDOWNS, MINUTES
from footfall.metrics import (
    COMBINATIONS,
    DIMENSION_FIELDS,
    EVENT_COMBINATIONS,
    EVENT_DIMENSIONS,
    PAGEVIEW,
    SESSION_COMBINATIONS,
    SESSION_DIMENSIONS,
)
from footfall.series import REVENUE_PREFIX

# Kafka order: the order the stream applied a visitor's events in (one partition each).
ORDER: Final = ("event_time", "kafka_partition", "kafka_offset", "id")
START_DIMENSIONS: Final = tuple(d for d in SESSION_DIMENSIONS if d != "exit_page")
_COUNTERS_TYPE: Final = "map<string,bigint>"
# The session attributes the event combinations take from each event's session: kept on
# every event as `session_<dimension>` (its session's first event's value).
_SESSION_MEMBERS: Final = tuple(
    d for d in START_DIMENSIONS if any(d in COMBINATIONS[c] for c in EVENT_COMBINATIONS)
)


@dataclass(frozen=True, slots=True)
class JobRules:
    """The settings the numbers depend on (footfall.settings; the same as the stream's)."""

    session_timeout_s: int = 1800
    lg_k: int = 14
    dedupe_margin_ms: int = 3_600_000


@dataclass(slots=True)
class DayFrames:
    """The results of one day, lazily computed; `release()` frees what was cached.

    - site_stats: site, read (events in the window, bots and duplicates included), bots,
      counted (events after both were dropped)
    - rows: one per HBase row: table (batch.hbase.MINUTES or BREAKDOWNS), site, dimension, minute,
      value (both null for minutes), counters (name -> int), sketches (rate -> sketch)
    - points: one per (site, minute, Kafka partition), the InfluxDB series of the stream:
      site, minute, partition, the six counters, revenue (currency -> millionths),
      sketches (rate -> sketch)
    - totals: one per site for the whole window: the six counters, revenue, sketches
    """

    window: DayWindow
    site_stats: DataFrame
    rows: DataFrame
    points: DataFrame
    totals: DataFrame
    cached: list[DataFrame] = field(default_factory=list)

    def release(self) -> None:
        for frame in self.cached:
            frame.unpersist()
        self.cached.clear()


def _in(column: Column, lo: int, hi: int) -> Column:
    return (column >= F.lit(lo)) & (column < F.lit(hi))


def _rate_sum(condition: Column) -> Column:
    return F.sum(F.when(condition, F.col("rate")).otherwise(F.lit(0)))


def _sketch_map() -> Column:
    return F.map_from_entries(F.collect_list(F.struct("rate", "sketch")))


def _sum_all(*names: str) -> list[Column]:
    return [F.sum(name).alias(name) for name in names]


def counted_events(
    raw: DataFrame, window: DayWindow, rules_: JobRules
) -> tuple[DataFrame, DataFrame]:
    """(events of the window as read, events that count): steps 1 and 2 of the docstring."""
    margin = rules_.dedupe_margin_ms
    candidates = raw.where(
        _in(F.col("event_time"), window.start_ms - margin, window.end_ms + margin)
    )
    in_window = _in(F.col("event_time"), window.start_ms, window.cutoff_ms)
    first_copy = Window.partitionBy("site", "id").orderBy(
        "received_at", "kafka_partition", "kafka_offset"
    )
    kept = (
        candidates.where(rules.counts_in_metrics(F.col("bot")))
        .withColumn("_copy", F.row_number().over(first_copy))
        .where((F.col("_copy") == 1) & in_window)
        .drop("_copy")
    )
    return candidates.where(in_window), kept


def sessionize(kept: DataFrame, timeout_s: int) -> DataFrame:
    """Counted events with the columns the aggregates use, and `session` (step 3).

    `session` numbers a visitor's sessions within the day (1, 2, ...).
    """
    by_visitor = Window.partitionBy("site", "visitor").orderBy(*ORDER)
    dimension_values = [
        rules.text_value(F.col(DIMENSION_FIELDS[d])).alias(d)
        for d in (*EVENT_DIMENSIONS, *START_DIMENSIONS)
    ]
    # The exit page is a session's last pageview's value of this field (footfall.metrics).
    exit_value = rules.text_value(F.col(DIMENSION_FIELDS["exit_page"])).alias("exit_value")
    events = kept.select(
        "site",
        "visitor",
        "id",
        "event_time",
        "kafka_partition",
        "kafka_offset",
        F.col("sample_rate").alias("rate"),
        rules.minute_of(F.col("event_time")).alias("minute"),
        (F.col("name") == F.lit(PAGEVIEW)).alias("is_pageview"),
        F.col("revenue").isNotNull().alias("is_transaction"),
        F.col("revenue.currency").alias("currency"),
        rules.revenue_units(F.col("revenue.amount")).alias("units"),
        *dimension_values,
        exit_value,
    )
    previous = F.lag("event_time").over(by_visitor)
    starts = rules.starts_new_session(previous, F.col("event_time"), timeout_s)
    running = by_visitor.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    # The session's first event is the latest start up to this event: the same window as
    # `session` (one sort, no join of the events back to sessions_of).
    first = F.struct(*[F.col(d).alias(d) for d in _SESSION_MEMBERS])
    session_first = F.last(F.when(F.col("_starts") == 1, first), ignorenulls=True).over(running)
    return (
        events.withColumn("_starts", starts.cast("int"))
        .withColumn("session", F.sum("_starts").over(running))
        .withColumn("_first", session_first)
        .select(
            *events.columns,
            "session",
            *[F.col(f"_first.{d}").alias(f"session_{d}") for d in _SESSION_MEMBERS],
        )
    )


def sessions_of(events: DataFrame) -> DataFrame:
    """One row per session: start, last, events, rate, Kafka partition, dimension values."""
    order = F.struct(*ORDER)
    first = F.struct(
        F.col("event_time").alias("start"),
        "rate",
        "kafka_partition",
        *START_DIMENSIONS,
    )
    # max_by skips rows whose ordering is null: the non-pageviews; null when there is none.
    exit_page = F.max_by(F.col("exit_value"), F.when(F.col("is_pageview"), order))
    return (
        events.groupBy("site", "visitor", "session")
        .agg(
            F.min_by(first, order).alias("first"),
            F.max("event_time").alias("last"),
            F.count(F.lit(1)).alias("n"),
            exit_page.alias("exit_page"),
        )
        .select(
            "site",
            "visitor",
            "first.*",
            "last",
            "n",
            rules.text_value(F.col("exit_page")).alias("exit_page"),
        )
        .withColumn("minute", rules.minute_of(F.col("start")))
    )


def _empty_counters() -> Column:
    return F.create_map().cast(_COUNTERS_TYPE)


def _counter_map(names: Sequence[str], extra: Column | None = None) -> Column:
    pairs: list[Column] = []
    for name in names:
        pairs += [F.lit(name), F.col(name).cast("bigint")]
    counters = F.create_map(*pairs)
    if extra is None:
        return counters
    return F.map_concat(counters, F.coalesce(extra, _empty_counters()))


EVENT_COUNTS: Final = ("events", "pageviews", "transactions")
SESSION_COUNTS: Final = ("sessions", "bounces", "duration_sum")


def _event_counts() -> list[Column]:
    return [
        F.sum("rate").alias("events"),
        _rate_sum(F.col("is_pageview")).alias("pageviews"),
        _rate_sum(F.col("is_transaction")).alias("transactions"),
    ]


def _session_counts() -> list[Column]:
    return [
        F.sum("rate").alias("sessions"),
        _rate_sum(F.col("n") == 1).alias("bounces"),
        F.sum((F.col("last") - F.col("start")) * F.col("rate")).alias("duration_sum"),
    ]


def _fill_zero(frame: DataFrame, names: Sequence[str]) -> DataFrame:
    return frame.fillna(0, subset=list(names))


def compute_day(raw: DataFrame, window: DayWindow, rules_: JobRules) -> DayFrames:
    """All results of one day from the archive rows `raw` (module docstring)."""
    lg_k = rules_.lg_k
    read, kept = counted_events(raw, window, rules_)
    events = sessionize(kept, rules_.session_timeout_s).persist(StorageLevel.MEMORY_AND_DISK)
    sessions = sessions_of(events).persist(StorageLevel.MEMORY_AND_DISK)

    # Finest grain: (site, minute, Kafka partition, rate); everything else rolls up from it.
    fine_events = (
        events.groupBy("site", "minute", "kafka_partition", "rate")
        .agg(*_event_counts(), F.hll_sketch_agg("visitor", lg_k).alias("sketch"))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    fine_sessions = sessions.groupBy("site", "minute", "kafka_partition", "rate").agg(
        *_session_counts()
    )
    fine_revenue = (
        events.where(F.col("is_transaction"))
        .groupBy("site", "minute", "kafka_partition", "currency")
        .agg(F.sum(F.col("units") * F.col("rate")).alias("units"))
    )
    cached = [events, sessions, fine_events]

    site_stats = (
        read.groupBy("site")
        .agg(F.count(F.lit(1)).alias("read"), F.sum(F.col("bot").cast("int")).alias("bots"))
        .join(events.groupBy("site").agg(F.count(F.lit(1)).alias("counted")), "site", "left")
        .fillna(0, subset=["bots", "counted"])
    )
    return DayFrames(
        window=window,
        site_stats=site_stats,
        rows=_minute_rows(fine_events, fine_sessions, fine_revenue).unionByName(
            _breakdown_rows(events, sessions, lg_k)
        ),
        points=_points(fine_events, fine_sessions, fine_revenue),
        totals=_totals(fine_events, fine_sessions, fine_revenue),
        cached=cached,
    )


def _revenue_map(revenue: DataFrame, keys: Sequence[str], prefix: str = "") -> DataFrame:
    """Revenue summed per `keys` + currency, as a map currency -> millionths per `keys`."""
    name = F.concat(F.lit(prefix), F.col("currency")) if prefix else F.col("currency")
    return (
        revenue.groupBy(*keys, "currency")
        .agg(F.sum("units").alias("units"))
        .groupBy(*keys)
        .agg(F.map_from_entries(F.collect_list(F.struct(name, F.col("units")))).alias("revenue"))
    )


def _merged_sketches(fine_events: DataFrame, keys: Sequence[str]) -> DataFrame:
    """Event counters, the highest rate and one merged sketch per rate, per `keys`."""
    return (
        fine_events.groupBy(*keys, "rate")
        .agg(*_sum_all(*EVENT_COUNTS), F.hll_union_agg("sketch").alias("sketch"))
        .groupBy(*keys)
        .agg(
            *_sum_all(*EVENT_COUNTS),
            F.max("rate").alias("sample_rate_max"),
            _sketch_map().alias("sketches"),
        )
    )


def _minute_rows(fine_events: DataFrame, fine_sessions: DataFrame, revenue: DataFrame) -> DataFrame:
    keys = ("site", "minute")
    sessions = fine_sessions.groupBy(*keys).agg(*_sum_all(*SESSION_COUNTS))
    merged = (
        _merged_sketches(fine_events, keys)
        .join(sessions, list(keys), "left")
        .join(_revenue_map(revenue, keys, REVENUE_PREFIX), list(keys), "left")
    )
    merged = _fill_zero(merged, SESSION_COUNTS)
    counters = _counter_map((*EVENT_COUNTS, *SESSION_COUNTS, "sample_rate_max"), F.col("revenue"))
    return merged.select(
        F.lit(MINUTES).alias("table"),
        "site",
        F.lit(None).cast("string").alias("dimension"),
        "minute",
        F.lit(None).cast("string").alias("value"),
        counters.alias("counters"),
        "sketches",
    )


def _event_values() -> dict[str, Column]:
    """The event-scoped rows of an event: its dimensions, and the event combinations with
    their session-scoped members from the event's session (`session_<dimension>`)."""
    values: dict[str, Column] = {d: F.col(d) for d in EVENT_DIMENSIONS}
    for name in EVENT_COMBINATIONS:
        values[name] = rules.combination_value(
            [F.col(m if m in EVENT_DIMENSIONS else f"session_{m}") for m in COMBINATIONS[name]]
        )
    return values


def _session_values() -> dict[str, Column]:
    """The session-scoped rows of a session: its dimensions and the session combinations."""
    values: dict[str, Column] = {d: F.col(d) for d in SESSION_DIMENSIONS}
    for name in SESSION_COMBINATIONS:
        values[name] = rules.combination_value([F.col(m) for m in COMBINATIONS[name]])
    return values


def _exploded(frame: DataFrame, values: Mapping[str, Column], *columns: str) -> DataFrame:
    pairs = F.array(
        *[F.struct(F.lit(d).alias("dimension"), v.alias("value")) for d, v in values.items()]
    )
    return frame.select(*columns, F.explode(pairs).alias("_dv")).select(
        *columns, "_dv.dimension", "_dv.value"
    )


def _breakdown_rows(events: DataFrame, sessions: DataFrame, lg_k: int) -> DataFrame:
    keys = ("site", "dimension", "minute", "value")
    by_event = (
        _exploded(
            events,
            _event_values(),
            "site",
            "minute",
            "rate",
            "visitor",
            "is_pageview",
            "is_transaction",
        )
        .groupBy(*keys, "rate")
        .agg(*_event_counts(), F.hll_sketch_agg("visitor", lg_k).alias("sketch"))
        .groupBy(*keys)
        .agg(*_sum_all(*EVENT_COUNTS), _sketch_map().alias("sketches"))
        .select(*keys, _counter_map(EVENT_COUNTS).alias("counters"), "sketches")
    )
    by_session = (
        _exploded(
            sessions, _session_values(), "site", "minute", "rate", "visitor", "n", "start", "last"
        )
        .groupBy(*keys, "rate")
        .agg(*_session_counts(), F.hll_sketch_agg("visitor", lg_k).alias("sketch"))
        .groupBy(*keys)
        .agg(*_sum_all(*SESSION_COUNTS), _sketch_map().alias("sketches"))
        .select(*keys, _counter_map(SESSION_COUNTS).alias("counters"), "sketches")
    )
    return (
        by_event.unionByName(by_session)
        .withColumn("table", F.lit(BREAKDOWNS))
        .select("table", *keys, "counters", "sketches")
    )


def _points(fine_events: DataFrame, fine_sessions: DataFrame, revenue: DataFrame) -> DataFrame:
    keys = ("site", "minute", "kafka_partition")
    per_point = fine_events.groupBy(*keys).agg(
        *_sum_all(*EVENT_COUNTS), _sketch_map().alias("sketches")
    )
    sessions = fine_sessions.groupBy(*keys).agg(*_sum_all(*SESSION_COUNTS))
    joined = per_point.join(sessions, list(keys), "left").join(
        _revenue_map(revenue, keys), list(keys), "left"
    )
    return _fill_zero(joined, SESSION_COUNTS).withColumnRenamed("kafka_partition", "partition")


def _totals(fine_events: DataFrame, fine_sessions: DataFrame, revenue: DataFrame) -> DataFrame:
    keys = ("site",)
    sessions = fine_sessions.groupBy(*keys).agg(*_sum_all(*SESSION_COUNTS))
    joined = (
        _merged_sketches(fine_events, keys)
        .join(sessions, list(keys), "left")
        .join(_revenue_map(revenue, keys), list(keys), "left")
    )
    return _fill_zero(joined, SESSION_COUNTS)
