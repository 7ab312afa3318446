"""The tracker's routes: its two names, caching, gzip, 304s, and the development demo page."""

from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp.plugin import AiohttpClient

from web.gateway.tracker import (
    IMMUTABLE_CACHE,
    SHORT_CACHE,
    TRACKER_JS,
    StaticAsset,
    accepts_gzip,
    add_tracker_routes,
    etag_matches,
)

Client = TestClient[web.Request, web.Application]
Build = Callable[..., Awaitable[Client]]

TRACKER = TRACKER_JS.read_bytes()
DIGEST = hashlib.sha256(TRACKER).hexdigest()[:16]
IDENTITY = {"Accept-Encoding": "identity"}


@pytest.fixture
def build(aiohttp_client: AiohttpClient) -> Build:
    async def make(*, demo: bool = False, tracker_js: Path = TRACKER_JS) -> Client:
        app = web.Application()
        add_tracker_routes(app, demo=demo, tracker_js=tracker_js)
        return await aiohttp_client(app)

    return make


def test_the_served_file_is_the_built_tracker() -> None:
    assert TRACKER_JS.name == "footfall.js"
    assert TRACKER.startswith(b"(function(")
    assert len(gzip.compress(TRACKER, 9)) <= 3072


async def test_footfall_js_is_cached_an_hour_with_an_etag(build: Build) -> None:
    client = await build()
    response = await client.get("/v1/footfall.js", headers=IDENTITY)
    assert response.status == 200
    assert await response.read() == TRACKER
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["Cache-Control"] == SHORT_CACHE == "public, max-age=3600"
    assert response.headers["ETag"] == f'W/"{DIGEST}"'
    assert response.headers["Vary"] == "Accept-Encoding"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Encoding" not in response.headers


async def test_the_hashed_name_is_immutable(build: Build) -> None:
    client = await build()
    response = await client.get(f"/v1/footfall.{DIGEST}.js", headers=IDENTITY)
    assert response.status == 200
    assert await response.read() == TRACKER
    assert response.headers["Cache-Control"] == IMMUTABLE_CACHE
    assert "immutable" in IMMUTABLE_CACHE
    assert "max-age=31536000" in IMMUTABLE_CACHE
    other = await client.get("/v1/footfall.0123456789abcdef.js")
    assert other.status == 404


async def test_gzip_when_accepted(build: Build) -> None:
    client = await build()
    response = await client.get(
        "/v1/footfall.js", headers={"Accept-Encoding": "gzip, br"}, auto_decompress=False
    )
    assert response.status == 200
    assert response.headers["Content-Encoding"] == "gzip"
    raw = await response.read()
    assert gzip.decompress(raw) == TRACKER
    assert int(response.headers["Content-Length"]) == len(raw) < len(TRACKER)


@pytest.mark.parametrize(
    "if_none_match", [f'W/"{DIGEST}"', f'"{DIGEST}"', f'"other", W/"{DIGEST}"', "*"]
)
async def test_revalidation_answers_304(build: Build, if_none_match: str) -> None:
    client = await build()
    response = await client.get("/v1/footfall.js", headers={"If-None-Match": if_none_match})
    assert response.status == 304
    assert await response.read() == b""
    assert response.headers["ETag"] == f'W/"{DIGEST}"'
    assert response.headers["Cache-Control"] == SHORT_CACHE


async def test_an_old_version_gets_the_new_file(build: Build) -> None:
    client = await build()
    response = await client.get(
        "/v1/footfall.js", headers={"If-None-Match": 'W/"0123456789abcdef"', **IDENTITY}
    )
    assert response.status == 200
    assert await response.read() == TRACKER


async def test_head_has_the_headers_and_no_body(build: Build) -> None:
    client = await build()
    response = await client.head("/v1/footfall.js", headers=IDENTITY)
    assert response.status == 200
    assert response.headers["Content-Length"] == str(len(TRACKER))
    assert await response.read() == b""


async def test_a_changed_tracker_changes_the_hashed_name(build: Build, tmp_path: Path) -> None:
    changed = tmp_path / "footfall.js"
    changed.write_bytes(b"(function(){})();")
    client = await build(tracker_js=changed)
    digest = hashlib.sha256(b"(function(){})();").hexdigest()[:16]
    assert (await client.get(f"/v1/footfall.{digest}.js")).status == 200
    assert (await client.get(f"/v1/footfall.{DIGEST}.js")).status == 404


def test_asset_integrity_is_sri_sha384() -> None:
    asset = StaticAsset.of(b"x")
    digest = base64.b64encode(hashlib.sha384(b"x").digest()).decode()
    assert asset.integrity == f"sha384-{digest}"
    assert asset.hashed_path == f"/v1/footfall.{asset.digest}.js"
    assert StaticAsset.of(b"x").gzipped == asset.gzipped, "gzip bytes are reproducible"


async def test_no_demo_page_unless_asked(build: Build) -> None:
    client = await build()
    assert (await client.get("/demo")).status == 404
    assert (await client.get("/demo/products")).status == 404


@pytest.mark.parametrize("path", ["/demo", "/demo/", "/demo/products", "/demo/cart"])
async def test_demo_page_serves_every_route_of_the_spa(build: Build, path: str) -> None:
    client = await build(demo=True)
    response = await client.get(path)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    html = await response.text()
    # The documented snippet: the stub queue, then the async tracker.
    assert (
        "window.footfall=window.footfall||function(){(footfall.q=footfall.q||[]).push(arguments)}"
        in html
    )
    assert '<script async src="/v1/footfall.js" data-site="demo"></script>' in html
    assert "currency: 'INR'" in html


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br, zstd", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("*", True),
        ("gzip;q=0", False),
        ("*;q=0, gzip", True),
        ("gzip;q=0, *", False),
        ("identity", False),
        ("", False),
        ("gzip;q=junk", False),
    ],
)
def test_accepts_gzip(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_etag_matches() -> None:
    assert etag_matches('W/"abc"', "abc")
    assert not etag_matches('W/"abcd"', "abc")
    assert not etag_matches(None, "abc")
    assert not etag_matches("", "abc")
