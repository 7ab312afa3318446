"""The typed keys under which the gateway app holds its parts."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from footfall.settings import Settings
from footfall.sites.registry import SiteRegistry
from web.enrich import Enricher
from web.gateway.limits import Sampler, SiteRateLimiter
from web.gateway.metrics import GatewayMetrics
from web.gateway.producer import Publisher

SETTINGS: Final = web.AppKey("settings", Settings)
REGISTRY: Final = web.AppKey("registry", SiteRegistry)
PUBLISHER: Final = web.AppKey("publisher", Publisher)
ENRICHER: Final = web.AppKey("enricher", Enricher)
LIMITER: Final = web.AppKey("limiter", SiteRateLimiter)
SAMPLER: Final = web.AppKey("sampler", Sampler)
METRICS: Final = web.AppKey("metrics", GatewayMetrics)
