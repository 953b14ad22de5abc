"""Exchange adapters: ccxt in, frames of docs/data.md out. Errors are translated here only.

A venue is one module that registers its ``VenueSpec`` (riskd/sources/registry.py); the imports below
are the registration lines, and their order is the order of ``VENUES`` everywhere.
"""

from __future__ import annotations

from riskd.sources import binance, bybit, hyperliquid, okx  # noqa: F401  (registration, in this order)
from riskd.sources.base import Clock, Market, VenueSource, utc_now
from riskd.sources.registry import VENUES, VenueSpec, venue
from riskd.sources.retry import RequestHook

__all__ = ["VENUES", "Clock", "Market", "RequestHook", "VenueSource", "VenueSpec", "utc_now", "venue"]
