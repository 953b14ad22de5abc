"""The minute side's task: feeds in, closed minutes through the detector, the live state and alerts out.

Minute ``m`` closes when BTC's closed candle for ``m`` arrives, or at the latest ``close_grace_s``
after its end by the clock. Each close: the recorder freezes the minute's liquidations with the feeds'
coverage, the detector reads the last ``history_minutes`` closed minutes, ``<prefix>:regime:live`` is
rewritten, and the first minute of an hour whose level reaches ``alert_level`` opens the hour's
provisional episode and raises its alert (:mod:`riskd.streams.episodes`, which also settles it at the hour
close). What a venue's streams are — its websocket, how it subscribes to liquidations, how a candle frame
says "closed" — comes from the venue registry (``VenueSpec.stream``). One clock: the injected one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pandas as pd

from riskd.clock import Clock
from riskd.config import Settings
from riskd.contract.keys import Keys
from riskd.contract.live import LiveRegime, StreamStatus
from riskd.core.intrahour import PROVISIONAL_CODES, fires, minute_features, provisional_levels
from riskd.sources.symbols import base_of, unified_symbol
from riskd.store import HistoryStore
from riskd.streams.episodes import Episode, Episodes, developing_alert, figures, settlement
from riskd.streams.feeds import Feed, make_client, stream_spec, tap_liquidations
from riskd.streams.live import LivePublisher
from riskd.streams.recorder import HOUR_MS, MINUTE_MS, LiquidationRecorder

log = logging.getLogger("riskd.streams")


class MinuteStreams:
    """The websocket feeds, the recorder, the detector and the live publisher (module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: Any,
        pipeline: Any,
        clock: Clock,
        store: HistoryStore | None = None,
        metrics: Any | None = None,
        make_exchange: Callable[[str, Settings], Any] = make_client,
    ) -> None:
        self.settings = settings
        self.s = settings.streams
        self.p = settings.streams.detector
        self.clock = clock
        self.pipeline = pipeline
        self.client = client
        self.prefix = settings.redis.key_prefix
        self.publisher = LivePublisher(client, self.prefix, ttl_s=max(300.0, 5 * self.s.tick_s))
        self._history_key = Keys(self.prefix).history
        self.symbols = [s.upper() for s in (self.s.candle_symbols or settings.universe.symbols)]
        self.recorder = LiquidationRecorder(
            self.s.venues,
            settings.universe.symbols,
            store,
            settings.data_dir / "state" / "liquidations.jsonl",
        )
        self._make_exchange = make_exchange
        self.feeds: dict[str, Feed] = {}
        self.exchanges: list[Any] = []
        self._candles: Any = None
        self._bars: deque[tuple[int, dict[str, tuple[float, float]]]] = deque(maxlen=self.s.history_minutes)
        self._liq: deque[float] = deque(maxlen=self.s.history_minutes)
        self.next_minute: int | None = None
        self.episodes = Episodes(client, self.publisher.episodes_key, Keys(self.prefix).history)
        self.last_outcome: dict[str, Any] | None = None
        self.last_doc: LiveRegime | None = None
        self.publish_latency_s: deque[float] = deque(maxlen=10_000)
        self._closed_event = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._metrics = _StreamMetrics(metrics.registry) if metrics is not None else None

    # ---- lifecycle -------------------------------------------------------------------------------
    async def start(self, stop: asyncio.Event) -> None:
        """Recover the journal and the open episodes, connect the feeds."""
        self.recorder.recover()
        now_ms = _ms(self.clock.now())
        await asyncio.to_thread(self.recorder.write_through, now_ms - now_ms % HOUR_MS)
        await self.episodes.load()
        self.next_minute = now_ms - now_ms % MINUTE_MS
        for venue in self.s.venues:
            await self._add_liquidation_feed(venue, stop)
        await self._add_candle_feed(stop)

    async def _add_liquidation_feed(self, venue: str, stop: asyncio.Event) -> None:
        ex = self._make_exchange(venue, self.settings)
        self.exchanges.append(ex)
        await ex.load_markets()
        tap_liquidations(ex, functools.partial(self._on_liquidation, venue))
        spec = stream_spec(venue)
        if spec.liquidations == "all_market":
            watch: Callable[[], Awaitable[Any]] = lambda: ex.watch_liquidations_for_symbols([])  # noqa: E731  (a thunk the feed re-awaits)
        else:
            markets = [
                m for b in self.settings.universe.symbols if (m := unified_symbol(b, venue)) in ex.markets
            ]
            url = await ex.get_url_by_market_type(markets[0], False, "watchLiquidations", {})
            hashes = [f"liquidations::{m}" for m in markets]
            topics = [spec.liquidation_topic.format(id=ex.market(m)["id"]) for m in markets]
            watch = lambda: ex.watch_topics(url, hashes, topics, {})  # noqa: E731  (a thunk the feed re-awaits)
        self._add_feed(f"{venue}:liquidations", ex, watch, self.s.stall_timeout_s, stop)

    async def _add_candle_feed(self, stop: asyncio.Event) -> None:
        venue = self.s.candle_venue
        ex = self._make_exchange(venue, self.settings)
        self.exchanges.append(ex)
        await ex.load_markets()
        pairs = [[unified_symbol(b, venue), "1m"] for b in self.symbols]
        pairs = [p for p in pairs if p[0] in ex.markets]
        self._candles = ex
        _tap_candle_close(ex, venue, unified_symbol(self.symbols[0], venue), self._on_btc_closed)
        self._add_feed(
            f"{venue}:candles_1m",
            ex,
            lambda: ex.watch_ohlcv_for_symbols(pairs),
            self.s.candle_stall_timeout_s,
            stop,
        )

    def _add_feed(
        self, name: str, ex: Any, watch: Callable[[], Awaitable[Any]], stall_s: float, stop: asyncio.Event
    ) -> None:
        feed = Feed(
            name,
            ex,
            watch,
            clock=self.clock.now,
            on_gap=self._on_gap,
            stall_timeout_s=stall_s,
            backoff_initial_s=self.s.backoff_initial_s,
            backoff_max_s=self.s.backoff_max_s,
        )
        self.feeds[name] = feed
        self._tasks.append(asyncio.create_task(feed.run(stop), name=f"riskd-feed-{name}"))

    async def run(self, stop: asyncio.Event) -> None:
        """The task ``riskd run`` starts: feeds, then a tick per closed candle or ``tick_s``."""
        try:
            await self.start(stop)
            while not stop.is_set():
                try:
                    await self.tick()
                except Exception as err:  # a Redis or store outage must not end the minute side
                    log.warning("streams tick failed: %s: %s", type(err).__name__, err)
                self._closed_event.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed_event.wait(), timeout=self.s.tick_s)
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop the feeds and release the clients."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(BaseException):  # cancelled just above: how each ended is moot
                await t
        self._tasks.clear()
        for ex in self.exchanges:
            with contextlib.suppress(Exception):  # a client already broken still lets the others close
                await ex.close()
        self.exchanges.clear()

    # ---- callbacks -------------------------------------------------------------------------------
    def _on_liquidation(self, venue: str, liq: dict[str, Any]) -> None:
        if self.recorder.add(venue, liq) and self._metrics is not None:
            usd = float(liq["price"]) * float(liq["contracts"]) * float(liq.get("contractSize") or 1.0)
            self._metrics.liq_usd.labels(venue, "long" if liq["side"] == "sell" else "short").inc(usd)

    def _on_gap(self, name: str, start: pd.Timestamp, end: pd.Timestamp) -> None:
        venue, _, kind = name.partition(":")
        if kind == "liquidations":
            self.recorder.gap(venue, start, end)
        log.info("stream %s gap %s → %s recorded", name, start.isoformat(), end.isoformat())

    def _on_btc_closed(self, open_ms: int) -> None:
        self._closed_event.set()
        self._btc_closed = max(getattr(self, "_btc_closed", -1), open_ms)

    # ---- the minute ------------------------------------------------------------------------------
    async def tick(self) -> None:
        """Check stalls, close every due minute, settle hours whose snapshot is in."""
        for feed in self.feeds.values():
            feed.check_stall()
        now = self.clock.now()
        now_ms = _ms(now)
        if self.next_minute is None:
            self.next_minute = now_ms - now_ms % MINUTE_MS
        grace = int(self.s.close_grace_s * 1000)
        btc_closed = getattr(self, "_btc_closed", -1)
        while self.next_minute <= btc_closed or self.next_minute + MINUTE_MS + grace <= now_ms:
            await self._close_minute(self.next_minute)
            self.next_minute += MINUTE_MS
            if self.next_minute % HOUR_MS == 0:
                await asyncio.to_thread(self.recorder.write_through, self.next_minute)
        await self._settle(now)
        self._export_metrics()

    async def _close_minute(self, minute: int) -> None:
        started = time.perf_counter()
        now = self.clock.now()
        coverage: dict[str, float] = {}
        for venue in self.s.venues:
            feed = self.feeds.get(f"{venue}:liquidations")
            coverage[venue] = self.recorder.coverage(venue, minute, feed.gap_open if feed else now, now)
        self.recorder.close_minute(minute, coverage)
        self._bars.append((minute, self._candles_at(minute)))
        self._liq.append(self.recorder.market_total(minute))
        row = self._features()
        level = provisional_levels(row, self.p).iloc[-1] if len(row) else "none"
        hour_end = minute - minute % HOUR_MS + HOUR_MS
        if fires(level, self.p) and hour_end not in self.episodes.open:
            await self._raise(hour_end, minute, level, row.iloc[-1])
        await self._publish(minute, level, row, coverage)
        self.publish_latency_s.append(time.perf_counter() - started)

    def _candles_at(self, minute: int) -> dict[str, tuple[float, float]]:
        out: dict[str, tuple[float, float]] = {}
        caches = getattr(self._candles, "ohlcvs", {}) or {}
        for sym, by_tf in caches.items():
            cache = by_tf.get("1m") if isinstance(by_tf, dict) else None
            if not cache:
                continue
            for candle in reversed(cache):
                if candle[0] == minute:
                    out[base_of(sym)] = (float(candle[4]), float(candle[5]))
                    break
                if candle[0] < minute:
                    break
        return out

    def _features(self) -> pd.DataFrame:
        if not self._bars or self.symbols[0] not in self._bars[-1][1]:
            return pd.DataFrame()
        idx = pd.DatetimeIndex(pd.to_datetime([m for m, _ in self._bars], unit="ms", utc=True), name="ts")
        btc_sym = self.symbols[0]
        get = lambda s, i: np.array([b.get(s, (np.nan, np.nan))[i] for _, b in self._bars])  # noqa: E731  (a one-line local helper reads best as a lambda)
        btc = pd.DataFrame({"close": get(btc_sym, 0), "volume": get(btc_sym, 1)}, index=idx)
        alts = pd.DataFrame({s: get(s, 0) for s in self.symbols[1:]}, index=idx)
        liq = pd.Series(list(self._liq), index=idx)
        feats = minute_features(btc, alts, liq, self.p)
        return feats.tail(1)

    async def _raise(self, hour_end: int, minute: int, level: str, feats: pd.Series) -> None:
        as_of = pd.Timestamp(hour_end, unit="ms", tz="UTC")
        ep = Episode.of(as_of, pd.Timestamp(minute + MINUTE_MS, unit="ms", tz="UTC"), level)
        await self.episodes.add(hour_end, ep)
        outcome = await self.pipeline.submit([developing_alert(ep, feats)])
        log.warning("provisional cascade %s at %s: alert %s", level, ep.fired_at, outcome)

    async def _publish(self, minute: int, level: str, row: pd.DataFrame, coverage: dict[str, float]) -> None:
        close = pd.Timestamp(minute + MINUTE_MS, unit="ms", tz="UTC")
        hour_end = minute - minute % HOUR_MS + HOUR_MS
        ep = self.episodes.open.get(hour_end)
        feats = figures(row.iloc[-1]) if len(row) else {}
        streams = {
            n: StreamStatus(up=f.up, reconnects=f.reconnects, stalls=f.stalls) for n, f in self.feeds.items()
        }
        degraded = not all(f.up for f in self.feeds.values()) or not len(row)
        doc = LiveRegime(
            minute=close.to_pydatetime(),
            minute_ms=minute + MINUTE_MS,
            as_of=pd.Timestamp(hour_end, unit="ms", tz="UTC").to_pydatetime(),
            computed_at=self.clock.now().to_pydatetime(),
            provisional_level=level,
            provisional_level_code=PROVISIONAL_CODES[level],
            firing=fires(level, self.p),
            episode_id=ep.episode_id if ep else None,
            fired_at=pd.Timestamp(ep.fired_at).to_pydatetime() if ep else None,
            features=feats,
            streams=streams,
            data_quality="degraded" if degraded else "ok",
            liquidations=self.recorder.hour_so_far(
                hour_end - HOUR_MS, (minute + MINUTE_MS - hour_end + HOUR_MS) // MINUTE_MS
            ),
            last_outcome=self.last_outcome,
        )
        self.last_doc = doc
        await self.publisher.publish(doc)
        if self._metrics is not None:
            self._metrics.level.set(PROVISIONAL_CODES[level])

    # ---- settling --------------------------------------------------------------------------------
    async def _settle(self, now: pd.Timestamp) -> None:
        """Every open episode whose hour has its snapshot (or waited ``confirm_wait_s``) is settled once."""
        for hour_end in sorted(h for h in self.episodes.open if h <= _ms(now)):
            snap = await self.episodes.snapshot(hour_end)
            if snap is None and _ms(now) < hour_end + self.s.confirm_wait_s * 1000:
                continue
            ep = self.episodes.open[hour_end]
            prev = await self.episodes.snapshot(hour_end - HOUR_MS)
            outcome, reply = settlement(ep, snap, prev, now, self.s.confirm_wait_s)
            self.last_outcome = {"as_of": ep.as_of, "episode_id": ep.episode_id, "outcome": outcome}
            if reply is not None:
                await self.pipeline.submit([reply])
            await self.episodes.close(hour_end)

    def _export_metrics(self) -> None:
        if self._metrics is None:
            return
        for name, feed in self.feeds.items():
            self._metrics.up.labels(name).set(1 if feed.up else 0)
            self._metrics.reconnects.labels(name).set(feed.reconnects)
            self._metrics.stalls.labels(name).set(feed.stalls)


