"""CORS for the collect endpoints only: browsers on any merchant origin may send events.

The visitor cookie rides along (credentials), so the origin is echoed rather than `*`.
The collect endpoints are public by design; what protects a site is the registry (unknown
sites get 400) and the rate limit, not the origin.
"""

from __future__ import annotations

from aiohttp import hdrs, web

_MAX_AGE_S = "86400"
_METHODS = "POST, GET, OPTIONS"


def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Add the CORS answer headers to a collect response (a no-op without Origin)."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return
    headers = response.headers
    headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
    headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
    headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = hdrs.RETRY_AFTER
    headers.add(hdrs.VARY, hdrs.ORIGIN)


async def preflight(request: web.Request) -> web.Response:
    """Answer an `OPTIONS` preflight for a collect endpoint."""
    response = web.Response(status=204)
    if hdrs.ORIGIN not in request.headers:
        response.headers[hdrs.ALLOW] = _METHODS
        return response
    add_headers(request, response)
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = _METHODS
    requested = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS)
    if requested:
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = requested
    response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = _MAX_AGE_S
    return response
