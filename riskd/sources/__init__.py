"""Exchange adapters: ccxt in, frames of docs/data.md out. Errors are translated here only."""

from __future__ import annotations

from collections.abc import Mapping

from riskd.settings import Settings
from riskd.sources.base import Clock, Market, VenueSource, utc_now
from riskd.sources.binance import BinanceSource
from riskd.sources.bybit import BybitSource
from riskd.sources.hyperliquid import HyperliquidSource
from riskd.sources.retry import RequestHook

SOURCES: Mapping[str, type[VenueSource]] = {
    "binance": BinanceSource,
    "bybit": BybitSource,
    "hyperliquid": HyperliquidSource,
}

__all__ = ["SOURCES", "Clock", "Market", "VenueSource", "make_source", "utc_now"]


def make_source(
    venue: str, settings: Settings, *, clock: Clock = utc_now, hook: RequestHook | None = None
) -> VenueSource:
    """The adapter of one venue, configured from Settings."""
    return SOURCES[venue](
        settings.venues.get(venue),
        settings.retry,
        renames=settings.universe.renames,
        clock=clock,
        hook=hook,
    )
