"""The dashboard page of a site, served by the workers next to the API it reads.

The page holds no data and no key: its script asks for the site's API key once and keeps
it in the browser's localStorage (per site), then calls the report API with it as
`Authorization: Bearer`, like any other client. A link may carry the key in the URL
fragment (`/dashboard/<site>#key=...`): fragments never reach a server or its logs, and
the script moves the key to localStorage and removes it from the address bar.

Assets are files of this package (assets/, the chart library vendored from npm into
assets/vendor by `npm run vendor`); nothing is fetched from elsewhere at run time.
"""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path
from typing import Final

ASSETS: Final = Path(__file__).resolve().parent / "assets"
_TYPES: Final = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}
#: Only these files are served (no path from a request ever reaches the filesystem).
ASSET_FILES: Final = {
    "dashboard.js": ASSETS / "dashboard.js",
    "dashboard.css": ASSETS / "dashboard.css",
    "uPlot.iife.min.js": ASSETS / "vendor" / "uPlot.iife.min.js",
    "uPlot.min.css": ASSETS / "vendor" / "uPlot.min.css",
}
PAGE_HEADERS: Final = {
    "Cache-Control": "no-cache",
    # Everything the page loads is its own: scripts, styles, API calls.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


@lru_cache(maxsize=1)
def _template() -> str:
    return (ASSETS / "dashboard.html").read_text(encoding="utf-8")


def page(site: str) -> bytes:
    """The page of one site (the id is escaped; the script reads it from data-site)."""
    return _template().replace("{{site}}", html.escape(site, quote=True)).encode()


@lru_cache(maxsize=len(ASSET_FILES))
def asset(name: str) -> tuple[bytes, str] | None:
    path = ASSET_FILES.get(name)
    if path is None:
        return None
    return path.read_bytes(), _TYPES[path.suffix]
