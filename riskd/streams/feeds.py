"""One websocket subscription kept alive through ccxt.pro, with its silences recorded as gaps.

A :class:`Feed` awaits one ccxt ``watch*`` call in a loop. An error (the server closed, the network
broke) marks the feed down and it reconnects after an exponential back-off with jitter; a feed that
has received nothing for its stall timeout is marked down too and its connection closed, which makes
the pending watch fail and the loop reconnect. Every down period is a gap ``[last message, first
message after]`` in the clock's time: the recorder turns it into minute coverage, so a silence is
never read as "nothing happened".

ccxt is tapped at two points on the instance, so nothing is lost between two awaits of a watch:
``handle_message`` (every inbound frame marks the feed alive) and ``parse_ws_liquidation`` (every
liquidation reaches the recorder as it is parsed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import ccxt.pro as ccxt_pro
import pandas as pd

from riskd.config import Settings
from riskd.errors import ConfigError
from riskd.sources.endpoints import CCXT_CLASSES, api_urls
from riskd.sources.registry import venue as venue_spec
from riskd.sources.spec import StreamSpec

log = logging.getLogger("riskd.streams")

GapSink = Callable[[str, pd.Timestamp, pd.Timestamp], None]
"""(feed name, first missing instant, end) of a closed gap."""


def stream_spec(venue: str) -> StreamSpec:
    """The venue's stream facts from the registry; ConfigError when it streams nothing to riskd."""
    spec = venue_spec(venue).stream
    if spec is None:
        raise ConfigError(f"invalid setting streams.venues: {venue} has no stream riskd records")
    return spec


def ws_base(venue: str, settings: Settings) -> str | None:
    """The websocket base URL of ``venue``: the setting, else derived from an overridden REST URL (the
    fake exchange serves both on one port, at the path the registry names), else None (ccxt's own)."""
    if venue in settings.streams.ws_urls:
        return settings.streams.ws_urls[venue]
    rest = settings.venues.get(venue).api_url
    if not rest:
        return None
    base = rest.rstrip("/").replace("http://", "ws://").replace("https://", "wss://")
    return f"{base}{stream_spec(venue).fake_ws_path}"


def make_client(venue: str, settings: Settings) -> Any:
    """A ccxt.pro client for ``venue`` (REST for its markets, websocket for the streams), configured from
    the venue's registry entry; the ccxt methods riskd taps are checked to exist."""
    spec, vs = stream_spec(venue), settings.venues.get(venue)
    exchange = getattr(ccxt_pro, CCXT_CLASSES[venue])(
        {"enableRateLimit": True, "timeout": int(vs.timeout_s * 1000)}
    )
    for key, value in spec.ccxt_options:
        exchange.options[key] = value
    if vs.api_url:
        exchange.urls["api"] = api_urls(venue, vs.api_url)
    ws = ws_base(venue, settings)
    if ws:
        shaped: Any = ws
        for key in reversed(spec.ws_shape):
            shaped = {key: shaped}
        exchange.urls["api"]["ws"] = shaped
    check_taps(exchange)
    return exchange


TAPPED = ("handle_message", "handle_ohlcv", "parse_ws_liquidation")
"""The ccxt.pro methods riskd wraps (every frame, every candle frame, every parsed liquidation)."""


def check_taps(exchange: Any) -> None:
    """Fail loudly, naming the ccxt version, when a ccxt release renamed a method riskd wraps: a silent
    miss would leave feeds "up" with no liquidations and no candle closes."""
    missing = [name for name in TAPPED if not callable(getattr(exchange, name, None))]
    if missing:
        raise ConfigError(
            f"ccxt {getattr(ccxt_pro, '__version__', '?')} {exchange.id}: no {', '.join(missing)}; "
            "riskd's minute streams need them (pin the ccxt version riskd was tested with)"
        )


