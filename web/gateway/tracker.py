"""The browser tracker's routes: `/v1/footfall.js`, its content-hashed twin, the demo page.

Two names for the same bytes, because a snippet pasted into a merchant's pages can never
be changed, yet the file behind it must be cacheable:

- `/v1/footfall.js`, the name the snippet loads: cached for an hour, then revalidated by
  ETag (a 304 costs headers only), so a new tracker reaches every page within the hour;
- `/v1/footfall.<hash>.js`, named by the first 16 hex digits of the SHA-256 of its
  content: cached for a year as `immutable`, for pages that pin one version, optionally
  with Subresource Integrity (`StaticAsset.integrity`). When the tracker changes, its
  hash changes, and the old name answers 404: a pinned copy must be re-pinned.

Both are gzipped once, at startup, and served to clients that accept gzip. They are
public scripts: any origin may load them, also with `crossorigin` for integrity checks.
The file itself is web/tracker/footfall.js, built from footfall.src.js and committed
(web/tracker/build.js).

The demo page (web/tracker/demo.html) is for development only: `add_tracker_routes(app,
demo=True)` serves it at `/demo` and at every path below it, its single-page routes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import hdrs, web

TRACKER_DIR: Final = Path(__file__).resolve().parent.parent / "tracker"
TRACKER_JS: Final = TRACKER_DIR / "footfall.js"
DEMO_HTML: Final = TRACKER_DIR / "demo.html"

TRACKER_PATH: Final = "/v1/footfall.js"
SHORT_CACHE: Final = "public, max-age=3600"
IMMUTABLE_CACHE: Final = "public, max-age=31536000, immutable"
DIGEST_CHARS: Final = 16

_JS_TYPE: Final = "text/javascript"


@dataclass(frozen=True, slots=True)
class StaticAsset:
    """A file served from memory, with its gzipped form and the names of its version."""

    body: bytes
    gzipped: bytes
    digest: str  # hex, the first DIGEST_CHARS of its SHA-256
    integrity: str  # the Subresource Integrity value, sha384-...

    @classmethod
    def of(cls, body: bytes) -> StaticAsset:
        sri = base64.b64encode(hashlib.sha384(body).digest()).decode()
        return cls(
            body=body,
            # mtime=0: the same bytes on every replica and restart.
            gzipped=gzip.compress(body, compresslevel=9, mtime=0),
            digest=hashlib.sha256(body).hexdigest()[:DIGEST_CHARS],
            integrity=f"sha384-{sri}",
        )

    @property
    def etag(self) -> str:
        # Weak: the gzipped and the plain bytes are one version of the same content.
        return f'W/"{self.digest}"'

    @property
    def hashed_path(self) -> str:
        """The immutable name of this version: `/v1/footfall.<hash>.js`."""
        return f"/v1/footfall.{self.digest}.js"


TRACKER: Final = web.AppKey("tracker", StaticAsset)
DEMO: Final = web.AppKey("demo_page", bytes)


def add_tracker_routes(
    app: web.Application,
    *,
    demo: bool = False,
    tracker_js: Path = TRACKER_JS,
    demo_html: Path = DEMO_HTML,
) -> None:
    """Serve the tracker at its two names and, with `demo`, the demo page at `/demo`.

    The files are read here, once: a missing footfall.js fails the gateway's start.
    """
    asset = StaticAsset.of(tracker_js.read_bytes())
    app[TRACKER] = asset
    app.router.add_get(TRACKER_PATH, tracker)
    app.router.add_get(asset.hashed_path, tracker_pinned)
    if demo:
        app[DEMO] = demo_html.read_bytes()
        app.router.add_get("/demo", demo_page)
        app.router.add_get("/demo/{route:.*}", demo_page)


async def tracker(request: web.Request) -> web.Response:
    """`GET /v1/footfall.js`: the current tracker, cached for an hour."""
    return serve_asset(request, request.app[TRACKER], SHORT_CACHE)


async def tracker_pinned(request: web.Request) -> web.Response:
    """`GET /v1/footfall.<hash>.js`: this version of the tracker, cached for good."""
    return serve_asset(request, request.app[TRACKER], IMMUTABLE_CACHE)


async def demo_page(request: web.Request) -> web.Response:
    """`GET /demo[/...]`: the demo shop; every path below is one of its routes."""
    response = web.Response(body=request.app[DEMO], content_type="text/html", charset="utf-8")
    response.headers[hdrs.CACHE_CONTROL] = "no-store"
    return response


def serve_asset(request: web.Request, asset: StaticAsset, cache_control: str) -> web.Response:
    """The script, gzipped when accepted, or 304 when the client holds this version."""
    headers = {
        hdrs.CACHE_CONTROL: cache_control,
        hdrs.ETAG: asset.etag,
        hdrs.VARY: hdrs.ACCEPT_ENCODING,
        hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    if etag_matches(request.headers.get(hdrs.IF_NONE_MATCH), asset.digest):
        return web.Response(status=304, headers=headers)
    if accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, "")):
        headers[hdrs.CONTENT_ENCODING] = "gzip"
        body = asset.gzipped
    else:
        body = asset.body
    return web.Response(body=body, headers=headers, content_type=_JS_TYPE, charset="utf-8")


def etag_matches(if_none_match: str | None, digest: str) -> bool:
    """Whether an If-None-Match header names this version (weak comparison, RFC 9110)."""
    if not if_none_match:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == f'"{digest}"':
            return True
    return False


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header accepts gzip: by name, else by `*`, with q > 0."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        q = 1.0
        param = params.strip().lower()
        if param.startswith("q="):
            try:
                q = float(param[2:])
            except ValueError:
                q = 0.0
        weights[coding.strip().lower()] = q
    for coding in ("gzip", "x-gzip", "*"):
        if coding in weights:
            return weights[coding] > 0
    return False
