"""How far the local clock is from the venues' (issue 19, item 4), and the wait that makes it harmless.

A candle closes on the venue's clock, not ours. A leader whose clock ran 90 s fast cycled before the
venue's hour close, rightly dropped the still-open candle, and so published every hour ``stale`` and
restated it an hour later: its CRITICAL alerts came an hour late, and nothing said why.

Each cycle asks one venue for its server time (ccxt ``fetch_time``: Binance ``/fapi/v1/time``; the
primary venue first, then the others) and takes the round trip's midpoint on the local clock::

    skew = (t_before + t_after) / 2 - server_time        (positive: our clock is ahead)

The cycle then runs on the venue's time (:meth:`ClockSkew.venue_now`) and, with a fast clock, first
waits for the venue's own hour close plus grace (:meth:`ClockSkew.wait_for_venue`). A skew beyond
``daemon.max_clock_skew_s`` is logged once when it begins and once when it ends, exported as
``riskd_clock_skew_seconds{venue}``, and shown by /healthz as degraded (the ``clock`` service is down).

What is not trusted: a reading whose round trip took longer than ``max_clock_skew_s`` on the local clock
(it cannot tell such a skew apart; the shared test clock may also jump during it), and a skew beyond
:data:`MAX_CORRECTION` (a venue that far off is more likely stalled than our clock wrong: the next venue is
asked; when all are that far off it is reported, never acted on). No answer keeps the last known skew;
that is logged at debug level, once until a reading comes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from riskd.clock import Clock
from riskd.core.schedule import HOUR, last_closed_hour
from riskd.sinks.metrics import Metrics
from riskd.sources import VenueSource
from riskd.sources.registry import primary_venue

log = logging.getLogger("riskd.daemon")

MAX_CORRECTION = pd.Timedelta(minutes=10)
"""The largest skew the cycle corrects for, and the longest it waits for a venue's hour close."""
ASK_TIMEOUT_S = 3.0
"""One venue's answer must come within this; a slower one would say little about the skew anyway."""
SERVICE = "clock"
"""The service name /healthz lists while the skew is beyond the setting (``Metrics.service_down``)."""


@dataclass(frozen=True)
class Reading:
    """One measurement: the local clock minus the venue's, and the round trip it was taken over."""

    venue: str
    skew: pd.Timedelta
    round_trip: pd.Timedelta


def venue_order(sources: Mapping[str, VenueSource]) -> list[str]:
    """Venues whose ccxt client can read the server time: the primary venue first (its candles decide
    whether an hour is stale), then the others in registry order."""
    able = [v for v, s in sources.items() if s.exchange.has.get("fetchTime")]
    primary = primary_venue()
    return sorted(able, key=lambda v: v != primary)


async def read_skew(source: VenueSource, clock: Clock) -> Reading:
    """Ask one venue for its time and compare it with the round trip's midpoint on ``clock``.

    Asked through the venue's guard (:meth:`VenueSource.server_time`), so never into a ban; bounded by
    :data:`ASK_TIMEOUT_S`. Raises whatever the source or the timeout raise."""
    before = clock.now()
    server = await asyncio.wait_for(source.server_time(), ASK_TIMEOUT_S)
    after = clock.now()
    midpoint = before + (after - before) / 2
    return Reading(source.venue, midpoint - server, after - before)


