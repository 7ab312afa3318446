"""Turning a validated event and its request into the envelope published on ``events.raw``.

Everything here is pure (no network): the IP database, the User-Agent rules and the
public suffix list ship with their packages and load once per process in
:class:`Enricher`. The work that depends only on the request (country, User-Agent,
the visitor fallbacks) is done once per request, not once per event, and User-Agent
results are cached across requests because the same few hundred strings make up
nearly all traffic.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, Final, Literal
from urllib.parse import parse_qs, urlsplit

import tldextract
from crawlerdetect import CrawlerDetect
from geoip2fast import GeoIP2Fast
from ua_parser import BestAvailableResolver, Domain, Parser, load_lazy_builtins

from footfall.events import (
    WireEvent,
    canonical_lang,
    event_time,
    is_valid_lang,
    is_valid_visitor,
)
from footfall.sites.model import SiteConfig

Device = Literal["desktop", "mobile", "tablet", "bot", "other"]

DIRECT: Final = "direct"
MIN_SECRET_BYTES: Final = 16
# Real User-Agents are far shorter; a cap keeps a hostile 8 KiB header from costing
# milliseconds of regex time on every request.
MAX_PARSED_UA_CHARS: Final = 512
_DAY_MS: Final = 86_400_000
_EPOCH: Final = date(1970, 1, 1)


def new_visitor_id() -> str:
    """A fresh random visitor id, for a browser that has no cookie yet."""
    return uuid.uuid4().hex


def new_event_id() -> str:
    """A fresh event id, for an event the emitter sent without one."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What enrichment needs from one ``POST /v1/collect`` request.

    ``new_visitor`` is drawn once per request, so that every event of a request from
    a browser without a cookie gets the same new visitor id (the one set as cookie).
    """

    ip: str
    user_agent: str
    received_at: int
    cookie_visitor: str | None
    accept_language: str | None = None
    new_visitor: str = field(default_factory=new_visitor_id, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    """What the published event says about a User-Agent."""

    device: Device
    browser: str
    os: str
    bot: bool


# --- User-Agent ------------------------------------------------------------------------

_TABLET_DEVICE_FAMILIES: Final = frozenset(
    {
        "iPad",
        "Kindle",
        "Kindle Fire",
        "Kindle Fire HD",
        "BlackBerry Playbook",
        "Blackberry Playbook",
        "Galaxy Tab",
        "Xoom",
        "Nexus 7",
        "Nexus 9",
        "Nexus 10",
    }
)
_MOBILE_DEVICE_FAMILIES: Final = frozenset(
    {"iPhone", "iPod", "Generic Smartphone", "Generic Feature Phone"}
)
_MOBILE_OS_FAMILIES: Final = frozenset(
    {
        "iOS",
        "Android",
        "Windows Phone",
        "Windows Mobile",
        "BlackBerry OS",
        "BlackBerry",
        "KaiOS",
        "Symbian OS",
        "Symbian^3",
        "Firefox OS",
        "HarmonyOS",
        "Bada",
        "Maemo",
        "MeeGo",
        "Sailfish",
    }
)
_DESKTOP_OS_FAMILIES: Final = frozenset(
    {
        "Windows",
        "Mac OS X",
        "Mac OS",
        "Chrome OS",
        "Linux",
        "Ubuntu",
        "Kubuntu",
        "Debian",
        "Fedora",
        "Red Hat",
        "CentOS",
        "SUSE",
        "openSUSE",
        "Mint",
        "Arch Linux",
        "Gentoo",
        "Mandriva",
        "Slackware",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Solaris",
    }
)
# TVs, consoles and media boxes: "other", whatever their OS family says.
_TV_RE: Final = re.compile(
    r"SMART-?TV|SmartTV|GoogleTV|Android ?TV|\bAFT[A-Z]|BRAVIA|HbbTV|Web0S|NetCast|"
    r"CrKey|Roku|AppleTV|PlayStation|Xbox|Nintendo|\bTV Safari",
    re.IGNORECASE,
)


def classify_device(
    ua: str, device_family: str, device_brand: str | None, os_family: str
) -> Device:
    """Desktop, mobile, tablet or other, from ua-parser's results and a few UA tokens.

    ua-parser names devices but does not type them; the rules follow the usual ones
    (the ``user-agents`` package's, MDN's "Mobi" advice): an Android browser without
    ``Mobile`` in its UA is a tablet, ``iPad`` is a tablet (iPadOS 13+ Safari sends a
    Mac UA and so counts as desktop: it cannot be told apart).
    """
    if _TV_RE.search(ua):
        return "other"
    if (
        device_family in _TABLET_DEVICE_FAMILIES
        or device_brand == "Generic_Android_Tablet"
        or "Tablet" in ua
        or "Silk/" in ua
    ):
        return "tablet"
    if os_family == "Android":
        if "Mobile" in ua or not ua.startswith("Mozilla/"):
            return "mobile"  # apps' HTTP stacks (Dalvik, okhttp) run on phones mostly
        return "tablet"
    if device_family in _MOBILE_DEVICE_FAMILIES or os_family in _MOBILE_OS_FAMILIES or "Mobi" in ua:
        return "mobile"
    if os_family in _DESKTOP_OS_FAMILIES or os_family.startswith("Windows"):
        return "desktop"
    return "other"


# --- source ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UrlParts:
    """What the envelope and the source rule take from an event's ``url``."""

    host: str
    path: str
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None


