"""Enrichment of validated events into the published envelope (spec/events.md)."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from footfall.events import ENVELOPE_FIELD_NAMES, WireEvent, validate_events
from footfall.sites.model import SiteConfig
from web.enrich import Enricher, RequestContext

SECRET = "test-secret-0123456789abcdef"
DAY_MS = 86_400_000
RECEIVED = 1_778_300_000_000  # 2026-05-09T04:13:20Z
DAY_START = RECEIVED - RECEIVED % DAY_MS
IP = "81.2.69.142"  # GB in the bundled database
IPV6 = "2405:200::1"  # IN
CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
HEX32 = re.compile(r"[0-9a-f]{32}")

SHOP = SiteConfig("shop.in", "Asia/Kolkata", ("shop.in", "pay-shop.com"), False)
COOKIELESS = SiteConfig("shop.in", "Asia/Kolkata", ("shop.in",), True)


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return Enricher(SECRET)


def wire(**fields: Any) -> WireEvent:
    raw = {"site": "shop.in", "name": "pageview", "url": "https://shop.in/p/1", **fields}
    events, errors = validate_events([raw])
    assert errors == []
    return events[0]


def ctx(
    *,
    ip: str = IP,
    user_agent: str = CHROME_WIN,
    received_at: int = RECEIVED,
    cookie: str | None = None,
    accept_language: str | None = None,
) -> RequestContext:
    return RequestContext(ip, user_agent, received_at, cookie, accept_language)


# --- the whole envelope ---------------------------------------------------------------------


def test_full_envelope(enricher: Enricher) -> None:
    event = wire(
        url="https://www.shop.in/p/1?utm_source=news&utm_medium=email&utm_campaign=diwali#top",
        visitor="v-1",
        id="e-1",
        ts=RECEIVED - 60_000,
        referrer="https://www.google.co.in/search?q=shoes",
        title="Shoes",
        props={"plan": "gold", "qty": 2},
        revenue={"amount": 499, "currency": "INR"},
        screen="390x844",
        lang="en-in",
    )
    envelope, cookie = enricher.enrich(event, ctx(user_agent=IPHONE), SHOP, 4)
    assert cookie is None
    assert list(envelope) == list(ENVELOPE_FIELD_NAMES)
    assert envelope == {
        "site": "shop.in",
        "name": "pageview",
        "url": "https://www.shop.in/p/1?utm_source=news&utm_medium=email&utm_campaign=diwali#top",
        "visitor": "v-1",
        "id": "e-1",
        "ts": RECEIVED - 60_000,
        "referrer": "https://www.google.co.in/search?q=shoes",
        "title": "Shoes",
        "props": {"plan": "gold", "qty": 2.0},
        "revenue": {"amount": 499.0, "currency": "INR"},
        "screen": "390x844",
        "lang": "en-IN",
        "received_at": RECEIVED,
        "event_time": RECEIVED - 60_000,
        "country": "GB",
        "device": "mobile",
        "browser": "Mobile Safari",
        "os": "iOS",
        "bot": False,
        "source": "news",
        "sample_rate": 4,
        "path": "/p/1",
        "utm_source": "news",
        "utm_medium": "email",
        "utm_campaign": "diwali",
    }


def test_minimal_custom_event_envelope(enricher: Enricher) -> None:
    event = wire(name="signup", url=None)
    envelope, _ = enricher.enrich(event, ctx(), SHOP, 1)
    assert list(envelope) == list(ENVELOPE_FIELD_NAMES)
    assert {
        k: envelope[k] for k in ("url", "path", "utm_source", "utm_medium", "utm_campaign")
    } == {
        "url": None,
        "path": None,
        "utm_source": None,
        "utm_medium": None,
        "utm_campaign": None,
    }
    assert (envelope["source"], envelope["event_time"], envelope["ts"]) == (
        "direct",
        RECEIVED,
        None,
    )
    assert HEX32.fullmatch(envelope["id"])


@pytest.mark.parametrize(
    ("ts", "event_time"),
    [
        pytest.param(RECEIVED - 72 * 3_600_000, RECEIVED - 72 * 3_600_000, id="72h-behind-kept"),
        pytest.param(RECEIVED - 72 * 3_600_000 - 1, RECEIVED, id="older-replaced"),
        pytest.param(RECEIVED + 300_000, RECEIVED + 300_000, id="5min-ahead-kept"),
        pytest.param(RECEIVED + 300_001, RECEIVED, id="further-ahead-replaced"),
    ],
)
def test_event_time_in_envelope(enricher: Enricher, ts: int, event_time: int) -> None:
    envelope, _ = enricher.enrich(wire(ts=ts), ctx(), SHOP, 1)
    assert (envelope["ts"], envelope["event_time"]) == (ts, event_time)


def test_sample_rate_must_be_positive(enricher: Enricher) -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        enricher.enrich(wire(), ctx(), SHOP, 0)


# --- id ---------------------------------------------------------------------------------------


def test_event_id_kept_or_assigned(enricher: Enricher) -> None:
    request = ctx(cookie="c-1")
    kept, _ = enricher.enrich(wire(id="mine"), request, SHOP, 1)
    first, _ = enricher.enrich(wire(), request, SHOP, 1)
    second, _ = enricher.enrich(wire(), request, SHOP, 1)
    assert kept["id"] == "mine"
    assert HEX32.fullmatch(first["id"])
    assert HEX32.fullmatch(second["id"])
    assert first["id"] != second["id"]


# --- visitor -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_visitor", "cookie", "site", "expected", "sets_cookie"),
    [
        pytest.param("emitter", None, SHOP, "emitter", False, id="emitter-id"),
        pytest.param("emitter", "cookie-1", SHOP, "emitter", False, id="emitter-id-over-cookie"),
        pytest.param(None, "cookie-1", SHOP, "cookie-1", False, id="cookie"),
        pytest.param(None, None, SHOP, "new", True, id="new-id-set-as-cookie"),
        pytest.param(None, "", SHOP, "new", True, id="empty-cookie-replaced"),
        pytest.param(None, "x" * 129, SHOP, "new", True, id="too-long-cookie-replaced"),
        pytest.param(None, "bad\x01", SHOP, "new", True, id="control-char-cookie-replaced"),
        pytest.param(None, None, COOKIELESS, "hash", False, id="cookieless-hash"),
        pytest.param(None, "cookie-1", COOKIELESS, "hash", False, id="cookieless-ignores-cookie"),
        pytest.param("emitter", None, COOKIELESS, "emitter", False, id="cookieless-emitter-id"),
    ],
)
def test_visitor(
    enricher: Enricher,
    event_visitor: str | None,
    cookie: str | None,
    site: SiteConfig,
    expected: str,
    sets_cookie: bool,
) -> None:
    request = ctx(cookie=cookie)
    envelope, set_cookie = enricher.enrich(wire(visitor=event_visitor), request, site, 1)
    if expected == "new":
        expected = request.new_visitor
        assert HEX32.fullmatch(expected)
    elif expected == "hash":
        expected = enricher.cookieless_visitor("shop.in", IP, CHROME_WIN, RECEIVED)
    assert envelope["visitor"] == expected
    assert set_cookie == (expected if sets_cookie else None)


def test_new_visitor_shared_by_the_events_of_one_request(enricher: Enricher) -> None:
    request = ctx()
    envelopes, cookie = enricher.enrich_batch([wire(), wire(), wire(name="buy")], request, SHOP, 1)
    assert cookie == request.new_visitor
    assert {e["visitor"] for e in envelopes} == {request.new_visitor}
    other = ctx()
    assert other.new_visitor != request.new_visitor
    assert enricher.enrich(wire(), other, SHOP, 1)[0]["visitor"] == other.new_visitor


def test_batch_without_new_visitor_sets_no_cookie(enricher: Enricher) -> None:
    envelopes, cookie = enricher.enrich_batch([wire(), wire()], ctx(cookie="c-9"), SHOP, 1)
    assert cookie is None
    assert [e["visitor"] for e in envelopes] == ["c-9", "c-9"]


def hash_of(
    enricher: Enricher, *, site: str = "shop.in", ip: str = IP, ua: str = CHROME_WIN, at: int
) -> str:
    return enricher.cookieless_visitor(site, ip, ua, at)


def test_cookieless_hash_stable_within_a_utc_day(enricher: Enricher) -> None:
    first = hash_of(enricher, at=DAY_START)
    assert HEX32.fullmatch(first)
    assert hash_of(enricher, at=RECEIVED) == first
    assert hash_of(enricher, at=DAY_START + DAY_MS - 1) == first


def test_cookieless_hash_rotates_at_utc_midnight(enricher: Enricher) -> None:
    today = hash_of(enricher, at=DAY_START + DAY_MS - 1)
    tomorrow = hash_of(enricher, at=DAY_START + DAY_MS)
    assert tomorrow != today
    assert hash_of(enricher, at=DAY_START + 2 * DAY_MS) not in (today, tomorrow)
    assert hash_of(enricher, at=DAY_START) == today  # the salt cache goes back, too


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"site": "other.in"}, id="site"),
        pytest.param({"ip": "81.2.69.143"}, id="ip"),
        pytest.param({"ua": IPHONE}, id="user-agent"),
    ],
)
def test_cookieless_hash_differs_per_input(enricher: Enricher, change: dict[str, str]) -> None:
    assert hash_of(enricher, at=RECEIVED, **change) != hash_of(enricher, at=RECEIVED)


def test_cookieless_hash_same_on_every_replica_and_keyed_by_secret(enricher: Enricher) -> None:
    replica = Enricher(SECRET)
    assert hash_of(replica, at=RECEIVED) == hash_of(enricher, at=RECEIVED)
    other = Enricher("another-secret-0123456789")
    assert hash_of(other, at=RECEIVED) != hash_of(enricher, at=RECEIVED)


def test_cookieless_hash_separates_fields(enricher: Enricher) -> None:
    # site "a" + ip "b.c" must not collide with site "a.b" + ip "c"
    assert enricher.cookieless_visitor("a", "b.c", "", 0) != enricher.cookieless_visitor(
        "a.b", "c", "", 0
    )


@pytest.mark.parametrize("secret", ["", "short", b"0123456789abcde"])
def test_secret_too_short(secret: str | bytes) -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Enricher(secret)


# --- no raw IP ------------------------------------------------------------------------------


@pytest.mark.parametrize("site", [SHOP, COOKIELESS], ids=["cookie", "cookieless"])
@pytest.mark.parametrize("ip", [IP, IPV6, "10.1.2.3"])
def test_raw_ip_never_in_output(enricher: Enricher, site: SiteConfig, ip: str) -> None:
    envelope, cookie = enricher.enrich(wire(), ctx(ip=ip), site, 1)
    published = orjson.dumps(envelope).decode()
    assert ip not in published
    assert cookie is None or ip not in cookie
    assert "ip" not in envelope


# --- country ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("8.8.8.8", "US"),
        ("49.36.0.1", "IN"),
        (IP, "GB"),
        (IPV6, "IN"),
        ("10.0.0.1", ""),
        ("192.168.1.1", ""),
        ("127.0.0.1", ""),
        ("::1", ""),
        ("fe80::1", ""),
        ("not-an-ip", ""),
        ("", ""),
    ],
)
def test_country(enricher: Enricher, ip: str, country: str) -> None:
    assert enricher.country(ip) == country
    assert enricher.enrich(wire(), ctx(ip=ip), SHOP, 1)[0]["country"] == country


# --- user agent ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ua", "device", "browser", "os", "bot"),
    [
        pytest.param(CHROME_WIN, "desktop", "Chrome", "Windows", False, id="chrome-windows"),
        pytest.param(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.4 Safari/605.1.15",
            "desktop",
            "Safari",
            "Mac OS X",
            False,
            id="safari-mac",
        ),
        pytest.param(
            "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
            "desktop",
            "Firefox",
            "Linux",
            False,
            id="firefox-linux",
        ),
        pytest.param(
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36",
            "desktop",
            "Chrome",
            "Chrome OS",
            False,
            id="chromebook",
        ),
        pytest.param(IPHONE, "mobile", "Mobile Safari", "iOS", False, id="iphone"),
        pytest.param(
            "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Mobile Safari/537.36",
            "mobile",
            "Chrome Mobile",
            "Android",
            False,
            id="android-phone",
        ),
        pytest.param(
            "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
            "mobile",
            "Firefox Mobile",
            "Android",
            False,
            id="firefox-android-phone",
        ),
        pytest.param(
            "Dalvik/2.1.0 (Linux; U; Android 12; SM-A525F Build/SP1A.210812.016)",
            "mobile",
            "Android",
            "Android",
            False,
            id="android-app",
        ),
        pytest.param(
            "MyApp/1.0 CFNetwork/1408.0.4 Darwin/22.5.0",
            "mobile",
            "MyApp",
            "iOS",
            False,
            id="ios-app",
        ),
        pytest.param(
            "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
            "tablet",
            "Mobile Safari",
            "iOS",
            False,
            id="ipad",
        ),
        pytest.param(
            "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36",
            "tablet",
            "Chrome",
            "Android",
            False,
            id="android-tablet",
        ),
        pytest.param(
            "Mozilla/5.0 (Android 14; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0",
            "tablet",
            "Firefox Mobile",
            "Android",
            False,
            id="firefox-android-tablet",
        ),
        pytest.param(
            "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/538.1 (KHTML, like Gecko) "
            "Version/6.0 TV Safari/538.1",
            "other",
            "Safari",
            "Tizen",
            False,
            id="smart-tv",
        ),
        pytest.param(
            "Mozilla/5.0 (Linux; Android 9; AFTMM) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/96 Safari/537.36",
            "other",
            "Android",
            "Android",
            False,
            id="fire-tv",
        ),
        pytest.param("SomethingUnknown", "other", "Other", "Other", False, id="unknown"),
        pytest.param(
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "bot",
            "Googlebot",
            "Other",
            True,
            id="googlebot",
        ),
        pytest.param(
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
            "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
            "bot",
            "bingbot",
            "Other",
            True,
            id="bingbot",
        ),
        pytest.param(
            "Mozilla/5.0 (compatible; SomeNewThing/1.0; spider)",
            "bot",
            "spider",
            "Other",
            True,
            id="ua-parser-spider",
        ),
        pytest.param(
            "Mozilla/5.0 (Linux; Android 11; Pixel 5) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/124.0 Mobile Safari/537.36",
            "bot",
            "HeadlessChrome",
            "Android",
            True,
            id="headless-chrome",
        ),
        pytest.param("curl/8.4.0", "bot", "curl", "Other", True, id="curl"),
        pytest.param(
            "python-requests/2.31.0", "bot", "Python Requests", "Other", True, id="python-requests"
        ),
        pytest.param("", "bot", "Other", "Other", True, id="no-user-agent"),
        pytest.param("   ", "bot", "Other", "Other", True, id="blank-user-agent"),
    ],
)
def test_user_agent(
    enricher: Enricher, ua: str, device: str, browser: str, os: str, bot: bool
) -> None:
    envelope, _ = enricher.enrich(wire(), ctx(user_agent=ua), SHOP, 1)
    got = tuple(envelope[k] for k in ("device", "browser", "os", "bot"))
    assert got == (device, browser, os, bot)


def test_huge_user_agent_is_parsed_by_its_head(enricher: Enricher) -> None:
    info = enricher.user_agent_info(CHROME_WIN + " x" * 4000)
    assert (info.device, info.browser, info.bot) == ("desktop", "Chrome", False)


# --- source, path and utm ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "referrer", "source"),
    [
        pytest.param("https://shop.in/", None, "direct", id="no-referrer"),
        pytest.param("https://shop.in/", "", "direct", id="empty-referrer"),
        pytest.param(
            "https://shop.in/", "https://www.google.co.in/search?q=x", "google.co.in", id="google"
        ),
        pytest.param(
            "https://shop.in/", "https://news.ycombinator.com/item?id=1", "ycombinator.com", id="hn"
        ),
        pytest.param("https://shop.in/", "https://l.facebook.com/l.php", "facebook.com", id="fb"),
        pytest.param("https://shop.in/", "HTTPS://WWW.GOOGLE.COM/", "google.com", id="upper-case"),
        pytest.param("https://shop.in/", "https://t.co/abc", "t.co", id="short-domain"),
        pytest.param("https://shop.in/", "http://localhost:3000/", "localhost", id="localhost"),
        pytest.param(
            "https://shop.in/",
            "android-app://com.google.android.gm/",
            "com.google.android.gm",
            id="android-app",
        ),
        pytest.param("https://shop.in/", "not a url", "direct", id="not-a-url"),
        pytest.param("https://shop.in/", "https://[::1/", "direct", id="malformed-url"),
        pytest.param("https://shop.in/a", "https://shop.in/b", "direct", id="same-host"),
        pytest.param("https://shop.in/a", "https://www.shop.in/b", "direct", id="www-of-host"),
        pytest.param("https://www.shop.in/a", "https://shop.in/b", "direct", id="host-of-www"),
        pytest.param("https://shop.in/", "https://blog.shop.in/", "direct", id="subdomain-of-host"),
        pytest.param(
            "https://other.example/", "https://pay-shop.com/ok", "direct", id="site-domain"
        ),
        pytest.param(
            "https://other.example/",
            "https://checkout.pay-shop.com/ok",
            "direct",
            id="subdomain-of-site-domain",
        ),
        pytest.param("https://shop.in/", "https://notshop.in/", "notshop.in", id="lookalike"),
        pytest.param(
            "https://shop.in/", "https://shop.in.evil.com/", "evil.com", id="host-as-subdomain"
        ),
        pytest.param(
            "https://shop.in/?utm_source=newsletter",
            "https://www.google.com/",
            "newsletter",
            id="utm-over-external-referrer",
        ),
        pytest.param(
            "https://shop.in/?utm_source=newsletter",
            "https://shop.in/cart",
            "newsletter",
            id="utm-over-internal-referrer",
        ),
        pytest.param("https://shop.in/?utm_source=Ads", None, "Ads", id="utm-without-referrer"),
        pytest.param(
            "https://shop.in/?utm_source=&x=1",
            "https://bing.com/",
            "bing.com",
            id="empty-utm-ignored",
        ),
        pytest.param(
            "https://shop.in/?utm_source=a&utm_source=b", None, "a", id="first-utm-source"
        ),
        pytest.param("https://shop.in/#utm_source=x", None, "direct", id="utm-in-fragment-ignored"),
    ],
)
def test_source(enricher: Enricher, url: str, referrer: str | None, source: str) -> None:
    envelope, _ = enricher.enrich(wire(url=url, referrer=referrer), ctx(), SHOP, 1)
    assert envelope["source"] == source


def test_source_of_custom_event_without_url(enricher: Enricher) -> None:
    event = wire(name="app_open", url=None, referrer="https://www.google.com/")
    assert enricher.enrich(event, ctx(), SHOP, 1)[0]["source"] == "google.com"
    internal = wire(name="app_open", url=None, referrer="https://shop.in/")
    assert enricher.enrich(internal, ctx(), SHOP, 1)[0]["source"] == "direct"


@pytest.mark.parametrize(
    ("url", "path", "utm"),
    [
        pytest.param("https://shop.in", "/", (None, None, None), id="no-path"),
        pytest.param("https://shop.in/a/b/?x=1#f", "/a/b/", (None, None, None), id="query-dropped"),
        pytest.param(
            "https://shop.in/p?utm_source=fb&utm_medium=cpc&utm_campaign=sale%2024",
            "/p",
            ("fb", "cpc", "sale 24"),
            id="all-utm",
        ),
        pytest.param(
            "https://shop.in/p?utm_campaign=+x+", "/p", (None, None, "x"), id="campaign-only"
        ),
        pytest.param("https://shop.in/%7Euser", "/%7Euser", (None, None, None), id="kept-encoded"),
    ],
)
def test_path_and_utm(
    enricher: Enricher, url: str, path: str, utm: tuple[str | None, str | None, str | None]
) -> None:
    envelope, _ = enricher.enrich(wire(url=url), ctx(), SHOP, 1)
    got = (envelope["utm_source"], envelope["utm_medium"], envelope["utm_campaign"])
    assert (envelope["path"], got) == (path, utm)


# --- lang ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_lang", "accept_language", "lang"),
    [
        pytest.param("de-de", "en-IN,en;q=0.9", "de-DE", id="event-lang-wins"),
        pytest.param(None, "en-in,en;q=0.9", "en-IN", id="from-accept-language"),
        pytest.param(None, "fr-CH ; q=1, fr;q=0.9", "fr-CH", id="first-with-params"),
        pytest.param(None, "*", None, id="wildcard"),
        pytest.param(None, "", None, id="empty-header"),
        pytest.param(None, None, None, id="no-header"),
        pytest.param(None, "en_US", None, id="malformed-header"),
    ],
)
def test_lang(
    enricher: Enricher, event_lang: str | None, accept_language: str | None, lang: str | None
) -> None:
    request = ctx(accept_language=accept_language)
    assert enricher.enrich(wire(lang=event_lang), request, SHOP, 1)[0]["lang"] == lang


# --- per request work ----------------------------------------------------------------------


def test_request_facts_follow_the_request(enricher: Enricher) -> None:
    india = ctx(ip="49.36.0.1", user_agent=IPHONE)
    us = ctx(ip="8.8.8.8", user_agent=CHROME_WIN)
    keys = ("country", "device")
    assert [enricher.enrich(wire(), india, SHOP, 1)[0][k] for k in keys] == ["IN", "mobile"]
    assert [enricher.enrich(wire(), us, SHOP, 1)[0][k] for k in keys] == ["US", "desktop"]
    assert [enricher.enrich(wire(), india, SHOP, 1)[0][k] for k in keys] == ["IN", "mobile"]


def test_internal_domains_follow_the_site(enricher: Enricher) -> None:
    event = wire(url="https://other.example/", referrer="https://pay-shop.com/")
    plain = SiteConfig("shop.in", "UTC", (), False)
    assert enricher.enrich(event, ctx(), SHOP, 1)[0]["source"] == "direct"
    assert enricher.enrich(event, ctx(), plain, 1)[0]["source"] == "pay-shop.com"
