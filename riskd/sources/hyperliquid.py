"""Hyperliquid perpetuals (ccxt ``hyperliquid``, ``POST /info``)."""

from __future__ import annotations

from typing import Any

from riskd.sources.base import Market, Page, VenueSource
from riskd.sources.parse import expect_list, millis, number
from riskd.sources.registry import VenueSpec, register

_CANDLES_KEPT = 5000
_FUNDING_LIMIT = 500


class HyperliquidSource(VenueSource):
    """Hyperliquid keeps only the most recent ~5,000 candles, serves 500 funding rows a call, pays
    funding every hour (reported, not inferred), settles in USDC and reports no quote volume."""

    default_hours = 1.0
    reported_funding_hours = 1.0
    ohlcv_window_hours = 999
    funding_window_hours = _FUNDING_LIMIT - 1
    history_limit_hours = _CANDLES_KEPT - 1

    async def _info(self, body: dict[str, Any], what: str) -> list[Any]:
        return expect_list(await self.exchange.publicPostInfo(body), what)

    async def _ohlcv_page(self, market: Market, start_ms: int, end_ms: int) -> Page:
        req = {"coin": market.listed, "interval": "1h", "startTime": start_ms, "endTime": end_ms}

        async def get() -> list[list[float]]:
            raw = await self._info({"type": "candleSnapshot", "req": req}, "candleSnapshot")
            return [
                [
                    millis(c["t"], "candleSnapshot"),
                    *(number(c[k], "candleSnapshot") for k in "ohlcv"),
                    float("nan"),
                ]
                for c in raw
            ]

        return Page(await self.request("candleSnapshot", get), False)

    async def _funding_page(self, market: Market, start_ms: int, end_ms: int) -> Page:
        body = {"type": "fundingHistory", "coin": market.listed, "startTime": start_ms, "endTime": end_ms}

        async def get() -> list[list[float]]:
            raw = await self._info(body, "fundingHistory")
            return [
                [millis(r["time"], "fundingHistory"), number(r["fundingRate"], "fundingHistory")] for r in raw
            ]

        rows = await self.request("fundingHistory", get)
        return Page(rows, len(rows) >= _FUNDING_LIMIT)


SPEC = register(
    VenueSpec(
        name="hyperliquid",
        title="Hyperliquid perpetuals (USDC-margined).",
        source=HyperliquidSource,
        ccxt_class="hyperliquid",
        quote="USDC",
        market_id="{base}",
        endpoints=("markets", "candleSnapshot", "fundingHistory", "funding_rates"),
        datasets=frozenset({"ohlcv", "funding", "current_funding"}),
        funding_role="gap",
        rate_limit_window_s=60.0,
        scaled_prefixes=("1000000", "10000", "1000", "k"),  # kPEPE: 1,000 tokens per contract
        import_quotes=("USDC", ""),  # its own exports name the coin alone
    )
)
