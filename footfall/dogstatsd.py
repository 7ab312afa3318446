"""An optional DogStatsD exporter: a process's footfall_* metrics sent to a Datadog agent.

Switched on by `dogstatsd_enabled`. The Prometheus registries stay the one place metrics
are kept; every `dogstatsd_interval_s` the bridge reads them and sends, over UDP to
`dogstatsd_host:dogstatsd_port`:

- a gauge as a gauge (`|g`);
- a counter as the increase since the last send (`|c`, the `_total` suffix dropped);
- a histogram as the increase of its count and sum (`.count`, `.sum`, both `|c`): Datadog
  derives the average; percentiles stay on the Prometheus side (the Datadog agent's
  OpenMetrics check can scrape `/metrics` for the buckets instead).

Names follow footfall.observability.statsd_name (`footfall.worker.consumer_lag`); labels
become tags (`partition:3`), plus `service:<name>`, `env:<environment>` and
`dogstatsd_tags`. UDP is fire-and-forget: a missing agent costs nothing and never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Final

from prometheus_client import CollectorRegistry

from footfall.observability import statsd_name
from footfall.settings import Settings

log = logging.getLogger(__name__)

#: Fits one Ethernet frame with IP and UDP headers (Datadog's own clients' default).
MAX_DATAGRAM: Final = 1432
_TAG_UNSAFE: Final = str.maketrans({c: "_" for c in ",|#: \n"})


def _tag(key: str, value: str) -> str:
    return f"{key}:{value.translate(_TAG_UNSAFE)}"


class DogStatsdBridge:
    """Reads Prometheus registries and sends their footfall_* samples as DogStatsD lines."""

    def __init__(
        self,
        registries: Sequence[CollectorRegistry],
        host: str,
        port: int,
        *,
        tags: Iterable[str] = (),
        prefix: str = "footfall_",
    ) -> None:
        self.registries = list(registries)
        self.address = (host, port)
        self.tags = [t for t in tags if t]
        self.prefix = prefix
        self._last: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._sock: socket.socket | None = None
        self.sent_lines = 0
        self.send_errors = 0

    def lines(self) -> list[str]:
        """The DogStatsD lines for the registries' current values (updates the counter state)."""
        out: list[str] = []
        for registry in self.registries:
            for family in registry.collect():
                if not family.name.startswith(self.prefix):
                    continue
                base = statsd_name(family.name)
                for sample in family.samples:
                    labels = tuple(
                        (k, v) for k, v in sample.labels.items() if k not in ("le", "quantile")
                    )
                    if family.type == "gauge":
                        value = sample.value
                        metric, kind = base, "g"
                    elif family.type == "counter" and sample.name.endswith("_total"):
                        value = self._delta(sample.name, labels, sample.value)
                        metric, kind = base, "c"
                    elif family.type == "histogram" and sample.name.endswith(("_count", "_sum")):
                        value = self._delta(sample.name, labels, sample.value)
                        metric, kind = f"{base}.{sample.name.rsplit('_', 1)[1]}", "c"
                    else:
                        continue  # _created, _bucket
                    if math.isnan(value) or (kind == "c" and value == 0):
                        continue
                    tags = [*self.tags, *(_tag(k, v) for k, v in labels)]
                    suffix = f"|#{','.join(tags)}" if tags else ""
                    out.append(f"{metric}:{_number(value)}|{kind}{suffix}")
        return out

    def _delta(self, name: str, labels: tuple[tuple[str, str], ...], value: float) -> float:
        key = (name, labels)
        last = self._last.get(key, 0.0)
        self._last[key] = value
        return value if value < last else value - last  # below: the process restarted

    def send(self) -> int:
        """Send the current lines, packed into datagrams; return how many lines went out."""
        lines = self.lines()
        if not lines:
            return 0
        if self._sock is None:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        sent = 0
        for datagram, count in _pack(lines):
            try:
                self._sock.sendto(datagram, self.address)
            except OSError as exc:  # no agent, a full buffer: metrics are best effort
                self.send_errors += 1
                if self.send_errors in (1, 100) or self.send_errors % 10_000 == 0:
                    log.warning("dogstatsd: send to %s:%d failed: %s", *self.address, exc)
                continue
            sent += count
        self.sent_lines += sent
        return sent

    async def run(self, interval_s: float) -> None:
        """Send every `interval_s`, forever (cancel to stop; a last send happens then)."""
        try:
            while True:
                await asyncio.sleep(interval_s)
                self.send()
        finally:
            self.send()
            self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)


def _pack(lines: Sequence[str]) -> Iterable[tuple[bytes, int]]:
    """Newline-joined datagrams of at most MAX_DATAGRAM bytes (a longer line goes alone)."""
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        data = line.encode()
        if chunk and size + 1 + len(data) > MAX_DATAGRAM:
            yield b"\n".join(chunk), len(chunk)
            chunk, size = [], 0
        size += len(data) + (1 if chunk else 0)
        chunk.append(data)
    if chunk:
        yield b"\n".join(chunk), len(chunk)


def bridge_from_settings(
    settings: Settings, service: str, registries: Sequence[CollectorRegistry]
) -> DogStatsdBridge | None:
    """The bridge `settings` ask for, or None when DogStatsD is off."""
    if not settings.dogstatsd_enabled:
        return None
    tags = [f"service:{service}"]
    if settings.environment:
        tags.append(_tag("env", settings.environment))
    tags += [t.strip() for t in settings.dogstatsd_tags.split(",") if t.strip()]
    return DogStatsdBridge(registries, settings.dogstatsd_host, settings.dogstatsd_port, tags=tags)


def cleanup_ctx(
    settings: Settings, service: str, registries: Callable[[], Sequence[CollectorRegistry]]
) -> Callable[[object], AsyncIterator[None]]:
    """An aiohttp `cleanup_ctx` entry running the bridge for the app's lifetime (a no-op
    when DogStatsD is off). `registries` is called at start-up, when the app has them."""

    async def ctx(_app: object) -> AsyncIterator[None]:
        bridge = bridge_from_settings(settings, service, registries())
        if bridge is None:
            yield
            return
        task = asyncio.create_task(bridge.run(settings.dogstatsd_interval_s), name="dogstatsd")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx
