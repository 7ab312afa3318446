"""What the gateway knows about one site (a merchant's property)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """One registered site, as the registry hands it to the gateway.

    ``timezone`` is an IANA name (reports default to it); ``domains`` are the
    site's own hosts, whose referrers (and their subdomains') count as internal;
    ``cookieless`` sites get the daily-salted visitor hash instead of a cookie.
    """

    site: str
    timezone: str
    domains: tuple[str, ...]
    cookieless: bool