class _StreamMetrics:
    """The minute side's Prometheus series (docs/metrics.md, Streams)."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Gauge

        self.level = Gauge(
            "riskd_provisional_level", "Provisional intra-hour level: 0 none .. 3 severe", registry=registry
        )
        self.up = Gauge(
            "riskd_stream_up", "1 while a websocket feed receives, 0 in a gap", ["stream"], registry=registry
        )
        self.reconnects = Gauge(
            "riskd_stream_reconnects", "Reconnections of a feed since start", ["stream"], registry=registry
        )
        self.stalls = Gauge(
            "riskd_stream_stalls", "Stalls detected on a feed since start", ["stream"], registry=registry
        )
        self.liq_usd = Counter(
            "riskd_liquidations_usd",
            "Liquidation notional recorded (USD)",
            ["venue", "side"],
            registry=registry,
        )


def _tap_candle_close(exchange: Any, venue: str, btc_symbol: str, on_closed: Callable[[int], None]) -> None:
    """Call ``on_closed(open_ms)`` when the venue marks BTC's 1-minute candle closed (how it says so is
    the registry's ``StreamSpec.candle_closed``); ccxt's parsed candle drops that flag."""
    original = exchange.handle_ohlcv
    btc_id = exchange.market(btc_symbol)["id"]
    closed = stream_spec(venue).candle_closed

    def handle_ohlcv(client: Any, message: Any) -> Any:
        out = original(client, message)
        for open_ms in closed(message, btc_id):
            on_closed(open_ms)
        return out

    exchange.handle_ohlcv = handle_ohlcv


def _ms(ts: pd.Timestamp) -> int:
    return int(pd.Timestamp(ts).value // 1_000_000)


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
