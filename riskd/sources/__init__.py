"""Exchange adapters: ccxt in, frames of docs/data.md out. Errors are translated here only.

A venue is one module that registers its ``VenueSpec`` (riskd/sources/registry.py); the imports below
are the registration lines, and their order is the order of ``VENUES`` everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from riskd.sources import binance, bybit, hyperliquid, okx  # noqa: F401  (registration, in this order)
from riskd.sources.base import Clock, Market, VenueSource, utc_now
from riskd.sources.registry import VENUES, VenueSpec, venue
from riskd.sources.retry import RequestHook

if TYPE_CHECKING:  # settings import the registry (and so this package): types only here
    from riskd.settings import Settings

__all__ = ["VENUES", "Clock", "Market", "VenueSource", "VenueSpec", "make_source", "utc_now"]


def make_source(
    name: str, settings: Settings, *, clock: Clock = utc_now, hook: RequestHook | None = None
) -> VenueSource:
    """The adapter of one venue, configured from Settings."""
    return venue(name).source(
        settings.venues.get(name),
        settings.retry,
        renames=settings.universe.renames,
        clock=clock,
        hook=hook,
        fetch_deadline_s=settings.daemon.fetch_deadline_s,
    )
