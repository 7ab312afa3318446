"""The site registry: which sites exist, their settings and hashed API keys, kept in Kafka.

The registry is the compacted topic `settings.sites_topic`: key = the site id (raw UTF-8,
not JSON), value = a JSON `SiteRecord`; a null value (tombstone) removes a site. Workers
read the same topic as a Faust global table; the gateway holds it in a `SiteRegistry`.
API keys are never stored: only their SHA-256, compared in constant time. The same holds
for a site's Measurement Protocol secret (the `api_secret` of GA4 senders, see
web/gateway/compat), which is a separate secret so that a key able to read reports never
has to sit in a sender's configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]

from footfall.settings import Settings
from footfall.sites.model import SiteConfig
from footfall.topics import TopicError, ensure_topic

log = logging.getLogger(__name__)

#: The spec's site id (spec/events.md, field `site`).
SITE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
API_KEY_PREFIX = "ff_"
_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_TOPIC_CONFIG = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
# A hash no key produces, compared against when a site is unknown, so that a wrong site
# and a wrong key take the same time.
_NO_KEY_HASH = "0" * 64


class RegistryError(RuntimeError):
    """A registry operation failed; the message is meant for the person who asked."""


@dataclass(frozen=True)
class SiteRecord:
    """One registered site as stored in the registry topic."""

    site: str
    timezone: str
    domains: tuple[str, ...]
    cookieless: bool
    key_hash: str
    created_at: str
    #: Other names the compatibility endpoints accept for the site: a GA4 measurement id
    #: (`G-XXXXXXX`), a Plausible `domain` that is not one of `domains` (an app's name).
    aliases: tuple[str, ...] = ()
    #: SHA-256 of the site's GA4 Measurement Protocol `api_secret`; "" when it has none.
    mp_secret_hash: str = ""

    def config(self) -> SiteConfig:
        return SiteConfig(
            site=self.site,
            timezone=self.timezone,
            domains=self.domains,
            cookieless=self.cookieless,
        )

    def to_json(self) -> bytes:
        value: dict[str, Any] = {
            "site": self.site,
            "timezone": self.timezone,
            "domains": list(self.domains),
            "cookieless": self.cookieless,
            "key_hash": self.key_hash,
            "created_at": self.created_at,
        }
        # Written only when set, so records of sites that use neither stay as they were.
        if self.aliases:
            value["aliases"] = list(self.aliases)
        if self.mp_secret_hash:
            value["mp_secret_hash"] = self.mp_secret_hash
        return orjson.dumps(value)

    @classmethod
    def from_json(cls, site: str, data: bytes) -> SiteRecord:
        """Parse a stored value; ValueError when it is not a site record."""
        value: Any = orjson.loads(data)
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        domains = value.get("domains", [])
        if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
            raise ValueError("domains is not a list of strings")
        aliases = value.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise ValueError("aliases is not a list of strings")
        mp_secret_hash = value.get("mp_secret_hash", "")
        if not isinstance(mp_secret_hash, str):
            raise ValueError("mp_secret_hash is not a string")
        fields = {name: value.get(name) for name in ("timezone", "key_hash", "created_at")}
        if not all(isinstance(v, str) for v in fields.values()):
            raise ValueError("timezone, key_hash or created_at is missing")
        return cls(
            site=site,
            timezone=str(fields["timezone"]),
            domains=tuple(domains),
            cookieless=bool(value.get("cookieless", False)),
            key_hash=str(fields["key_hash"]),
            created_at=str(fields["created_at"]),
            aliases=tuple(aliases),
            mp_secret_hash=mp_secret_hash,
        )

    def names(self) -> tuple[str, ...]:
        """Every name a compatibility endpoint may use for this site, in lookup form."""
        return (self.site, *self.domains, *(alias_key(a) for a in self.aliases))


# --- keys and validation ---------------------------------------------------------------
def new_api_key() -> str:
    """A fresh report API key (shown once, stored only hashed)."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """What the registry stores for an API key: its SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_mp_secret() -> str:
    """A fresh Measurement Protocol secret (shown once, stored only hashed)."""
    return secrets.token_urlsafe(24)


def alias_key(name: str) -> str:
    """The lookup form of a site name or alias: case-insensitive, no trailing dot."""
    return name.strip().rstrip(".").lower()


def validate_alias(name: str) -> str:
    if not _ALIAS.fullmatch(name):
        raise RegistryError(
            f"invalid alias {name!r}: 1..128 letters, digits and . _ : - (such as a GA4 "
            "measurement id G-XXXXXXX or an app's Plausible domain)"
        )
    return name


def validate_site_id(site: str) -> str:
    if not SITE_ID.fullmatch(site):
        raise RegistryError(
            f"invalid site id {site!r}: lower-case letters, digits, '_', '.', '-', "
            "starting with a letter or digit, at most 64 characters"
        )
    return site


def validate_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RegistryError(
            f"unknown time zone {name!r} (use an IANA name such as Asia/Kolkata)"
        ) from None
    return name