class ClockSkew:
    """The last known skew of the local clock against the venues, and what it means for the cycle."""

    def __init__(
        self, sources: Mapping[str, VenueSource], clock: Clock, metrics: Metrics, max_s: float
    ) -> None:
        self.sources = sources
        self.clock = clock
        self.metrics = metrics
        self.max = pd.Timedelta(seconds=max_s)
        self.last: Reading | None = None
        self._failing = False  # the last attempt got no reading (logged once until one comes)

    @property
    def skew(self) -> pd.Timedelta:
        """The skew the cycle corrects for: the last reading's, zero when none or when unbelievable."""
        if self.last is None or abs(self.last.skew) > MAX_CORRECTION:
            return pd.Timedelta(0)
        return self.last.skew

    async def measure(self) -> Reading | None:
        """Read the skew from the first venue that answers (primary first) and report it. A venue whose
        circuit is open or that banned us is not asked; no answer keeps the last known skew."""
        errors: list[str] = []
        far: Reading | None = None  # a venue this far off is more likely stalled: ask the next one
        for venue in self._askable(venue_order(self.sources)):
            try:
                reading = await read_skew(self.sources[venue], self.clock)
            except Exception as err:  # any failure only means "not measured": never fatal to the cycle
                errors.append(f"{venue}: {type(err).__name__} {err}"[:200])
                continue
            if reading.round_trip > self.max:
                errors.append(f"{venue}: round trip {reading.round_trip.total_seconds():.1f}s, too long")
            elif abs(reading.skew) > MAX_CORRECTION:
                far = far or reading
            else:
                return self._keep(reading)
        if far is not None:  # every venue that answered is that far off: then it is probably us
            return self._keep(far)
        if errors and not self._failing:
            log.debug("clock skew not measured (keeping the last known): %s", "; ".join(errors))
        self._failing = bool(errors)
        return None

    def _keep(self, reading: Reading) -> Reading:
        self._failing = False
        self.last = reading
        self.report(reading)
        return reading

    def _askable(self, venues: Sequence[str]) -> list[str]:
        """Venues that may be asked now: not banned, circuit closed (the time is not worth its probe)."""
        return [
            v
            for v in venues
            if not self.sources[v].guard.is_open and self.sources[v].guard.health() != "down"
        ]

    def report(self, reading: Reading) -> None:
        """Export the reading; log and flag on /healthz when it crosses ``max_clock_skew_s`` either way."""
        seconds = reading.skew.total_seconds()
        self.metrics.observe_clock_skew(reading.venue, seconds)
        limit = self.max.total_seconds()
        if abs(reading.skew) > self.max:
            acted = abs(reading.skew) <= MAX_CORRECTION
            why = f"local clock {seconds:+.1f}s off {reading.venue}'s (daemon.max_clock_skew_s {limit:g})"
            if self.metrics.service_down(SERVICE, f"clock skew: {why}"):
                log.warning(
                    "clock skew: %s; %s (logged once until it is back within)",
                    why,
                    "cycles wait for the venue's hour close"
                    if acted
                    else f"beyond {MAX_CORRECTION.total_seconds():.0f}s: not corrected, check the host's clock and the venue",
                )
        elif self.metrics.service_up(SERVICE):
            log.warning(
                "clock skew over: local clock %+.1fs off %s's, within %gs", seconds, reading.venue, limit
            )

    async def cycle_time(self, grace: pd.Timedelta) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The cycle's ``now`` on the venue's clock, and its newest closed hour (open time).

        Measured first. When the local clock says the last hour is due (its close plus ``grace``) and the
        venue's does not yet (our clock is fast), wait for the venue's: its candle is still open until
        then, and fetching it now would publish the hour stale. The newest hour is the one closed on both
        clocks, so with a slow clock the hour waits for ours (the sources judge closed candles by it)."""
        await self.measure()
        local = self.clock.now()
        due = last_closed_hour(local) + HOUR + grace
        if local >= due:
            await self.wait_for_venue(due)
            local = self.clock.now()
        now = self.venue_now(local)
        return now, last_closed_hour(min(local, now))

    def venue_now(self, local: pd.Timestamp) -> pd.Timestamp:
        """The venue's time when the local clock reads ``local``."""
        return local - self.skew

    async def wait_for_venue(self, due: pd.Timestamp) -> None:
        """Sleep on the local clock until the venue's clock reaches ``due`` (at most :data:`MAX_CORRECTION`).

        The cycle is inside :func:`riskd.daemon.loop.cycle_until`, which cancels it on a stop request, so
        the sleep needs no stop event of its own."""
        local = self.clock.now()
        wait = min(due - self.venue_now(local), MAX_CORRECTION)
        if wait <= pd.Timedelta(0):
            return
        log.info(
            "waiting %.1fs for %s's hour close (local clock %+.1fs ahead)",
            wait.total_seconds(),
            self.last.venue if self.last else "the venue",
            self.skew.total_seconds(),
        )
        await self.clock.sleep_until(local + wait, asyncio.Event())


__all__ = ["MAX_CORRECTION", "ClockSkew", "Reading", "read_skew", "venue_order"]
