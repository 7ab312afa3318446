"""The registry's rules that need no broker: ids, time zones, domains, keys, stored records."""

from __future__ import annotations

import hashlib

import pytest

from footfall.settings import get_settings
from footfall.sites.registry import (
    RegistryError,
    SiteRecord,
    SiteRegistry,
    hash_key,
    new_api_key,
    normalize_domain,
    validate_site_id,
    validate_timezone,
)


@pytest.mark.parametrize("site", ["a", "shop-1", "shop.example_2", "0" * 64])
def test_valid_site_ids(site: str) -> None:
    assert validate_site_id(site) == site


@pytest.mark.parametrize("site", ["", "Shop", "-shop", "shop site", "a" * 65, "shop\n", "shöp"])
def test_invalid_site_ids(site: str) -> None:
    with pytest.raises(RegistryError, match="invalid site id"):
        validate_site_id(site)


@pytest.mark.parametrize("tz", ["UTC", "Asia/Kolkata", "America/Argentina/Buenos_Aires"])
def test_valid_timezones(tz: str) -> None:
    assert validate_timezone(tz) == tz


@pytest.mark.parametrize("tz", ["", "Mars/Olympus", "../../etc/passwd", "asia/kolkata ", "+05:30"])
def test_invalid_timezones(tz: str) -> None:
    with pytest.raises(RegistryError, match="unknown time zone"):
        validate_timezone(tz)


@pytest.mark.parametrize(
    ("host", "normalized"),
    [
        ("shop.example.com", "shop.example.com"),
        ("Shop.Example.COM.", "shop.example.com"),
        ("  localhost ", "localhost"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("a-b.c-d.io", "a-b.c-d.io"),
    ],
)
def test_domains_are_normalized(host: str, normalized: str) -> None:
    assert normalize_domain(host) == normalized


@pytest.mark.parametrize(
    "host",
    [
        "",
        "https://shop.example.com",
        "shop.example.com/path",
        "shop.example.com:8080",
        "*.example.com",
        "-shop.example.com",
        "shop..example.com",
        "192.168.1.1",
        "a" * 64 + ".com",
        "under_score.com",
    ],
)
def test_invalid_domains(host: str) -> None:
    with pytest.raises(RegistryError, match="invalid domain"):
        normalize_domain(host)


def test_keys_are_random_prefixed_and_stored_as_sha256() -> None:
    keys = {new_api_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(k.startswith("ff_") and len(k) >= 43 for k in keys)
    key = next(iter(keys))
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()


def test_record_round_trips_and_ignores_unknown_fields() -> None:
    record = SiteRecord(
        "shop", "Asia/Kolkata", ("a.com", "b.com"), True, "ab" * 32, "2026-01-01T00:00:00Z"
    )
    assert SiteRecord.from_json("shop", record.to_json()) == record
    extended = record.to_json()[:-1] + b',"plan":"pro"}'
    assert SiteRecord.from_json("shop", extended) == record


@pytest.mark.parametrize("value", [b"[]", b'{"timezone": "UTC"}', b'{"domains": "a.com"}', b"null"])
def test_bad_stored_values_are_refused(value: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any parse error is the point
        SiteRecord.from_json("shop", value)


def test_check_key_needs_the_site_and_its_current_key() -> None:
    key, other = new_api_key(), new_api_key()
    registry = SiteRegistry(get_settings())
    assert not registry.loaded
    registry.preload([SiteRecord("shop", "UTC", (), False, hash_key(key), "t")])
    assert registry.loaded
    assert registry.check_key("shop", key)
    assert not registry.check_key("shop", other)
    assert not registry.check_key("ghost", key)
    assert not registry.check_key("shop", "")
    config = registry.get("shop")
    assert config is not None
    assert config.site == "shop"