def normalize_domain(host: str) -> str:
    """A hostname in lower-case ASCII (IDNA), or RegistryError saying why it is not one."""
    candidate = host.strip().rstrip(".").lower()
    try:
        ascii_host = candidate.encode("idna").decode("ascii")
    except UnicodeError:
        raise RegistryError(f"invalid domain {host!r}: not a hostname") from None
    labels = ascii_host.split(".")
    if (
        not ascii_host
        or len(ascii_host) > 253
        or not all(_HOST_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()  # an IPv4 address, not a hostname
    ):
        raise RegistryError(
            f"invalid domain {host!r}: give a hostname such as shop.example.com "
            "(no scheme, port, path or wildcard)"
        )
    return ascii_host


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _kafka_unreachable(settings: Settings, exc: BaseException) -> RegistryError:
    return RegistryError(
        f"cannot reach Kafka at {settings.kafka_bootstrap} ({type(exc).__name__}: {exc}); "
        "is the stack up (`footfall stack up`)?"
    )


# --- the reader -------------------------------------------------------------------------
class SiteRegistry:
    """The registry topic held in memory: read to its end once, then followed."""

    def __init__(self, settings: Settings, *, load_timeout_s: float = 30.0) -> None:
        self._settings = settings
        self._topic = settings.sites_topic
        self._load_timeout_s = load_timeout_s
        self._records: dict[str, SiteRecord] = {}
        self._configs: dict[str, SiteConfig] = {}
        self._names: dict[str, str] = {}
        self._consumer: Any = None
        self._loaded = asyncio.Event()

    # --- reads --------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        """True once the topic was read up to the end offsets it had when loading began."""
        return self._loaded.is_set()

    def get(self, site: str) -> SiteConfig | None:
        return self._configs.get(site)

    def resolve(self, name: str) -> SiteConfig | None:
        """The site a compatibility endpoint names: by id, one of its domains or an alias.

        Case-insensitive; a `www.` prefix is tried without it. When two sites claim one
        name, the site whose id sorts first wins.
        """
        key = alias_key(name)
        site = self._names.get(key)
        if site is None and key.startswith("www."):
            site = self._names.get(key[4:])
        return self._configs.get(site) if site is not None else None

    def check_mp_secret(self, site: str, secret: str) -> bool:
        """Whether `secret` is the current Measurement Protocol secret of `site`."""
        record = self._records.get(site)
        stored = record.mp_secret_hash if record is not None and record.mp_secret_hash else None
        matches = hmac.compare_digest(hash_key(secret), stored or _NO_KEY_HASH)
        return matches and stored is not None

    def record(self, site: str) -> SiteRecord | None:
        return self._records.get(site)

    def records(self) -> list[SiteRecord]:
        return [self._records[site] for site in sorted(self._records)]

    def check_key(self, site: str, key: str) -> bool:
        """Whether `key` is the current API key of `site` (constant-time)."""
        record = self._records.get(site)
        stored = record.key_hash if record is not None else _NO_KEY_HASH
        matches = hmac.compare_digest(hash_key(key), stored)
        return matches and record is not None

    def preload(self, records: Iterable[SiteRecord]) -> None:
        """Hold these records and count as loaded, without Kafka (tests, tools)."""
        self._replace({record.site: record for record in records})
        self._loaded.set()

    async def wait_loaded(self, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._loaded.wait()
        return self.loaded

    # --- lifecycle ----------------------------------------------------------------------
    async def load(self) -> None:
        """Read the whole topic (creating it if missing), replacing what is held."""
        settings = self._settings
        await self._close_consumer()
        try:
            async with asyncio.timeout(self._load_timeout_s):
                records = await self._read_to_end()
        except TimeoutError as exc:
            await self._close_consumer()
            raise RegistryError(
                f"reading the site registry ({self._topic}) from Kafka at "
                f"{settings.kafka_bootstrap} took over {self._load_timeout_s:.0f}s"
            ) from exc
        except (KafkaError, OSError, TopicError) as exc:
            await self._close_consumer()
            raise _kafka_unreachable(settings, exc) from exc
        except BaseException:
            await self._close_consumer()
            raise
        self._replace(records)
        self._loaded.set()

    async def _read_to_end(self) -> dict[str, SiteRecord]:
        settings = self._settings
        partitions = await ensure_topic(
            settings.kafka_bootstrap, self._topic, partitions=1, config=_TOPIC_CONFIG
        )
        consumer = self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="footfall-sites",
        )
        await consumer.start()
        tps = [TopicPartition(self._topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        records: dict[str, SiteRecord] = {}
        while True:
            behind = [tp for tp in tps if await consumer.position(tp) < end[tp]]
            if not behind:
                return records
            batches = await consumer.getmany(*behind, timeout_ms=1000)
            for messages in batches.values():
                _apply(records, messages)

    async def follow(self) -> None:
        """Apply records written after `load`, forever (the consumer retries outages)."""
        consumer = self._consumer
        if consumer is None:
            raise RegistryError("follow() before load()")
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            if batches:
                records = dict(self._records)
                for messages in batches.values():
                    _apply(records, messages)
                self._replace(records)

    async def run(self, retry_max_s: float = 10.0) -> None:
        """Load, then follow; on failure keep serving what is held and load again."""
        backoff = 0.5
        while True:
            try:
                await self.load()
                backoff = 0.5
                await self.follow()
            except Exception as exc:  # a background task must not die: it would go stale
                log.warning("site registry: %s; retrying in %.1fs", exc, backoff)
                await self._close_consumer()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, retry_max_s)

    async def close(self) -> None:
        await self._close_consumer()

    # --- internals ----------------------------------------------------------------------
    def _replace(self, records: dict[str, SiteRecord]) -> None:
        # Swap whole dicts: readers on the event loop never see a half-applied batch.
        names: dict[str, str] = {}
        for site in sorted(records):
            for name in records[site].names():
                names.setdefault(name, site)
        names.update((site, site) for site in records)  # an id always names its own site
        self._records = records
        self._configs = {site: record.config() for site, record in records.items()}
        self._names = names

    async def _close_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()


def _apply(records: dict[str, SiteRecord], messages: Iterable[Any]) -> None:
    for message in messages:
        if message.key is None:
            continue
        site = message.key.decode("utf-8", errors="replace")
        if message.value is None:
            records.pop(site, None)
            continue
        try:
            records[site] = SiteRecord.from_json(site, message.value)
        except ValueError as exc:
            log.warning(
                "site registry: skipping a bad record for %r at %s: %s", site, message.offset, exc
            )


# --- writes (the `footfall sites` commands) -----------------------------------------------
async def _snapshot(settings: Settings) -> SiteRegistry:
    registry = SiteRegistry(settings)
    await registry.load()
    return registry


async def _write(settings: Settings, record: SiteRecord) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        client_id="footfall-sites",
    )
    try:
        await producer.start()
        await producer.send_and_wait(
            settings.sites_topic, record.to_json(), key=record.site.encode("utf-8")
        )
    except KafkaError as exc:
        raise _kafka_unreachable(settings, exc) from exc
    finally:
        await producer.stop()


async def list_sites(settings: Settings) -> list[SiteRecord]:
    registry = await _snapshot(settings)
    await registry.close()
    return registry.records()


async def add_site(
    settings: Settings,
    site: str,
    *,
    timezone: str = "UTC",
    domains: Iterable[str] = (),
    cookieless: bool = False,
    aliases: Iterable[str] = (),
) -> tuple[SiteRecord, str]:
    """Register a new site; returns its record and its API key (the only time it is shown).

    Two adds of the same id at the same instant both pass the existence check and the
    later write wins; the registry is an admin tool, not a contended path.
    """
    validate_site_id(site)
    validate_timezone(timezone)
    normalized = tuple(dict.fromkeys(normalize_domain(d) for d in domains))
    names = tuple(dict.fromkeys(validate_alias(a) for a in aliases))
    registry = await _snapshot(settings)
    await registry.close()
    if registry.record(site) is not None:
        raise RegistryError(f"site {site!r} already exists (use `footfall sites rotate-key`)")
    key = new_api_key()
    record = SiteRecord(
        site=site,
        timezone=timezone,
        domains=normalized,
        cookieless=cookieless,
        key_hash=hash_key(key),
        created_at=_now_iso(),
        aliases=names,
    )
    await _write(settings, record)
    return record, key


async def rotate_key(settings: Settings, site: str) -> tuple[SiteRecord, str]:
    """Give `site` a new API key; the old one stops working once readers see the record."""
    registry = await _snapshot(settings)
    await registry.close()
    current = registry.record(site)
    if current is None:
        raise RegistryError(f"site {site!r} is not registered (use `footfall sites add`)")
    key = new_api_key()
    record = SiteRecord(
        site=current.site,
        timezone=current.timezone,
        domains=current.domains,
        cookieless=current.cookieless,
        key_hash=hash_key(key),
        created_at=current.created_at,
        aliases=current.aliases,
        mp_secret_hash=current.mp_secret_hash,
    )
    await _write(settings, record)
    return record, key


async def set_mp_secret(
    settings: Settings, site: str, *, measurement_id: str | None = None
) -> tuple[SiteRecord, str]:
    """Give `site` a new GA4 Measurement Protocol secret (the old one stops working) and,
    with `measurement_id`, accept that id for it; returns the record and the secret."""
    if measurement_id is not None:
        validate_alias(measurement_id)
    registry = await _snapshot(settings)
    await registry.close()
    current = registry.record(site)
    if current is None:
        raise RegistryError(f"site {site!r} is not registered (use `footfall sites add`)")
    aliases = current.aliases
    if measurement_id is not None:
        owner = registry.resolve(measurement_id)
        if owner is not None and owner.site != site:
            raise RegistryError(f"{measurement_id!r} already names site {owner.site!r}")
        aliases = tuple(dict.fromkeys((*aliases, measurement_id)))
    secret = new_mp_secret()
    record = dataclasses.replace(current, aliases=aliases, mp_secret_hash=hash_key(secret))
    await _write(settings, record)
    return record, secret
