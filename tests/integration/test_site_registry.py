"""The site registry in Kafka and the `footfall sites` commands, against the real broker."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from aiokafka.admin.config_resource import (  # type: ignore[import-untyped]
    ConfigResource,
    ConfigResourceType,
)

from footfall.cli import main
from footfall.settings import Settings, get_settings
from footfall.sites.registry import (
    RegistryError,
    SiteRegistry,
    add_site,
    list_sites,
    rotate_key,
)
from footfall.stack.kafka import Kafka

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kafka() -> Kafka:
    service = Kafka(get_settings())
    service.start()
    return service


@pytest.fixture
async def settings(kafka: Kafka) -> AsyncIterator[Settings]:
    """Settings whose registry is a topic of this test only (deleted afterwards)."""
    topic = f"footfall-test-sites-{uuid.uuid4().hex[:12]}"
    yield get_settings().model_copy(update={"sites_topic": topic})
    admin = AIOKafkaAdminClient(bootstrap_servers=get_settings().kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


@pytest.fixture
def env_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The same settings seen by the CLI, which reads the environment."""
    monkeypatch.setenv("FOOTFALL_SITES_TOPIC", settings.sites_topic)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


async def raw_values(settings: Settings) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(settings.sites_topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        values: list[bytes] = []
        while await consumer.position(tp) < end:
            for messages in (await consumer.getmany(tp, timeout_ms=1000)).values():
                values.extend(m.value for m in messages)
        return values
    finally:
        await consumer.stop()


async def test_add_stores_the_site_and_only_a_hash_of_its_key(settings: Settings) -> None:
    record, key = await add_site(
        settings,
        "shop-one",
        timezone="Asia/Kolkata",
        domains=["Shop.Example.COM.", "www.shop.example.com", "shop.example.com"],
    )
    assert key.startswith("ff_")
    assert len(key) > 40
    assert record.domains == ("shop.example.com", "www.shop.example.com")
    assert record.key_hash == hashlib.sha256(key.encode()).hexdigest()

    registry = SiteRegistry(settings)
    await registry.load()
    await registry.close()
    assert registry.loaded
    config = registry.get("shop-one")
    assert config is not None
    assert (config.timezone, config.domains, config.cookieless) == (
        "Asia/Kolkata",
        ("shop.example.com", "www.shop.example.com"),
        False,
    )
    assert registry.check_key("shop-one", key)
    assert not registry.check_key("shop-one", key + "x")
    assert not registry.check_key("other-site", key)
    assert registry.get("other-site") is None

    values = await raw_values(settings)
    assert len(values) == 1
    assert key.encode() not in values[0]


async def test_registry_topic_is_compacted(settings: Settings) -> None:
    await add_site(settings, "shop-compact")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.sites_topic)]
        )
    finally:
        await admin.close()
    configs = {entry[0]: entry[1] for entry in response.resources[0][4]}
    assert configs["cleanup.policy"] == "compact"


async def test_adding_an_existing_site_is_an_error_and_changes_nothing(
    settings: Settings,
) -> None:
    _, key = await add_site(settings, "shop-dup")
    with pytest.raises(RegistryError, match="'shop-dup' already exists"):
        await add_site(settings, "shop-dup", cookieless=True)
    assert len(await raw_values(settings)) == 1
    [record] = await list_sites(settings)
    assert record.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert not record.cookieless


async def test_rotate_key_retires_the_old_key_in_a_running_registry(settings: Settings) -> None:
    _, old_key = await add_site(settings, "shop-rotate", cookieless=True)
    following = SiteRegistry(settings)
    task = asyncio.create_task(following.run())
    try:
        assert await following.wait_loaded(30)
        assert following.check_key("shop-rotate", old_key)
        record, new_key = await rotate_key(settings, "shop-rotate")
        assert new_key != old_key
        assert record.cookieless  # everything but the key is kept
        deadline = time.monotonic() + 15
        while following.check_key("shop-rotate", old_key):
            assert time.monotonic() < deadline, "the running registry kept the old key"
            await asyncio.sleep(0.1)
        assert following.check_key("shop-rotate", new_key)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await following.close()


async def test_rotating_an_unknown_site_is_an_error(settings: Settings) -> None:
    with pytest.raises(RegistryError, match="'nope' is not registered"):
        await rotate_key(settings, "nope")


@pytest.mark.parametrize(
    ("site", "kwargs", "message"),
    [
        ("Bad Site", {}, "invalid site id"),
        ("shop", {"timezone": "Mars/Olympus"}, "unknown time zone"),
        ("shop", {"domains": ["https://shop.example.com/"]}, "invalid domain"),
        ("shop", {"domains": ["*.example.com"]}, "invalid domain"),
        ("shop", {"domains": ["10.0.0.1"]}, "invalid domain"),
    ],
)
async def test_invalid_input_is_refused_before_anything_is_written(
    settings: Settings, site: str, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(RegistryError, match=message):
        await add_site(settings, site, **kwargs)  # type: ignore[arg-type]


def test_cli_add_list_rotate(env_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sites", "add", "cli-shop", "--timezone", "Europe/Paris", "--domain", "a.b"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("ff_")

    assert main(["sites", "add", "cli-shop"]) == 1
    captured = capsys.readouterr()
    assert "already exists" in captured.err
    assert captured.out == ""

    assert main(["sites", "list"]) == 0
    listing = capsys.readouterr().out
    assert "cli-shop" in listing
    assert "Europe/Paris" in listing
    assert "a.b" in listing
    assert key not in listing

    assert main(["sites", "rotate-key", "cli-shop"]) == 0
    new_key = capsys.readouterr().out.strip().splitlines()[-1]
    assert new_key.startswith("ff_")
    assert new_key != key

    assert main(["sites", "rotate-key", "missing"]) == 1
    assert "not registered" in capsys.readouterr().err
