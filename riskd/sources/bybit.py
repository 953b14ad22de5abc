"""Bybit linear perpetuals (ccxt ``bybit``, v5 API)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from riskd.sources.base import Market, Page, VenueSource
from riskd.sources.parse import candle, expect_result_list, millis, number
from riskd.sources.registry import VenueSpec, register
from riskd.sources.spec import StreamSpec

_KLINE_LIMIT = 1000
_FUNDING_LIMIT = 200
_OI_LIMIT = 200


class BybitSource(VenueSource):
    """Bybit answers a kline request with the *last* ``limit`` candles of [start, end] and funding
    newest first, so every request names both ends of a window that holds fewer rows than the
    limit; a full page is split by the base class."""

    ohlcv_window_hours = _KLINE_LIMIT - 1
    funding_window_hours = (_FUNDING_LIMIT - 1) * 8  # full pages (shorter intervals) get split
    oi_window_hours = _OI_LIMIT - 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only linear instruments: spares the spot/inverse/option instrument pages at start-up.
        self.exchange.options["fetchMarkets"] = {"types": ["linear"]}

    def _funding_hours(self, market: Mapping[str, Any]) -> float | None:
        minutes = (market.get("info") or {}).get("fundingInterval")
        return float(minutes) / 60.0 if minutes else None

    async def _list(self, method: Any, params: dict[str, Any], what: str) -> list[Any]:
        items, _ = expect_result_list(await method({"category": "linear", **params}), what)
        return items

    async def _ohlcv_page(self, market: Market, start_ms: int, end_ms: int) -> Page:
        # Raw endpoint: the unified candle drops the turnover (quote volume, index 6).
        params = {
            "symbol": market.id,
            "interval": "60",
            "start": start_ms,
            "end": end_ms,
            "limit": _KLINE_LIMIT,
        }

        async def get() -> list[list[float]]:
            items = await self._list(self.exchange.publicGetV5MarketKline, params, "kline")
            return [candle(r, (1, 2, 3, 4, 5, 6), "kline") for r in items]

        rows = await self.request("kline", get)
        return Page(rows, len(rows) >= _KLINE_LIMIT)

    async def _funding_page(self, market: Market, start_ms: int, end_ms: int) -> Page:
        params = {"symbol": market.id, "startTime": start_ms, "endTime": end_ms, "limit": _FUNDING_LIMIT}

        async def get() -> list[list[float]]:
            items = await self._list(self.exchange.publicGetV5MarketFundingHistory, params, "funding/history")
            return [
                [
                    millis(r["fundingRateTimestamp"], "funding/history"),
                    number(r["fundingRate"], "funding/history"),
                ]
                for r in items
            ]

        rows = await self.request("funding/history", get)
        return Page(rows, len(rows) >= _FUNDING_LIMIT)

    async def _oi_page(self, market: Market, start_ms: int, end_ms: int) -> Page:
        params = {
            "symbol": market.id, "intervalTime": "1h", "startTime": start_ms, "endTime": end_ms, "limit": _OI_LIMIT,
        }  # fmt: skip

        async def get() -> list[list[float]]:
            items = await self._list(self.exchange.publicGetV5MarketOpenInterest, params, "open-interest")
            return [
                [
                    millis(r["timestamp"], "open-interest"),
                    number(r["openInterest"], "open-interest"),
                    float("nan"),
                ]
                for r in items
            ]

        rows = await self.request("open-interest", get)
        return Page(rows, len(rows) >= _OI_LIMIT)


def candle_closed(message: Any, market_id: str) -> list[int]:
    """Bybit's ``kline.1.<id>`` frame: each data row's ``confirm`` marks it closed; its open time is ``start``."""
    if not isinstance(message, dict) or not str(message.get("topic", "")).endswith(f".{market_id}"):
        return []
    return [
        int(d["start"]) for d in message.get("data", []) if isinstance(d, dict) and d.get("confirm") is True
    ]


STREAM = StreamSpec(
    ws_shape=("public", "linear"),
    fake_ws_path="/_ws/bybit/v5/public/linear",
    liquidations="per_symbol",
    liquidation_topic="allLiquidation.{id}",
    candle_closed=candle_closed,
    completeness="complete",  # allLiquidation: every liquidation
    ccxt_options=(("fetchMarkets", {"types": ["linear"]}),),
)

SPEC = register(
    VenueSpec(
        name="bybit",
        title="Bybit linear perpetuals.",
        source=BybitSource,
        ccxt_class="bybit",
        quote="USDT",
        market_id="{base}{quote}",
        endpoints=("markets", "kline", "funding/history", "open-interest", "funding_rates"),
        datasets=frozenset({"ohlcv", "funding", "open_interest", "current_funding"}),
        funding_role="gap",
        rate_limit_window_s=5.0,  # Bybit's IP limit counts requests per 5 s
        stream=STREAM,
        liquidation_completeness="complete",
    )
)
