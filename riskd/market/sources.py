"""The venue adapters configured from Settings (the adapters take options, never the Settings object)."""

from __future__ import annotations

from riskd.config import Settings
from riskd.sources import Clock, RequestHook, VenueSource, utc_now, venue


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
