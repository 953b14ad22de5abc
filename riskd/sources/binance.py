"""Binance USDT-M perpetuals (ccxt ``binanceusdm``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from riskd.errors import SourceError
from riskd.sources.base import Market, Page, VenueSource
from riskd.sources.parse import candle, expect_list, millis, number
from riskd.sources.registry import VenueSpec, register
from riskd.sources.spec import StreamSpec

log = logging.getLogger("riskd.sources")

_KLINES_LIMIT = 1500
_FUNDING_LIMIT = 1000
_OI_LIMIT = 500


class BinanceSource(VenueSource):
    """Binance prints funding every 8 h by default, 4 h or 1 h for some symbols, and the interval of
    a symbol changes over time: history is inferred from print spacing, today's from ``fundingInfo``.
    Open-interest history is kept for 30 days only (29 asked, to stay clear of the edge)."""

    ohlcv_window_hours = _KLINES_LIMIT - 1
    funding_window_hours = _FUNDING_LIMIT - 1
    oi_window_hours = _OI_LIMIT - 1
    oi_history_limit_hours = 29 * 24

    async def _load_markets(self) -> dict[str, Market]:
        """Markets, with each symbol's current funding interval from ``/fapi/v1/fundingInfo``."""
        markets = await super()._load_markets()
        try:
            info = await self.request(
                "fundingInfo",
                lambda: self._get(self.exchange.fapiPublicGetFundingInfo, {}, "fundingInfo"),
            )
        except SourceError as err:  # intervals refine the fallback only: 8 h stays the default
            log.warning("binance fundingInfo unavailable, assuming 8 h intervals: %s", err)
            info = []
        hours = {str(i["symbol"]): float(i["fundingIntervalHours"]) for i in info}
        for base, m in list(markets.items()):
            if m.id in hours:
                markets[base] = Market(m.base, m.listed, m.symbol, m.id, m.listed_at, hours[m.id])
        return markets

    def _funding_hours(self, market: Mapping[str, Any]) -> float | None:
        return 8.0

    @staticmethod
    async def _get(method: Any, params: dict[str, Any], what: str) -> list[Any]:
        return expect_list(await method(params), what)

    async def _ohlcv_page(self, market: Market, start_ms: int, end_ms: int) -> Page:
        # The raw endpoint, not fetch_ohlcv: ccxt's unified candle drops the quote volume (index 7).
        params = {"symbol": market.id, "interval": "1h", "startTime": start_ms, "endTime": end_ms}
        # Binance weighs klines by limit (1 below 100 rows, 10 above 1,000): ask for what the window holds,
        # so the daemon's hourly fetch costs 1 and ccxt's weight-aware throttle lets it through at once.
        limit = min(_KLINES_LIMIT, (end_ms - start_ms) // 3_600_000 + 2)

        async def get() -> list[list[float]]:
            raw = await self._get(self.exchange.fapiPublicGetKlines, {**params, "limit": limit}, "klines")
            return [candle(r, (1, 2, 3, 4, 5, 7), "klines") for r in raw]

        rows = await self.request("klines", get)
        return Page(rows, len(rows) >= limit)

    async def _funding_page(self, market: Market, start_ms: int, end_ms: int) -> Page:
        params = {"symbol": market.id, "startTime": start_ms, "endTime": end_ms, "limit": _FUNDING_LIMIT}

        async def get() -> list[list[float]]:
            raw = await self._get(self.exchange.fapiPublicGetFundingRate, params, "fundingRate")
            return [
                [millis(r["fundingTime"], "fundingRate"), number(r["fundingRate"], "fundingRate")]
                for r in raw
            ]

        rows = await self.request("fundingRate", get)
        return Page(rows, len(rows) >= _FUNDING_LIMIT)

    async def _oi_page(self, market: Market, start_ms: int, end_ms: int) -> Page:
        params = {
            "symbol": market.id,
            "period": "1h",
            "startTime": start_ms,
            "endTime": end_ms,
            "limit": _OI_LIMIT,
        }

        async def get() -> list[list[float]]:
            raw = await self._get(self.exchange.fapiDataGetOpenInterestHist, params, "openInterestHist")
            return [
                [
                    millis(r["timestamp"], "openInterestHist"),
                    number(r["sumOpenInterest"], "openInterestHist"),
                    number(r["sumOpenInterestValue"], "openInterestHist"),
                ]
                for r in raw
            ]

        rows = await self.request("openInterestHist", get)
        return Page(rows, len(rows) >= _OI_LIMIT)


def candle_closed(message: Any, market_id: str) -> list[int]:
    """Binance's ``kline`` frame: ``k.x`` marks the candle of ``k.s`` closed; its open time is ``k.t``."""
    k = message.get("k") if isinstance(message, dict) else None
    return [int(k["t"])] if isinstance(k, dict) and k.get("s") == market_id and k.get("x") is True else []


STREAM = StreamSpec(
    ws_shape=("linear",),
    fake_ws_path="/_ws/binance/ws",
    liquidations="all_market",  # !forceOrder@arr: every symbol in one subscription
    candle_closed=candle_closed,
    completeness="sampled",  # at most the latest liquidation per symbol per second
)

SPEC = register(
    VenueSpec(
        name="binance",
        title="Binance USDT-M perpetuals: the primary venue (prices, volume, open interest, funding).",
        source=BinanceSource,
        ccxt_class="binanceusdm",
        quote="USDT",
        market_id="{base}{quote}",
        endpoints=("markets", "fundingInfo", "klines", "fundingRate", "openInterestHist", "funding_rates"),
        datasets=frozenset({"ohlcv", "funding", "open_interest", "current_funding"}),
        funding_role="primary",
        rate_limit_window_s=60.0,
        stream=STREAM,
        liquidation_completeness="sampled",
    )
)
