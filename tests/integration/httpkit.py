"""Small HTTP helpers the integration tests share: free ports, JSON GETs, ISO times."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import orjson


def free_port() -> int:
    """A TCP port nothing listens on now (for a process the test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def call(url: str, key: str | None = None, timeout: float = 60) -> tuple[int, Any]:
    """GET `url` (with the site key as a bearer token): status and decoded JSON body."""
    request = urllib.request.Request(url)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"null")


def iso(ms: int) -> str:
    """Epoch milliseconds as an ISO 8601 UTC minute, the API's `from`/`to` form."""
    return (
        datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="minutes").replace("+00:00", "Z")
    )
