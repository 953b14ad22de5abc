"""OKX USDT-margined perpetual swaps (ccxt ``okx``, v5 API): funding and open interest, opt-in.

The whole venue is this file: the adapter below and its ``VenueSpec`` at the end, registered by one
import line in ``riskd/sources/__init__.py``. OKX serves no candles riskd reads (Binance is the price
venue); it enters the funding aggregates and the cross-venue gap like Bybit and Hyperliquid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from riskd.sources.base import Market, Page, VenueSource
from riskd.sources.parse import MalformedReply, expect_list, millis, number
from riskd.sources.registry import VenueSpec, register

_FUNDING_LIMIT = 400  # /api/v5/public/funding-rate-history: at most 400 rows, newest first
_OI_LIMIT = 100  # /api/v5/rubik/stat/contracts/open-interest-history: at most 100 rows, newest first


def _data(raw: Any, what: str) -> list[Any]:
    """OKX's ``{"code": "0", "msg": "", "data": [...]}`` -> the data list (ccxt raises on other codes)."""
    if not isinstance(raw, Mapping):
        raise MalformedReply(f"{what}: expected an OKX envelope, got {str(raw)[:80]!r}")
    return expect_list(raw.get("data"), what)


class OkxSource(VenueSource):
    """OKX pages are end-anchored and newest first (like Bybit), and its bounds are exclusive
    (``before``/``after`` for funding, ``begin``/``end`` for open interest): each request widens the
    window by 1 ms on both sides and keeps the rows inside it, so either reading of the bounds is safe.
    Funding intervals (8 h, 4 h, 1 h) are inferred from the print spacing, as on Binance."""

    funding_window_hours = (_FUNDING_LIMIT - 1) * 8  # full pages (shorter intervals) get split
    oi_window_hours = _OI_LIMIT - 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only perpetual swaps: spares the spot/futures/option instrument lists at start-up.
        self.exchange.options["fetchMarkets"] = {"types": ["swap"]}

    def _next_funding_ms(self, item: Mapping[str, Any]) -> Any:
        # OKX's fundingTime is the coming settlement; ccxt's nextFundingTimestamp is the one after it.
        return item.get("fundingTimestamp")

    async def _funding_page(self, market: Market, start_ms: int, end_ms: int) -> Page:
        params = {"instId": market.id, "before": start_ms - 1, "after": end_ms + 1, "limit": _FUNDING_LIMIT}

        async def get() -> list[list[float]]:
            raw = _data(await self.exchange.publicGetPublicFundingRateHistory(params), "funding-rate-history")
            rows = [
                [
                    millis(r["fundingTime"], "funding-rate-history"),
                    number(r["fundingRate"], "funding-rate-history"),
                ]
                for r in raw
            ]
            return [r for r in rows if start_ms <= r[0] <= end_ms]

        rows = await self.request("funding-rate-history", get)
        return Page(rows, len(rows) >= _FUNDING_LIMIT)

    async def _oi_page(self, market: Market, start_ms: int, end_ms: int) -> Page:
        params = {
            "instId": market.id,
            "period": "1H",
            "begin": start_ms - 1,
            "end": end_ms + 1,
            "limit": _OI_LIMIT,
        }

        async def get() -> list[list[float]]:
            what = "open-interest-history"
            raw = _data(await self.exchange.publicGetRubikStatContractsOpenInterestHistory(params), what)
            rows = []
            for r in raw:  # [ts, contracts, base currency, USD]
                if not isinstance(r, list) or len(r) < 4:
                    raise MalformedReply(f"{what}: bad row {str(r)[:80]!r}")
                rows.append([millis(r[0], what), number(r[2], what), number(r[3], what)])
            return [r for r in rows if start_ms <= r[0] <= end_ms]

        rows = await self.request("open-interest-history", get)
        return Page(rows, len(rows) >= _OI_LIMIT)


SPEC = register(
    VenueSpec(
        name="okx",
        title="OKX USDT-margined perpetual swaps (funding and open interest); opt-in.",
        source=OkxSource,
        ccxt_class="okx",
        quote="USDT",
        market_id="{base}-{quote}-SWAP",
        endpoints=("markets", "funding-rate-history", "open-interest-history", "funding_rates"),
        datasets=frozenset({"funding", "open_interest", "current_funding"}),
        funding_role="gap",
        rate_limit_window_s=2.0,  # OKX's public limits count requests per 2 s
        enabled_by_default=False,
        liquidation_completeness="sampled",  # its stream: at most one order per contract per second
    )
)
