"""Bybit v5 market endpoints, as ``ccxt.bybit`` calls them.

Bybit's time-window endpoints are end-anchored and newest-first: with a window longer than
``limit`` they return the *last* ``limit`` rows of [start, end] (``end`` defaulting to now), so a
client that pages forward from ``start`` silently skips data. That trap is reproduced on purpose.
Errors come back as HTTP 200 with a non-zero ``retCode``, as on the venue.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from riskd.testing.fake_exchange._market import (
    CONTEXT,
    MarketData,
    Series,
    VenueError,
    VenueLimits,
    num,
    parse_int,
)

VENUE = "bybit"
_OI_INTERVAL_HOURS = {"1h": 1, "4h": 4, "1d": 24}


class BybitError(VenueError):
    """Bybit's error answer: HTTP 200 with a non-zero ``retCode``."""

    def __init__(self, code: int, msg: str, now_ms: int = 0) -> None:
        body = {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": now_ms}
        super().__init__(msg, web.json_response(body))


def _envelope(result: Any, now_ms: int) -> web.Response:
    return web.json_response(
        {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": now_ms}
    )


class Bybit:
    """Handlers for the Bybit routes."""

    def __init__(self, data: MarketData, limits: VenueLimits) -> None:
        self.data = data
        self.limits = limits

    def routes(self) -> list[web.RouteDef]:
        """The routes this venue serves."""
        return [
            web.get("/v5/market/time", self.time),
            web.get("/v5/market/instruments-info", self.instruments_info),
            web.get("/v5/market/kline", self.kline),
            web.get("/v5/market/funding/history", self.funding_history),
            web.get("/v5/market/tickers", self.tickers),
            web.get("/v5/market/open-interest", self.open_interest),
        ]

    def _int(self, request: web.Request, name: str) -> int | None:
        try:
            return parse_int(request.query.get(name))
        except ValueError:
            raise BybitError(10001, f"params error: {name} invalid", request[CONTEXT].now_ms) from None

    def _limit(self, request: web.Request, default: int, maximum: int) -> int:
        limit = self._int(request, "limit")
        if limit is None:
            return default
        if not 1 <= limit <= maximum:
            raise BybitError(10001, "params error: limit invalid", request[CONTEXT].now_ms)
        return limit

    def _linear_base(self, request: web.Request) -> str:
        now = request[CONTEXT].now_ms
        if request.query.get("category") != "linear":
            raise BybitError(10001, "params error: category only support linear", now)
        base = self.data.base_of(VENUE, request.query.get("symbol"))
        if base is None:
            raise BybitError(10001, "params error: symbol invalid", now)
        return base

    def _window(
        self, request: web.Request, s: Series, start_key: str, end_key: str, limit: int
    ) -> tuple[int, int]:
        """The newest ``limit`` rows of [start, end or now]: Bybit's end-anchored page."""
        now = request[CONTEXT].now_ms
        lo, hi = s.window(self._int(request, start_key), self._int(request, end_key), now)
        return max(lo, hi - limit), hi

    async def time(self, request: web.Request) -> web.Response:
        now = request[CONTEXT].now_ms
        return _envelope({"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}, now)

    async def instruments_info(self, request: web.Request) -> web.Response:
        ctx = request[CONTEXT]
        category = request.query.get("category")
        if category not in ("linear", "inverse", "spot", "option"):
            raise BybitError(10001, "params error: Category is invalid", ctx.now_ms)
        limit = min(self._limit(request, 500, 1000), self.limits.bybit_instruments)
        status = request.query.get("status")
        wanted = request.query.get("symbol")
        items: list[dict[str, Any]] = []
        if category == "linear" and status in (None, "Trading"):
            for market_id, base in self.data.listed(VENUE).items():
                if wanted is not None and market_id != wanted:
                    continue
                info = self._instrument(market_id, base, ctx.now_ms)
                if info is not None:
                    items.append(info)
        cursor = request.query.get("cursor") or "0"
        offset = int(cursor) if cursor.isdigit() else 0
        page = items[offset : offset + limit]
        next_cursor = str(offset + limit) if offset + limit < len(items) else ""
        return _envelope({"category": category, "list": page, "nextPageCursor": next_cursor}, ctx.now_ms)

    def _instrument(self, market_id: str, base: str, now_ms: int) -> dict[str, Any] | None:
        c = self.data.candles(VENUE, base)
        if len(c) == 0 or c.ts[0] > now_ms:
            return None
        nxt = self.data.next_funding(VENUE, base, now_ms)
        hours = nxt[2] if nxt is not None else 8
        return {
            "symbol": market_id,
            "contractType": "LinearPerpetual",
            "status": "Trading",
            "baseCoin": market_id[: -len("USDT")],
            "quoteCoin": "USDT",
            "launchTime": str(int(c.ts[0])),
            "deliveryTime": "0",
            "deliveryFeeRate": "",
            "priceScale": "4",
            "leverageFilter": {"minLeverage": "1", "maxLeverage": "50.00", "leverageStep": "0.01"},
            "priceFilter": {"minPrice": "0.0001", "maxPrice": "1999999.8", "tickSize": "0.0001"},
            "lotSizeFilter": {
                "maxOrderQty": "1000000",
                "minOrderQty": "0.001",
                "qtyStep": "0.001",
                "postOnlyMaxOrderQty": "1000000",
                "maxMktOrderQty": "100000",
                "minNotionalValue": "5",
            },
            "unifiedMarginTrade": True,
            "fundingInterval": hours * 60,
            "settleCoin": "USDT",
            "copyTrading": "both",
            "upperFundingRate": "0.02",
            "lowerFundingRate": "-0.02",
            "isPreListing": False,
            "preListingInfo": None,
        }

    async def kline(self, request: web.Request) -> web.Response:
        ctx = request[CONTEXT]
        base = self._linear_base(request)
        if request.query.get("interval") != "60":
            raise BybitError(10001, "params error: interval invalid", ctx.now_ms)
        limit = self._limit(request, 200, self.limits.bybit_kline)
        c = self.data.candles(VENUE, base)
        lo, hi = self._window(request, c, "start", "end", limit)
        rows = c.candle_rows(lo, hi, ctx.now_ms)
        out = [
            [str(t), num(o), num(h), num(lw), num(cl), num(v), num(qv)]
            for t, o, h, lw, cl, v, qv in ctx.mangle(rows)
        ]
        out.reverse()  # newest first
        symbol = self.data.venue_id(VENUE, base)
        return _envelope({"symbol": symbol, "category": "linear", "list": out}, ctx.now_ms)

    async def funding_history(self, request: web.Request) -> web.Response:
        ctx = request[CONTEXT]
        base = self._linear_base(request)
        limit = self._limit(request, 200, self.limits.bybit_funding)
        if self._int(request, "startTime") is not None and self._int(request, "endTime") is None:
            raise BybitError(10001, "params error: endTime is required when startTime is given", ctx.now_ms)
        f = self.data.funding(VENUE, base)
        rows: list[tuple[int, float]] = []
        if f is not None:
            lo, hi = self._window(request, f, "startTime", "endTime", limit)
            rows = [(int(f.ts[i]), float(f.values[i, 0])) for i in range(lo, hi)]
        symbol = self.data.venue_id(VENUE, base)
        out = [
            {"symbol": symbol, "fundingRate": num(r), "fundingRateTimestamp": str(t)}
            for t, r in ctx.mangle(rows)
        ]
        out.reverse()
        return _envelope({"category": "linear", "list": out}, ctx.now_ms)

    async def tickers(self, request: web.Request) -> web.Response:
        ctx = request[CONTEXT]
        if request.query.get("category") != "linear":
            raise BybitError(10001, "params error: category only support linear", ctx.now_ms)
        wanted = request.query.get("symbol")
        out = []
        for market_id, base in self.data.listed(VENUE).items():
            if wanted is not None and market_id != wanted:
                continue
            row = self._ticker(market_id, base, ctx.now_ms)
            if row is not None:
                out.append(row)
        if wanted is not None and not out:
            raise BybitError(10001, "params error: symbol invalid", ctx.now_ms)
        return _envelope({"category": "linear", "list": out}, ctx.now_ms)

    def _ticker(self, market_id: str, base: str, now_ms: int) -> dict[str, Any] | None:
        day = self.data.day_stats(VENUE, base, now_ms)
        if day is None:
            return None
        nxt = self.data.next_funding(VENUE, base, now_ms)
        next_time, rate, hours = nxt if nxt is not None else (0, 0.0, 8)
        last = day["last"]
        oi = self.data.open_interest(VENUE, base)
        i = oi.upto(now_ms) - 1 if oi is not None else -1
        oi_base = float(oi.values[i, 0]) if oi is not None and i >= 0 else 0.0
        return {
            "symbol": market_id,
            "lastPrice": num(last),
            "indexPrice": num(round(last * 0.9999, 8)),
            "markPrice": num(last),
            "prevPrice24h": num(day["open"]),
            "price24hPcnt": num(round(last / day["open"] - 1, 6)),
            "highPrice24h": num(day["high"]),
            "lowPrice24h": num(day["low"]),
            "prevPrice1h": num(day["prev_1h"]),
            "openInterest": num(oi_base),
            "openInterestValue": num(round(oi_base * last, 2)),
            "turnover24h": num(round(day["quote_volume"], 4)),
            "volume24h": num(round(day["volume"], 3)),
            "fundingRate": num(round(rate, 8)),
            "nextFundingTime": str(next_time),
            "predictedDeliveryPrice": "",
            "basisRate": "",
            "deliveryFeeRate": "",
            "deliveryTime": "0",
            "ask1Size": "1",
            "bid1Price": num(last),
            "ask1Price": num(last),
            "bid1Size": "1",
            "basis": "",
            "fundingIntervalHour": str(hours),
            "fundingCap": "0.02",
        }

    async def open_interest(self, request: web.Request) -> web.Response:
        ctx = request[CONTEXT]
        base = self._linear_base(request)
        step_h = _OI_INTERVAL_HOURS.get(request.query.get("intervalTime", ""))
        if step_h is None:
            raise BybitError(10001, "params error: intervalTime invalid", ctx.now_ms)
        limit = self._limit(request, 50, self.limits.bybit_open_interest)
        end = self._int(request, "endTime")
        start = self._int(request, "startTime") if end is not None else None  # a lone startTime is ignored
        s = self.data.open_interest(VENUE, base)
        rows: list[tuple[int, float]] = []
        if s is not None:
            lo, hi = s.window(start, end, ctx.now_ms)
            step = step_h * 3_600_000
            rows = [(int(s.ts[i]), float(s.values[i, 0])) for i in range(lo, hi) if s.ts[i] % step == 0]
        rows.reverse()  # newest first; the cursor counts rows already served
        cursor = request.query.get("cursor") or "0"
        offset = int(cursor) if cursor.isdigit() else 0
        page = rows[offset : offset + limit]
        next_cursor = str(offset + limit) if offset + limit < len(rows) else ""
        out = [{"openInterest": num(oi), "timestamp": str(t)} for t, oi in ctx.mangle(page)]
        symbol = self.data.venue_id(VENUE, base)
        result = {"symbol": symbol, "category": "linear", "list": out, "nextPageCursor": next_cursor}
        return _envelope(result, ctx.now_ms)
