"""Point a ccxt client at another REST base URL (the loopback fake exchange, a proxy, a mirror).

ccxt keeps one URL per API family in ``exchange.urls['api']`` (Binance alone has twenty-odd:
fapiPublic, fapiData, sapi, public …). Overriding only the ones riskd uses would let any other
call leak to the internet, so every key of the class's own table is rebased, keeping each URL's
path: ``https://fapi.binance.com/fapi/v1`` becomes ``<base_url>/fapi/v1``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import ccxt.async_support as ccxt_async

from riskd.sources.registry import VENUES

# riskd venue -> the ccxt class that trades its perpetuals (from the venue registry).
CCXT_CLASSES: Mapping[str, str] = {name: spec.ccxt_class for name, spec in VENUES.items()}


def api_urls(venue: str, base_url: str) -> dict[str, Any]:
    """The ``urls['api']`` table that makes ``venue``'s ccxt client talk only to ``base_url``."""
    if venue not in CCXT_CLASSES:
        raise ValueError(f"unknown venue {venue!r}; expected one of {', '.join(CCXT_CLASSES)}")
    base = base_url.rstrip("/")
    if not urlsplit(base).scheme or not urlsplit(base).netloc:
        raise ValueError(f"base_url must be an absolute URL like http://127.0.0.1:8900, got {base_url!r}")
    return _rebase(_default_api_urls(venue), base)


@functools.cache
def _default_api_urls(venue: str) -> dict[str, Any]:
    """The class's own table (instantiating is the only way ccxt exposes it; cached per venue)."""
    exchange = getattr(ccxt_async, CCXT_CLASSES[venue])()
    return dict(exchange.urls["api"])


def _rebase(table: Mapping[str, Any], base: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, url in table.items():
        if isinstance(url, Mapping):
            out[key] = _rebase(url, base)
        elif isinstance(url, str):
            out[key] = base + urlsplit(url.replace("{hostname}", "host")).path.rstrip("/")
        else:
            out[key] = url
    return out