def _first(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    if not values:
        return None
    value = values[0].strip()
    return value or None


def url_parts(url: str) -> UrlParts:
    """Host, path (no query string, ``/`` when empty) and utm parameters of a valid url."""
    parts = urlsplit(url)
    host = _strip_www((parts.hostname or "").rstrip("."))
    query = parts.query
    if "utm_" not in query:
        return UrlParts(host, parts.path or "/", None, None, None)
    params = parse_qs(query)
    return UrlParts(
        host,
        parts.path or "/",
        _first(params, "utm_source"),
        _first(params, "utm_medium"),
        _first(params, "utm_campaign"),
    )


def _strip_www(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


def _on_host(host: str, own: str) -> bool:
    return host == own or host.endswith("." + own)


def site_hosts(site: SiteConfig) -> tuple[str, ...]:
    """The site's own hosts, lower case, without ``www.`` (referrers from them are internal)."""
    hosts = (_strip_www(d.strip().lower().rstrip(".")) for d in site.domains)
    return tuple(h for h in hosts if h)


# --- the enricher ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _RequestFacts:
    country: str
    agent: UserAgentInfo
    lang: str | None


class Enricher:
    """Adds the gateway's fields to validated events; build one per process.

    ``visitor_secret`` (at least 16 bytes, the same on every gateway replica) keys
    the daily salt of the cookieless visitor hash: the salt is derived from it and the
    UTC date, so replicas agree without talking, and yesterday's hashes cannot be
    linked to today's.
    """

    def __init__(
        self,
        visitor_secret: str | bytes,
        *,
        ua_cache_size: int = 8192,
        host_cache_size: int = 8192,
        url_cache_size: int = 8192,
        geoip_data_file: str = "geoip2fast-ipv6.dat.gz",
    ) -> None:
        secret = visitor_secret.encode() if isinstance(visitor_secret, str) else visitor_secret
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"visitor_secret must hold at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self._geoip = GeoIP2Fast(geoip2fast_data_file=geoip_data_file)
        self._ua_parser = Parser(BestAvailableResolver(load_lazy_builtins()))
        self._crawlers = CrawlerDetect()
        # The bundled public suffix snapshot only: no fetch, no cache files.
        self._tld = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
        self.user_agent_info: Callable[[str], UserAgentInfo] = lru_cache(maxsize=ua_cache_size)(
            self._user_agent_info
        )
        self.registrable_domain: Callable[[str], str] = lru_cache(maxsize=host_cache_size)(
            self._registrable_domain
        )
        self.url_parts: Callable[[str], UrlParts] = lru_cache(maxsize=url_cache_size)(url_parts)
        self._site_hosts: Callable[[SiteConfig], tuple[str, ...]] = lru_cache(maxsize=1024)(
            site_hosts
        )
        self._salt_day = -1
        self._salt = b""
        self._last_ctx: RequestContext | None = None
        self._last_facts: _RequestFacts | None = None

    # --- per process caches ---------------------------------------------------------

    def _user_agent_info(self, user_agent: str) -> UserAgentInfo:
        ua = user_agent.strip()[:MAX_PARSED_UA_CHARS]
        result = self._ua_parser(ua, Domain.ALL).complete()
        browser = result.user_agent.family if result.user_agent else "Other"
        os_family = result.os.family if result.os else "Other"
        device_family = result.device.family if result.device else "Other"
        device_brand = result.device.brand if result.device else None
        # No User-Agent at all is a script: every browser and app HTTP stack sends one.
        bot = (
            not ua
            or device_family == "Spider"
            or browser == "Spider"
            or self._crawlers.is_crawler(ua)
        )
        if bot:
            return UserAgentInfo("bot", browser, os_family, True)
        device = classify_device(ua, device_family, device_brand, os_family)
        return UserAgentInfo(device, browser, os_family, False)

    def _registrable_domain(self, host: str) -> str:
        domain: str = self._tld.extract_str(host).top_domain_under_public_suffix
        return domain or host  # localhost, IP addresses, unknown suffixes

    def country(self, ip: str) -> str:
        """ISO 3166 alpha-2 country of an IP address, ``""`` for private or unknown ones."""
        code: str = self._geoip.lookup(ip).country_code
        return code if len(code) == 2 and code.isalpha() and code.isupper() else ""

    def day_salt(self, received_at: int) -> bytes:
        """The cookieless-hash salt of the UTC day holding ``received_at``."""
        day = received_at // _DAY_MS
        if day != self._salt_day:
            label = (_EPOCH + timedelta(days=day)).isoformat()
            self._salt = hmac.digest(
                self._secret, b"footfall/visitor-salt/v1/" + label.encode(), "sha256"
            )
            self._salt_day = day
        return self._salt

    def cookieless_visitor(self, site: str, ip: str, user_agent: str, received_at: int) -> str:
        """The daily-salted hash of site + IP + User-Agent: a visitor id without cookies."""
        data = "\x00".join((site, ip, user_agent)).encode("utf-8", "surrogatepass")
        key = self.day_salt(received_at)
        return hashlib.blake2b(data, key=key, digest_size=16).hexdigest()

    def source(self, referrer: str | None, page: UrlParts | None, site: SiteConfig) -> str:
        """Acquisition source: ``utm_source``, else the external referrer's domain, else direct.

        A referrer on the page's own host or one of the site's domains (``www.``
        ignored, subdomains included) is internal and so no source.
        """
        if page is not None and page.utm_source is not None:
            return page.utm_source
        if not referrer:
            return DIRECT
        try:
            ref = urlsplit(referrer)
            host = ref.hostname
        except ValueError:
            return DIRECT
        if not host:
            return DIRECT
        host = _strip_www(host.rstrip("."))
        if page is not None and page.host and _on_host(host, page.host):
            return DIRECT
        if any(_on_host(host, own) for own in self._site_hosts(site)):
            return DIRECT
        if ref.scheme in ("http", "https"):
            return self.registrable_domain(host)
        return host  # android-app://com.google.android.gm and the like: the app id

    # --- per request ------------------------------------------------------------------

    def _facts(self, ctx: RequestContext) -> _RequestFacts:
        # One slot: the events of one request are enriched one after another.
        if ctx is self._last_ctx and self._last_facts is not None:
            return self._last_facts
        facts = _RequestFacts(
            country=self.country(ctx.ip),
            agent=self.user_agent_info(ctx.user_agent),
            lang=_lang_of(ctx.accept_language),
        )
        self._last_ctx, self._last_facts = ctx, facts
        return facts

    def visitor(
        self, event: WireEvent, ctx: RequestContext, site: SiteConfig
    ) -> tuple[str, str | None]:
        """The event's visitor id and the cookie value to set (None: set none).

        In order: the emitter's ``visitor``; on a cookieless site the daily hash (its
        cookie is neither read nor set); the gateway's cookie when valid; else a new
        random id, which the gateway sets as cookie.
        """
        visitor = event["visitor"]
        if visitor is not None:
            return visitor, None
        if site.cookieless:
            return self.cookieless_visitor(site.site, ctx.ip, ctx.user_agent, ctx.received_at), None
        cookie = ctx.cookie_visitor
        if cookie is not None and is_valid_visitor(cookie):
            return cookie, None
        return ctx.new_visitor, ctx.new_visitor

    def enrich(
        self, event: WireEvent, ctx: RequestContext, site: SiteConfig, sample_rate: int
    ) -> tuple[dict[str, Any], str | None]:
        """The envelope to publish for one event (keys in ``ENVELOPE_FIELDS`` order) and
        the visitor cookie value to set, or None. The client IP is used, never copied.
        """
        if sample_rate < 1:
            raise ValueError("sample_rate must be >= 1")
        facts = self._facts(ctx)
        visitor, cookie = self.visitor(event, ctx, site)
        url = event["url"]
        page = self.url_parts(url) if url is not None else None
        agent = facts.agent
        lang = event["lang"]
        event_id = event["id"]
        return {
            "site": event["site"],
            "name": event["name"],
            "url": url,
            "visitor": visitor,
            "id": event_id if event_id is not None else new_event_id(),
            "ts": event["ts"],
            "referrer": event["referrer"],
            "title": event["title"],
            "props": event["props"],
            "revenue": event["revenue"],
            "screen": event["screen"],
            "lang": lang if lang is not None else facts.lang,
            "received_at": ctx.received_at,
            "event_time": event_time(event["ts"], ctx.received_at),
            "country": facts.country,
            "device": agent.device,
            "browser": agent.browser,
            "os": agent.os,
            "bot": agent.bot,
            "source": self.source(event["referrer"], page, site),
            "sample_rate": sample_rate,
            "path": page.path if page is not None else None,
            "utm_source": page.utm_source if page is not None else None,
            "utm_medium": page.utm_medium if page is not None else None,
            "utm_campaign": page.utm_campaign if page is not None else None,
        }, cookie

    def enrich_batch(
        self,
        events: Iterable[WireEvent],
        ctx: RequestContext,
        site: SiteConfig,
        sample_rate: int,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """:meth:`enrich` for every event of one request; the cookie to set, if any."""
        envelopes: list[dict[str, Any]] = []
        cookie: str | None = None
        for event in events:
            envelope, event_cookie = self.enrich(event, ctx, site, sample_rate)
            envelopes.append(envelope)
            cookie = cookie or event_cookie
        return envelopes, cookie


def _lang_of(accept_language: str | None) -> str | None:
    """The first language of an Accept-Language header, canonically cased, if well formed."""
    if not accept_language:
        return None
    first = accept_language.partition(",")[0].partition(";")[0].strip()
    if not first or not is_valid_lang(first):
        return None
    return canonical_lang(first)