class Feed:
    """One subscription: watch in a loop, reconnect with back-off and jitter, detect stalls."""

    def __init__(
        self,
        name: str,
        exchange: Any,
        watch: Callable[[], Awaitable[Any]],
        *,
        clock: Callable[[], pd.Timestamp],
        on_gap: GapSink,
        stall_timeout_s: float,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.exchange = exchange
        self._watch = watch
        self._clock = clock
        self._on_gap = on_gap
        self.stall_timeout_s = stall_timeout_s
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._monotonic = monotonic
        self._rng = rng or random.Random()
        self.gap_open: pd.Timestamp | None = clock()  # nothing recorded before the first message
        self.last_message_mono = monotonic()
        self.last_message_at: pd.Timestamp | None = None
        self.reconnects = 0
        self.stalls = 0
        self.errors = 0
        self.messages = 0
        self._current: asyncio.Future[Any] | None = None
        self._stalled = False
        tap_messages(exchange, self.touch)

    @property
    def up(self) -> bool:
        """Receiving: no gap open."""
        return self.gap_open is None

    def touch(self) -> None:
        """A frame arrived: the feed is alive; a gap open until now closes."""
        self.messages += 1
        self.last_message_mono = self._monotonic()
        now = self._clock()
        self.last_message_at = now
        if self.gap_open is not None:
            start, self.gap_open = self.gap_open, None
            self._on_gap(self.name, start, now)

    def down(self, reason: str, since: pd.Timestamp | None = None) -> None:
        """Open a gap (once) from ``since`` (default now)."""
        if self.gap_open is None:
            self.gap_open = since or self._clock()
            log.warning("stream %s down (%s); gap from %s", self.name, reason, self.gap_open.isoformat())

    def check_stall(self) -> bool:
        """Down and reconnecting when silent for ``stall_timeout_s``; True when this call found a stall."""
        silent = self._monotonic() - self.last_message_mono
        if self.gap_open is not None or silent < self.stall_timeout_s:
            return False
        self.stalls += 1
        self.down(f"stalled: silent {silent:.1f}s", since=self.last_message_at)
        self.last_message_mono = self._monotonic()  # one stall per timeout while reconnecting
        if self._current is not None and not self._current.done():
            self._stalled = True
            self._current.cancel()  # the loop closes the connection and reconnects
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the subscription until ``stop``."""
        failures = 0
        while not stop.is_set():
            self._current = asyncio.ensure_future(self._watch())
            try:
                await self._current
                failures = 0
            except asyncio.CancelledError:
                if not self._stalled:
                    raise
                self._stalled = False
                with contextlib.suppress(Exception):  # drop the silent socket, however it fails to close
                    await self.exchange.close()
                failures += 1
                await _wait(stop, self.backoff_s(failures))
                self.reconnects += 1
            except Exception as err:  # any failure of the watch is a gap and a reconnect, never the end
                self.errors += 1
                self.down(f"{type(err).__name__}: {str(err)[:160]}", since=self.last_message_at)
                failures += 1
                await _wait(stop, self.backoff_s(failures))
                self.reconnects += 1

    def backoff_s(self, failures: int) -> float:
        """Delay before reconnect attempt ``failures``: exponential, capped, with equal jitter."""
        first, cap = self._backoff
        delay = min(cap, first * 2 ** max(0, failures - 1))
        return delay / 2 + self._rng.random() * delay / 2


def tap_messages(exchange: Any, on_frame: Callable[[], None]) -> None:
    """Call ``on_frame`` for every frame ccxt hands to ``exchange.handle_message``."""
    original = exchange.handle_message

    def handle_message(client: Any, message: Any) -> Any:
        on_frame()
        return original(client, message)

    exchange.handle_message = handle_message


def tap_liquidations(exchange: Any, on_liquidation: Callable[[dict[str, Any]], None]) -> None:
    """Call ``on_liquidation`` with every liquidation ccxt parses from the stream (none lost)."""
    original = exchange.parse_ws_liquidation

    def parse_ws_liquidation(liquidation: Any, market: Any = None) -> Any:
        parsed = original(liquidation, market)
        on_liquidation(parsed)
        return parsed

    exchange.parse_ws_liquidation = parse_ws_liquidation


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
