"""What every venue adapter shares: the ccxt client, bounded concurrency, retries, pagination.

A venue subclass only says how to ask for one page (``_ohlcv_page`` …) and how big a page may be.
The base class walks a time range in windows small enough that no page can be cut short by the
venue's row limit; a page that comes back full is split and asked again, so a venue that returns
"the last N rows of the window" (Bybit) or "the first N" (Binance) loses nothing either way.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, TypeVar

import pandas as pd

from riskd.errors import SourceError
from riskd.sources.guard import VenueGuard
from riskd.sources.market import (
    FUNDING_CONTEXT,
    Clock,
    Market,
    Page,
    interval_hours,
    ms_ts,
    to_float,
    utc_now,
)
from riskd.sources.normalize import (
    FUNDING_COLUMNS,
    HOUR,
    OHLCV_COLUMNS,
    OI_COLUMNS,
    empty,
    funding_frame,
    ohlcv_frame,
    oi_frame,
    to_ms,
)
from riskd.sources.options import RetryOptions, VenueOptions
from riskd.sources.retry import RequestHook, call_with_retry, capture_retry_after
from riskd.sources.spec import VenueSpec
from riskd.sources.symbols import canonical, listed_name

log = logging.getLogger("riskd.sources")

T = TypeVar("T")


class VenueSource(ABC):
    """An async ccxt client for one venue, returning frames of docs/data.md.

    What the venue *is* (name, ccxt class, quote, rate-limit window, datasets) lives in its registered
    ``VenueSpec``; the class only says how to page through it.
    """

    spec: ClassVar[VenueSpec]  # bound by riskd.sources.registry.register
    ohlcv_window_hours: ClassVar[int] = 0
    funding_window_hours: ClassVar[int]
    oi_window_hours: ClassVar[int] = 0
    history_limit_hours: ClassVar[int | None] = None  # candles a venue keeps at all (Hyperliquid)
    oi_history_limit_hours: ClassVar[int | None] = None  # open interest kept (Binance: 30 days)

    @property
    def venue(self) -> str:
        """The venue's registered name."""
        return self.spec.name

    @property
    def quote(self) -> str:
        """The settle currency of the venue's linear perpetuals (USDT, USDC)."""
        return self.spec.quote

    def __init__(
        self,
        settings: VenueOptions,
        retry: RetryOptions,
        *,
        renames: Mapping[str, str] | None = None,
        clock: Clock = utc_now,
        hook: RequestHook | None = None,
        fetch_deadline_s: float = 60.0,
    ) -> None:
        config: dict[str, Any] = {"enableRateLimit": True, "timeout": int(settings.timeout_s * 1000)}
        if settings.rate_limit_ms:
            config["rateLimit"] = settings.rate_limit_ms
        window = (
            self.spec.rate_limit_window_s
            if settings.rate_limit_window_s is None
            else settings.rate_limit_window_s
        )
        if window:  # ccxt's own rolling window: an hour's requests burst within the venue's budget
            config["rateLimiterAlgorithm"] = "rollingWindow"
            config["rollingWindowSize"] = window * 1000
        import ccxt.async_support as ccxt_async  # here, not at the top: settings import this module

        self.exchange = getattr(ccxt_async, self.spec.ccxt_class)(config)
        if settings.api_url:
            from riskd.sources.endpoints import api_urls  # only needed for overridden URLs

            self.exchange.urls["api"] = api_urls(self.venue, settings.api_url)
        capture_retry_after(self.exchange)
        self.fetch_deadline_s = fetch_deadline_s  # the cycle deadline fetch_recent applies by default
        self.guard = VenueGuard(self.venue, retry, clock)
        self._retry = retry
        self._renames = dict(renames or {})
        self._clock = clock
        self._hook = hook
        self._sem = asyncio.Semaphore(settings.max_concurrency)
        self._markets: dict[str, Market] | None = None
        self._markets_error: SourceError | None = None
        self._markets_lock = asyncio.Lock()

    async def __aenter__(self) -> VenueSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Release the HTTP session (ccxt warns loudly when this is forgotten)."""
        await self.exchange.close()

    def begin_cycle(self, deadline_s: float | None = None) -> None:
        """Start one fetch cycle: a fresh tally, waits bounded by ``deadline_s`` from now, and a market
        list that failed last cycle may be asked for again (once, for all symbols)."""
        self.guard.begin_cycle(deadline_s)
        self._markets_error = None

    def end_cycle(self) -> None:
        """End the cycle's deadline (the tally and health stay readable until the next cycle)."""
        self.guard.end_cycle()

    async def request(self, endpoint: str, factory: Callable[[], Awaitable[T]]) -> T:
        """One exchange call under the venue's concurrency limit and guard, with translation and retries."""
        return await call_with_retry(
            factory,
            venue=self.venue,
            endpoint=endpoint,
            policy=self._retry,
            hook=self._hook,
            guard=self.guard,
            slot=self._sem,
        )

    async def server_time(self) -> pd.Timestamp:
        """The venue's clock now (ccxt ``fetch_time``: Binance ``/fapi/v1/time``), asked through the guard
        like any request: never sent into a ban or an open circuit, and a ban it meets holds every request
        after it. Counted under the endpoint ``time``. The daemon reads its clock skew from it."""
        ms = await self.request("time", self.exchange.fetch_time)
        if ms is None:
            raise SourceError(
                f"{self.venue} time: no server time in the answer", venue=self.venue, endpoint="time"
            )
        return pd.Timestamp(int(ms), unit="ms", tz="UTC")

    # ---- markets -------------------------------------------------------------------------------

    async def markets(self) -> dict[str, Market]:
        """The venue's linear perpetuals by canonical base asset.

        Loaded once per client; concurrent callers wait for the one load in flight, and a failed load
        is remembered until the next ``begin_cycle``: fifty symbols meet one failure, not fifty retries.
        """
        async with self._markets_lock:
            if self._markets is None and self._markets_error is None:
                try:
                    self._markets = await self._load_markets()
                except SourceError as err:
                    self._markets_error = err
            if self._markets_error is not None:
                raise copy.copy(self._markets_error)
        assert self._markets is not None
        return self._markets

    async def _load_markets(self) -> dict[str, Market]:
        """One load of the market list (a venue may add to it: Binance's funding intervals)."""
        raw = await self.request("markets", self.exchange.load_markets)
        return self._parse_markets(raw)

    def _parse_markets(self, raw: Mapping[str, Mapping[str, Any]]) -> dict[str, Market]:
        out: dict[str, Market] = {}
        for m in raw.values():
            if not (m.get("swap") and m.get("linear")) or m.get("active") is False:
                continue
            if m.get("settle") != self.quote:
                continue
            created = m.get("created")
            listed_at = pd.Timestamp(created, unit="ms", tz="UTC").floor("h") if created else None
            base = canonical(str(m["base"]), self._renames)
            out[base] = Market(
                base, str(m["base"]), m["symbol"], str(m["id"]), listed_at, self._funding_hours(m)
            )
        return out

    async def resolve(self, base: str) -> Market | None:
        """The market trading ``base`` here today (after renames), or None if not listed."""
        markets = await self.markets()
        if base.upper() in markets:
            return markets[base.upper()]
        listed = {m.listed for m in markets.values()}
        name = listed_name(base, self._renames, listed, self.spec.scaled_prefixes)
        if name is None:
            return None
        return next(m for m in markets.values() if m.listed == name)

    # ---- ranges --------------------------------------------------------------------------------

    def last_closed_hour_end(self) -> pd.Timestamp:
        """Exclusive end of closed candles now: the candle opened at T is closed once T + 1 h <= now."""
        return self._clock().floor("h")

    def clamp(
        self, market: Market, start: pd.Timestamp, end: pd.Timestamp, keep_hours: int | None
    ) -> tuple[pd.Timestamp, pd.Timestamp]:
        """Trim a requested [start, end) to what the venue can have: listed, closed, still kept.

        Retention (Hyperliquid's 5,000 candles, Binance's 30 days of open interest) counts back
        from the venue's now, not from the end asked for.
        """
        closed_end = self.last_closed_hour_end()
        end = min(end, closed_end)
        if market.listed_at is not None:
            start = max(start, market.listed_at)
        if keep_hours is not None:
            start = max(start, closed_end - keep_hours * HOUR)
        return start, end

    async def _walk(
        self,
        start: pd.Timestamp,
        end: pd.Timestamp,
        window_hours: int,
        fetch: Callable[[int, int], Awaitable[Page]],
    ) -> list[Any]:
        """Rows of [start, end) fetched window by window; full pages are split, never truncated."""
        rows: list[Any] = []
        cursor = start
        while cursor < end:
            span = window_hours * HOUR
            while True:
                stop = min(cursor + span, end)
                page = await fetch(to_ms(cursor), to_ms(stop) - 1)
                if not page.full or span <= HOUR:
                    break
                span = span / 2
            rows.extend(page.rows)
            cursor = stop
        return rows

    # ---- datasets ------------------------------------------------------------------------------

    async def fetch_ohlcv(self, base: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Closed hourly candles of [start, end), open-time stamped; empty when not listed.

        When the range reaches the present, the newest candle the venue serves is taken to be still
        open, whatever our clock says: a venue running behind (stale) serves its in-progress candle
        as the last row, and that must never be stored as final.
        """
        market = None if not self.spec.serves("ohlcv") else await self.resolve(base)
        if market is None:
            return empty(OHLCV_COLUMNS)
        s, e = self.clamp(market, start, end, self.history_limit_hours)
        if s >= e:
            return empty(OHLCV_COLUMNS)
        reaches_now = e >= self.last_closed_hour_end()
        stop = e + HOUR if reaches_now else e
        rows = await self._walk(s, stop, self.ohlcv_window_hours, lambda a, b: self._ohlcv_page(market, a, b))
        frame = ohlcv_frame(rows, now=self._clock())
        if reaches_now and rows:
            newest = pd.Timestamp(max(int(r[0]) for r in rows), unit="ms", tz="UTC")
            frame = frame[frame.index < newest]
        return frame[(frame.index >= s) & (frame.index < e)]

    async def fetch_funding(self, base: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Funding prints stamped in [start, end), each with its interval and per-hour rate."""
        market = await self.resolve(base)
        if market is None:
            return empty(FUNDING_COLUMNS)
        now = self._clock()
        s = start - FUNDING_CONTEXT
        if market.listed_at is not None:
            s = max(s, market.listed_at)
        e = min(end, now + pd.Timedelta(milliseconds=1))
        if s >= e:
            return empty(FUNDING_COLUMNS)
        rows = await self._walk(
            s, e, self.funding_window_hours, lambda a, b: self._funding_page(market, a, b)
        )
        ms = [int(r[0]) for r in rows]
        rates = [float(r[1]) for r in rows]
        frame = funding_frame(
            ms,
            rates,
            reported_hours=self.reported_funding_hours,
            fallback_hours=market.funding_hours or 8.0,
            now=now,
        )
        return frame[(frame.index >= start) & (frame.index < end)]

    async def fetch_open_interest(self, base: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Hourly open-interest history where the venue keeps it; empty elsewhere."""
        market = None if not self.spec.serves("open_interest") else await self.resolve(base)
        if market is None or not self.oi_window_hours:
            return empty(OI_COLUMNS)
        s, e = self.clamp(market, start, end, self.oi_history_limit_hours)
        if s >= e:
            return empty(OI_COLUMNS)
        rows = await self._walk(s, e, self.oi_window_hours, lambda a, b: self._oi_page(market, a, b))
        frame = oi_frame([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
        return frame[(frame.index >= s) & (frame.index < e)]

    async def fetch_current_funding(self) -> pd.DataFrame:
        """Current/predicted funding of every perpetual of the venue in one bulk call.

        Indexed by canonical base asset: rate, interval_hours, rate_per_hour, next_funding_time,
        mark_price, index_price, ts (when the venue stamped it).
        """
        await self.markets()
        raw = await self.request("funding_rates", self.exchange.fetch_funding_rates)
        records = []
        by_symbol = {m.symbol: m for m in (self._markets or {}).values()}
        for symbol, item in raw.items():
            market = by_symbol.get(symbol)
            if market is None or item.get("fundingRate") is None:
                continue
            hours = interval_hours(item.get("interval")) or market.funding_hours or self.default_hours
            ts = item.get("timestamp")
            records.append(
                {
                    "symbol": market.base,
                    "rate": float(item["fundingRate"]),
                    "interval_hours": float(hours),
                    "rate_per_hour": float(item["fundingRate"]) / float(hours),
                    "next_funding_time": ms_ts(self._next_funding_ms(item)),
                    "mark_price": to_float(item.get("markPrice")),
                    "index_price": to_float(item.get("indexPrice")),
                    "ts": ms_ts(ts) if ts else self._clock(),
                }
            )
        frame = pd.DataFrame.from_records(records)
        if frame.empty:
            return pd.DataFrame(
                columns=[
                    "rate",
                    "interval_hours",
                    "rate_per_hour",
                    "next_funding_time",
                    "mark_price",
                    "index_price",
                    "ts",
                ],
                index=pd.Index([], name="symbol"),
            )
        return frame.set_index("symbol").sort_index()

    # ---- what each venue says ------------------------------------------------------------------

    default_hours: ClassVar[float] = 8.0
    reported_funding_hours: ClassVar[float | None] = None

    def _funding_hours(self, market: Mapping[str, Any]) -> float | None:
        return None

    def _next_funding_ms(self, item: Mapping[str, Any]) -> Any:
        """When the rate of a ccxt funding-rate structure is paid (most venues: ``nextFundingTimestamp``)."""
        return item.get("nextFundingTimestamp")

    async def _ohlcv_page(self, market: Market, start_ms: int, end_ms: int) -> Page:
        """Candles with open time in [start_ms, end_ms] as [ms, o, h, l, c, v, quote_v]."""
        return Page([], False)

    @abstractmethod
    async def _funding_page(self, market: Market, start_ms: int, end_ms: int) -> Page:
        """Funding prints in [start_ms, end_ms] as [ms, rate]."""

    async def _oi_page(self, market: Market, start_ms: int, end_ms: int) -> Page:
        """Open-interest snapshots in [start_ms, end_ms] as [ms, amount, value]."""
        return Page([], False)
