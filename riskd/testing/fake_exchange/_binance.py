"""Binance USDT-M futures endpoints, as ``ccxt.binanceusdm`` calls them.

Shapes follow the venue's documentation and ccxt's parsers; the page rules (limits, which end
of a window a short page comes from, the 30-day open-interest retention) follow the venue.
"""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from riskd.testing.fake_exchange._market import (
    CONTEXT,
    HOUR_MS,
    MarketData,
    RequestContext,
    Series,
    VenueError,
    VenueLimits,
    num,
    parse_int,
)

VENUE = "binance"
_OI_PERIOD_HOURS = {"1h": 1, "2h": 2, "4h": 4, "6h": 6, "12h": 12, "1d": 24}
_MARK_INTERVAL_HOURS = {"1h": 1, "2h": 2, "4h": 4, "6h": 6, "8h": 8, "12h": 12, "1d": 24}
_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)


class BinanceError(VenueError):
    """Binance's error answer: HTTP 400 with ``{"code": ..., "msg": ...}``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg, web.json_response({"code": code, "msg": msg}, status=status))


def _bad_param(name: str) -> BinanceError:
    return BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.")


def _int_param(request: web.Request, name: str) -> int | None:
    try:
        return parse_int(request.query.get(name))
    except ValueError:
        raise BinanceError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        ) from None


def _limit(request: web.Request, default: int, maximum: int) -> int:
    limit = _int_param(request, "limit")
    if limit is None:
        return default
    if not 1 <= limit <= maximum:
        raise _bad_param("limit")
    return limit


def _first_page(lo: int, hi: int, start: int | None, end: int | None, limit: int) -> tuple[int, int]:
    """Binance pages: from startTime forward when given, else the newest ``limit`` rows."""
    if start is not None:
        return lo, min(hi, lo + limit)
    return max(lo, hi - limit), hi


def _price_decimals(price: float) -> int:
    return max(0, min(8, 5 - math.floor(math.log10(price)))) if price > 0 else 2


class Binance:
    """Handlers for the Binance routes; ``limits`` holds the venue's page sizes and retention."""

    def __init__(self, data: MarketData, limits: VenueLimits) -> None:
        self.data = data
        self.limits = limits

    def routes(self) -> list[web.RouteDef]:
        """The routes this venue serves."""
        return [
            web.get("/fapi/v1/ping", self.ping),
            web.get("/fapi/v1/time", self.time),
            web.get("/fapi/v1/exchangeInfo", self.exchange_info),
            web.get("/fapi/v1/klines", self.klines),
            web.get("/fapi/v1/fundingRate", self.funding_rate),
            web.get("/fapi/v1/premiumIndex", self.premium_index),
            web.get("/fapi/v1/fundingInfo", self.funding_info),
            web.get("/futures/data/openInterestHist", self.open_interest_hist),
            web.get("/fapi/v1/depth", self.depth),
            web.get("/fapi/v1/markPriceKlines", self.mark_price_klines),
        ]

    def _ctx(self, request: web.Request) -> RequestContext:
        return request[CONTEXT]

    def _base(self, request: web.Request, required: bool = True) -> str | None:
        symbol = request.query.get("symbol")
        if symbol is None:
            if required:
                raise BinanceError(
                    -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
                )
            return None
        base = self.data.base_of(VENUE, symbol)
        if base is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return base

    async def ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": self._ctx(request).now_ms})

    async def exchange_info(self, request: web.Request) -> web.Response:
        now = self._ctx(request).now_ms
        symbols = []
        for market_id, base in self.data.listed(VENUE).items():
            c = self.data.candles(VENUE, base)
            if len(c) == 0 or c.ts[0] > now:
                continue
            symbols.append(self._symbol_info(market_id, base, c))
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": now,
                "futuresType": "U_MARGINED",
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": 2400,
                    },
                    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                ],
                "exchangeFilters": [],
                "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
                "symbols": symbols,
            }
        )

    def _symbol_info(self, market_id: str, base: str, c: Series) -> dict[str, Any]:
        decimals = _price_decimals(float(c.values[0, 3]))
        tick = f"{10.0**-decimals:.{decimals}f}" if decimals else "1"
        return {
            "symbol": market_id,
            "pair": market_id,
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": int(c.ts[0]),
            "status": "TRADING",
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": market_id[: -len("USDT")],
            "quoteAsset": "USDT",
            "marginAsset": "USDT",
            "pricePrecision": decimals,
            "quantityPrecision": 3,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "triggerProtect": "0.0500",
            "liquidationFee": "0.012500",
            "marketTakeBound": "0.05",
            "maxMoveOrderLimit": 10000,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "4529764", "tickSize": tick},
                {"filterType": "LOT_SIZE", "stepSize": "0.001", "maxQty": "1000", "minQty": "0.001"},
                {"filterType": "MARKET_LOT_SIZE", "stepSize": "0.001", "maxQty": "120", "minQty": "0.001"},
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MIN_NOTIONAL", "notional": "5"},
                {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500"},
            ],
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
            "permissionSet": ["GRID", "COPY"],
        }

    async def klines(self, request: web.Request) -> web.Response:
        ctx = self._ctx(request)
        base = self._base(request)
        assert base is not None
        if request.query.get("interval") != "1h":
            raise BinanceError(-1120, "Invalid interval.")
        limit = _limit(request, 500, self.limits.binance_klines)
        start, end = _int_param(request, "startTime"), _int_param(request, "endTime")
        c = self.data.candles(VENUE, base)
        lo, hi = _first_page(*c.window(start, end, ctx.now_ms), start, end, limit)
        rows = c.candle_rows(lo, hi, ctx.now_ms)
        return web.json_response([_kline(r) for r in ctx.mangle(rows)])

    async def funding_rate(self, request: web.Request) -> web.Response:
        ctx = self._ctx(request)
        base = self._base(request, required=False)
        limit = _limit(request, 100, self.limits.binance_funding)
        start, end = _int_param(request, "startTime"), _int_param(request, "endTime")
        bases = [base] if base else list(self.data.listed(VENUE).values())
        rows: list[tuple[int, str, float, str]] = []
        for b in bases:
            f = self.data.funding(VENUE, b)
            if f is None:
                continue
            lo, hi = _first_page(*f.window(start, end, ctx.now_ms), start, end, limit)
            market_id = self.data.venue_id(VENUE, b)
            rows += [
                (int(f.ts[i]), market_id, float(f.values[i, 0]), self._mark_at(b, int(f.ts[i])))
                for i in range(lo, hi)
            ]
        rows.sort(key=lambda r: r[0])
        rows = rows[:limit] if start is not None else rows[-limit:]
        out = [
            {"symbol": s, "fundingTime": t, "fundingRate": num(rate), "markPrice": m}
            for t, s, rate, m in ctx.mangle(rows)
        ]
        return web.json_response(out)

    def _mark_at(self, base: str, t_ms: int) -> str:
        """The close of the hour that ends at a print: the price the venue records with it."""
        c = self.data.candles(VENUE, base)
        i = c.upto(t_ms - t_ms % HOUR_MS - HOUR_MS) - 1
        return num(c.values[i, 3]) if i >= 0 else ""

    async def premium_index(self, request: web.Request) -> web.Response:
        ctx = self._ctx(request)
        base = self._base(request, required=False)
        bases = [base] if base else list(self.data.listed(VENUE).values())
        out = [row for b in bases if (row := self._premium_row(b, ctx.now_ms)) is not None]
        if base is not None:
            if not out:
                raise BinanceError(-1121, "Invalid symbol.")
            return web.json_response(out[0])
        return web.json_response(out)

    def _premium_row(self, base: str, now_ms: int) -> dict[str, Any] | None:
        mark = self.data.mark_price(VENUE, base, now_ms)
        nxt = self.data.next_funding(VENUE, base, now_ms)
        if mark is None:
            return None
        next_time, rate, _ = nxt if nxt is not None else (0, 0.0, 8)
        price = mark[0]
        return {
            "symbol": self.data.venue_id(VENUE, base),
            "markPrice": num(price),
            "indexPrice": num(round(price * 0.9999, 8)),
            "estimatedSettlePrice": num(round(price * 0.99995, 8)),
            "lastFundingRate": num(round(rate, 8)),
            "interestRate": "0.00010000",
            "nextFundingTime": next_time,
            "time": now_ms,
        }

    async def funding_info(self, request: web.Request) -> web.Response:
        now = self._ctx(request).now_ms
        out = []
        for market_id, base in self.data.listed(VENUE).items():
            nxt = self.data.next_funding(VENUE, base, now)
            if nxt is None or nxt[2] == 8:
                continue  # Binance lists only the symbols it has adjusted
            out.append(
                {
                    "symbol": market_id,
                    "adjustedFundingRateCap": "0.02000000",
                    "adjustedFundingRateFloor": "-0.02000000",
                    "fundingIntervalHours": nxt[2],
                    "disclaimer": False,
                }
            )
        return web.json_response(out)

    async def open_interest_hist(self, request: web.Request) -> web.Response:
        ctx = self._ctx(request)
        base = self._base(request)
        assert base is not None
        period = request.query.get("period")
        if period not in _OI_PERIOD_HOURS:
            raise _bad_param("period")
        limit = _limit(request, 30, self.limits.binance_open_interest)
        start, end = _int_param(request, "startTime"), _int_param(request, "endTime")
        oldest = ctx.now_ms - self.limits.binance_open_interest_days * 24 * HOUR_MS
        if start is not None and start < oldest:
            raise BinanceError(-1130, "parameter 'startTime' is invalid.")
        s = self.data.open_interest(VENUE, base)
        if s is None:
            return web.json_response([])
        lo, hi = s.window(max(start or oldest, oldest), end, ctx.now_ms)
        step = _OI_PERIOD_HOURS[period] * HOUR_MS
        rows = [
            (int(s.ts[i]), float(s.values[i, 0]), float(s.values[i, 1]))
            for i in range(lo, hi)
            if s.ts[i] % step == 0
        ]
        rows = rows[-limit:]  # end-anchored: a short page holds the newest rows of the window
        market_id = self.data.venue_id(VENUE, base)
        out = [
            {
                "symbol": market_id,
                "sumOpenInterest": num(oi),
                "sumOpenInterestValue": num(value),
                "CMCCirculatingSupply": "0",
                "timestamp": t,
            }
            for t, oi, value in ctx.mangle(rows)
        ]
        return web.json_response(out)

    async def depth(self, request: web.Request) -> web.Response:
        """The order book around the mark price now (freqtrade prices entries and exits from it): ``limit``
        levels a tick apart on each side, 1 unit of the base asset each."""
        ctx = self._ctx(request)
        base = self._base(request)
        assert base is not None
        limit = _limit(request, 500, 1000)
        if limit not in _DEPTH_LIMITS:
            raise _bad_param("limit")
        mark = self.data.mark_price(VENUE, base, ctx.now_ms)
        if mark is None:
            raise BinanceError(-1121, "Invalid symbol.")
        decimals = _price_decimals(mark[0])
        tick = 10.0**-decimals
        mid = round(mark[0], decimals)
        bids = [[f"{mid - tick * i:.{decimals}f}", "1.000"] for i in range(1, limit + 1)]
        asks = [[f"{mid + tick * i:.{decimals}f}", "1.000"] for i in range(1, limit + 1)]
        now = ctx.now_ms
        return web.json_response({"lastUpdateId": now, "E": now, "T": now, "bids": bids, "asks": asks})

    async def mark_price_klines(self, request: web.Request) -> web.Response:
        """Mark-price candles (the fake's mark is its last price): 1 h rows, or whole hours aggregated to
        the interval (freqtrade reads 8 h ones for the funding fees of a futures exit); volumes are 0."""
        ctx = self._ctx(request)
        base = self._base(request)
        assert base is not None
        hours = _MARK_INTERVAL_HOURS.get(request.query.get("interval", ""))
        if hours is None:
            raise BinanceError(-1120, "Invalid interval.")
        limit = _limit(request, 500, self.limits.binance_klines)
        start, end = _int_param(request, "startTime"), _int_param(request, "endTime")
        c = self.data.candles(VENUE, base)
        step = hours * HOUR_MS
        lo_ms = None if start is None else start - start % step
        lo, hi = c.window(lo_ms, end, ctx.now_ms)
        rows = _aggregate(c.candle_rows(lo, hi, ctx.now_ms), step)
        rows = rows[:limit] if start is not None else rows[-limit:]
        return web.json_response([_kline((*r[:5], 0.0, 0.0), step) for r in rows])


def _aggregate(rows: list[tuple[float, ...]], step: int) -> list[tuple[float, ...]]:
    """Hourly (ts, o, h, l, c, …) rows as ``step``-ms candles aligned to the epoch."""
    if step == HOUR_MS:
        return rows
    out: list[tuple[float, ...]] = []
    for r in rows:
        t = int(r[0]) - int(r[0]) % step
        if out and out[-1][0] == t:
            o, h, lo, _ = out[-1][1:5]
            out[-1] = (t, o, max(h, r[2]), min(lo, r[3]), r[4])
        else:
            out.append((t, *r[1:5]))
    return out


def _kline(r: tuple[Any, ...], step: int = HOUR_MS) -> list[Any]:
    t, o, h, lo, c, v, qv = r
    trades = int(qv // 2000) + 1
    return [
        t,
        num(o),
        num(h),
        num(lo),
        num(c),
        num(v),
        t + step - 1,
        num(qv),
        trades,
        num(v / 2),
        num(qv / 2),
        "0",
    ]
