"""A report service over buckets counted by the stream's own rules, without services.

Events go through tables.counting.BatchCounter (what the counting agent runs) into a dict
of encoded buckets, one partition per visitor as Kafka's key partitioning would place
them; the service reads them through the same local reader the workers use.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from footfall.events import kafka_key
from footfall.settings import Settings, get_settings
from footfall.sites.registry import SiteRecord, SiteRegistry, hash_key
from footfall.visitors import SketchConfig
from tables.counting import BatchCounter, CountingRules
from web.reports.gather import SingleNode, TablesSource
from web.reports.handlers import Context
from web.reports.local import DictStore
from web.reports.service import Reports

PARTITIONS = 4
CONFIG = SketchConfig(14, "HLL_8")
KEYS = {"alpha": "ff_alpha_key", "beta": "ff_beta_key", "kol": "ff_kol_key"}
ZONES = {"alpha": "UTC", "beta": "Europe/Berlin", "kol": "Asia/Kolkata"}


def partition_of(event: Mapping[str, Any]) -> int:
    return zlib.crc32(kafka_key(event["site"], event["visitor"])) % PARTITIONS


def count(
    events: Iterable[Mapping[str, Any]], rules: CountingRules | None = None
) -> dict[bytes, bytes]:
    """Encoded buckets of the events (arrival order), as minutes_by_site would hold them."""
    data: dict[bytes, bytes] = {}
    sessions: dict[bytes, bytes] = {}
    counter = BatchCounter(
        rules or CountingRules(sketch=CONFIG, retention_ms=10**13),
        load_session=sessions.get,
        load_bucket=data.get,
    )
    by_partition: dict[int, list[tuple[int, Mapping[str, Any]]]] = {}
    for event in events:
        rows = by_partition.setdefault(partition_of(event), [])
        rows.append((len(rows), event))
    for partition, rows in by_partition.items():
        result = counter.apply(partition, rows)
        data.update((k, b.encode()) for k, b in result.buckets.items())
        sessions.update((k, s.encode()) for k, s in result.sessions.items())
    return data


def registry() -> SiteRegistry:
    found = SiteRegistry(get_settings())
    found.preload(
        SiteRecord(site, ZONES[site], (), False, hash_key(key), "2026-01-01T00:00:00Z")
        for site, key in KEYS.items()
    )
    return found


def settings(**overrides: Any) -> Settings:
    return get_settings().model_copy(update={"report_tables_window_h": 10**6, **overrides})


def service(data: Mapping[bytes, bytes], now_ms: int, **overrides: Any) -> Reports:
    tables = TablesSource(DictStore(data), SingleNode(PARTITIONS), CONFIG, in_thread=False)
    return Reports(settings(**overrides), CONFIG, tables, clock=lambda: now_ms)


def context(data: Mapping[bytes, bytes], now_ms: int) -> Context:
    return Context(registry(), service(data, now_ms))


def auth(site: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[site]}"}
