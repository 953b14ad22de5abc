"""Hyperliquid's ``POST /info`` endpoint, as ``ccxt.hyperliquid`` calls it.

One URL, a JSON body whose ``type`` names the query. Coins are bare names (``BTC``). Only the most
recent 5,000 candles of any coin exist, and funding history comes 500 rows per call from
``startTime`` onwards; a body that does not parse gets HTTP 422, as on the venue.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from riskd.testing.fake_exchange._market import (
    CONTEXT,
    HOUR_MS,
    MarketData,
    RequestContext,
    VenueError,
    VenueLimits,
    num,
    parse_int,
)

VENUE = "hyperliquid"
_DESERIALIZE = "Failed to deserialize the JSON body into the target type"
_BASE_PREMIUM = 0.0000125  # the hourly interest part of Hyperliquid's funding


def _unprocessable(detail: str = "") -> VenueError:
    text = f"{_DESERIALIZE}{': ' + detail if detail else ''}"
    return VenueError(text, web.Response(status=422, text=text))


def _sz_decimals(price: float) -> int:
    """Size decimals as the venue sets them: more for expensive coins (BTC 5, DOGE 0)."""
    for floor, decimals in ((10_000, 5), (1_000, 4), (100, 2), (1, 1)):
        if price >= floor:
            return decimals
    return 0


async def read_info_body(request: web.Request) -> dict[str, Any]:
    """The parsed ``/info`` body; raises the venue's 422 when it is not a JSON object with a type."""
    try:
        body = json.loads(await request.read() or b"null")
    except ValueError:
        raise _unprocessable() from None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise _unprocessable("missing field `type`")
    return body


class Hyperliquid:
    """Handler of the Hyperliquid route."""

    def __init__(self, data: MarketData, limits: VenueLimits) -> None:
        self.data = data
        self.limits = limits
        self._queries = {
            "meta": self.meta,
            "metaAndAssetCtxs": self.meta_and_asset_ctxs,
            "spotMeta": self.spot_meta,
            "spotMetaAndAssetCtxs": self.spot_meta_and_asset_ctxs,
            "perpDexs": lambda body, ctx: [None],
            "candleSnapshot": self.candle_snapshot,
            "fundingHistory": self.funding_history,
        }

    def routes(self) -> list[web.RouteDef]:
        """The route this venue serves."""
        return [web.post("/info", self.info)]

    async def info(self, request: web.Request) -> web.Response:
        body = await read_info_body(request)
        query = self._queries.get(body["type"])
        if query is None:
            raise _unprocessable(f"unknown variant `{body['type']}`")
        return web.json_response(query(body, request[CONTEXT]))

    def _coins(self, now_ms: int) -> list[tuple[str, str, float]]:
        """(coin, base, live price) of every coin listed by now, in universe order."""
        out = []
        for coin, base in self.data.listed(VENUE).items():
            mark = self.data.mark_price(VENUE, base, now_ms)
            if mark is not None:
                out.append((coin, base, mark[0]))
        return out

    def meta(self, body: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        universe = [
            {"szDecimals": _sz_decimals(price), "name": coin, "maxLeverage": 20, "marginTableId": 20}
            for coin, _, price in self._coins(ctx.now_ms)
        ]
        return {"universe": universe, "marginTables": [[20, {"description": "", "marginTiers": []}]]}

    def meta_and_asset_ctxs(self, body: dict[str, Any], ctx: RequestContext) -> list[Any]:
        ctxs = []
        for _, base, price in self._coins(ctx.now_ms):
            nxt = self.data.next_funding(VENUE, base, ctx.now_ms)
            rate = nxt[1] if nxt is not None else 0.0
            day = self.data.day_stats(VENUE, base, ctx.now_ms) or {
                "open": price,
                "volume": 0.0,
                "quote_volume": 0.0,
            }
            oi = self.data.open_interest(VENUE, base)
            i = oi.upto(ctx.now_ms) - 1 if oi is not None else -1
            oi_base = float(oi.values[i, 0]) if oi is not None and i >= 0 else round(day["volume"] / 4, 2)
            ctxs.append(
                {
                    "funding": num(round(rate, 8)),
                    "openInterest": num(oi_base),
                    "prevDayPx": num(day["open"]),
                    "dayNtlVlm": num(round(day["quote_volume"], 4)),
                    "premium": num(round(rate - _BASE_PREMIUM, 8)),
                    "oraclePx": num(round(price * 0.9999, 8)),
                    "markPx": num(price),
                    "midPx": num(price),
                    "impactPxs": [num(price), num(price)],
                    "dayBaseVlm": num(round(day["volume"], 4)),
                }
            )
        return [self.meta(body, ctx), ctxs]

    def spot_meta(self, body: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        usdc = {
            "name": "USDC",
            "szDecimals": 8,
            "weiDecimals": 8,
            "index": 0,
            "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054",
            "isCanonical": True,
            "evmContract": None,
            "fullName": None,
        }
        return {"universe": [], "tokens": [usdc]}

    def spot_meta_and_asset_ctxs(self, body: dict[str, Any], ctx: RequestContext) -> list[Any]:
        return [self.spot_meta(body, ctx), []]

    def candle_snapshot(self, body: dict[str, Any], ctx: RequestContext) -> list[dict[str, Any]]:
        req = body.get("req")
        if not isinstance(req, dict):
            raise _unprocessable("missing field `req`")
        coin, start, end = req.get("coin"), _int(req, "startTime"), _int(req, "endTime")
        if req.get("interval") != "1h" or start is None:
            raise _unprocessable("the fake exchange serves interval `1h` with a startTime")
        base = self.data.base_of(VENUE, coin)
        if base is None:
            return []
        c = self.data.candles(VENUE, base)
        oldest = max(0, c.upto(ctx.now_ms) - self.limits.hyperliquid_candle_retention)
        lo, hi = c.window(start, end, ctx.now_ms)
        lo = max(lo, oldest)
        hi = max(lo, min(hi, lo + self.limits.hyperliquid_candles_per_call))
        rows = c.candle_rows(lo, hi, ctx.now_ms)
        return [
            {
                "t": t,
                "T": t + HOUR_MS - 1,
                "s": coin,
                "i": "1h",
                "o": num(o),
                "c": num(cl),
                "h": num(h),
                "l": num(lw),
                "v": num(v),
                "n": int(qv // 2000) + 1,
            }
            for t, o, h, lw, cl, v, qv in ctx.mangle(rows)
        ]

    def funding_history(self, body: dict[str, Any], ctx: RequestContext) -> list[dict[str, Any]]:
        coin, start, end = body.get("coin"), _int(body, "startTime"), _int(body, "endTime")
        if start is None:
            raise _unprocessable("missing field `startTime`")
        base = self.data.base_of(VENUE, coin)
        f = self.data.funding(VENUE, base) if base is not None else None
        if f is None:
            return []
        lo, hi = f.window(start, end, ctx.now_ms)
        hi = min(hi, lo + self.limits.hyperliquid_funding_per_call)
        rows = [(int(f.ts[i]), float(f.values[i, 0])) for i in range(lo, hi)]
        return [
            {"coin": coin, "fundingRate": num(r), "premium": num(round(r - _BASE_PREMIUM, 10)), "time": t}
            for t, r in ctx.mangle(rows)
        ]


def _int(body: dict[str, Any], key: str) -> int | None:
    try:
        return parse_int(body.get(key))
    except (TypeError, ValueError):
        raise _unprocessable(f"invalid type for `{key}`") from None
