"""OKX v5 public endpoints (USDT-margined swaps), as ``ccxt.okx`` calls them.

Every answer is ``{"code": "0", "msg": "", "data": [...]}``; errors keep HTTP 200 with a non-zero
``code`` (``51001`` unknown instrument, ``51000`` bad parameter), as on the venue. Time bounds are
exclusive (``before``/``after`` for funding, ``begin``/``end`` for open interest) and pages are the
*newest* ``limit`` rows of the window, newest first: a client paging forward from its start without
splitting full pages loses rows, as on OKX.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from riskd.testing.fake_exchange._market import (
    CONTEXT,
    HOUR_MS,
    MarketData,
    Series,
    VenueError,
    VenueLimits,
    num,
    parse_int,
)

VENUE = "okx"
PREFIX = "/api/v5/"
_CONTRACT_VALUE = 0.01  # base units per contract (ctVal), one value for every swap here
_OI_PERIODS = {"1H": 1, "1D": 24}


class OkxError(VenueError):
    """OKX's error answer: HTTP 200 with a non-zero ``code``."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg, web.json_response({"code": code, "msg": msg, "data": []}))


def _ok(data: list[Any]) -> web.Response:
    return web.json_response({"code": "0", "msg": "", "data": data})


class Okx:
    """Handlers for the OKX routes."""

    def __init__(self, data: MarketData, limits: VenueLimits) -> None:
        self.data = data
        self.limits = limits

    def routes(self) -> list[web.RouteDef]:
        """The routes this venue serves."""
        return [
            web.get("/api/v5/public/time", self.time),
            web.get("/api/v5/public/instruments", self.instruments),
            web.get("/api/v5/public/funding-rate-history", self.funding_history),
            web.get("/api/v5/public/funding-rate", self.funding_rate),
            web.get("/api/v5/rubik/stat/contracts/open-interest-history", self.open_interest_history),
        ]

    def _int(self, request: web.Request, name: str) -> int | None:
        try:
            return parse_int(request.query.get(name))
        except ValueError:
            raise OkxError("51000", f"Parameter {name} error") from None

    def _limit(self, request: web.Request, maximum: int) -> int:
        limit = self._int(request, "limit")
        if limit is None:
            return maximum
        if not 1 <= limit <= maximum:
            raise OkxError("51000", "Parameter limit error")
        return limit

    def _base(self, request: web.Request) -> str:
        base = self.data.base_of(VENUE, request.query.get("instId"))
        if base is None:
            raise OkxError("51001", "Instrument ID does not exist")
        return base

    @staticmethod
    def _newest(s: Series, after_lo: int | None, before_hi: int | None, now_ms: int, limit: int) -> range:
        """Rows stamped strictly inside (after_lo, before_hi), not after now: the newest ``limit``."""
        lo, hi = s.window(
            None if after_lo is None else after_lo + 1, None if before_hi is None else before_hi - 1, now_ms
        )
        return range(max(lo, hi - limit), hi)

    async def time(self, request: web.Request) -> web.Response:
        return _ok([{"ts": str(request[CONTEXT].now_ms)}])

    async def instruments(self, request: web.Request) -> web.Response:
        now = request[CONTEXT].now_ms
        kind = request.query.get("instType")
        if kind not in ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"):
            raise OkxError("51000", "Parameter instType error")
        items = []
        if kind == "SWAP":
            for inst_id, base in self.data.listed(VENUE).items():
                c = self.data.candles(VENUE, base)
                if len(c) and c.ts[0] <= now:
                    items.append(self._instrument(inst_id, int(c.ts[0])))
        return _ok(items)

    @staticmethod
    def _instrument(inst_id: str, listed_ms: int) -> dict[str, Any]:
        family = inst_id.removesuffix("-SWAP")
        return {
            "instType": "SWAP",
            "instId": inst_id,
            "uly": family,
            "instFamily": family,
            "category": "1",
            "baseCcy": "",
            "quoteCcy": "",
            "settleCcy": "USDT",
            "ctVal": num(_CONTRACT_VALUE),
            "ctMult": "1",
            "ctValCcy": family.split("-")[0],
            "ctType": "linear",
            "optType": "",
            "stk": "",
            "alias": "",
            "listTime": str(listed_ms),
            "contTdSwTime": str(listed_ms),
            "expTime": "",
            "lever": "100",
            "tickSz": "0.0001",
            "lotSz": "1",
            "minSz": "1",
            "maxLmtSz": "100000000",
            "maxMktSz": "10000",
            "state": "live",
            "ruleType": "normal",
        }

    async def funding_history(self, request: web.Request) -> web.Response:
        ctx = request[CONTEXT]
        base = self._base(request)
        limit = self._limit(request, self.limits.okx_funding)
        f = self.data.funding(VENUE, base)
        rows: list[tuple[int, float]] = []
        if f is not None:
            span = self._newest(
                f, self._int(request, "before"), self._int(request, "after"), ctx.now_ms, limit
            )
            rows = [(int(f.ts[i]), float(f.values[i, 0])) for i in span]
        inst_id = self.data.venue_id(VENUE, base)
        out = [
            {
                "instType": "SWAP",
                "instId": inst_id,
                "formulaType": "noRate",
                "method": "current_period",
                "fundingRate": num(r),
                "realizedRate": num(r),
                "fundingTime": str(t),
            }
            for t, r in ctx.mangle(rows)
        ]
        out.reverse()  # newest first
        return _ok(out)

    async def funding_rate(self, request: web.Request) -> web.Response:
        now = request[CONTEXT].now_ms
        wanted = request.query.get("instId")
        if not wanted:
            raise OkxError("50014", "Parameter instId can not be empty")
        out = []
        for inst_id, base in self.data.listed(VENUE).items():
            if wanted != "ANY" and inst_id != wanted:
                continue
            nxt = self.data.next_funding(VENUE, base, now)
            if nxt is None:
                continue
            when, rate, hours = nxt
            out.append(
                {
                    "instType": "SWAP",
                    "instId": inst_id,
                    "method": "current_period",
                    "formulaType": "noRate",
                    "fundingRate": num(round(rate, 8)),
                    "fundingTime": str(when),
                    "nextFundingRate": "",
                    "nextFundingTime": str(when + hours * HOUR_MS),
                    "interestRate": "0",
                    "premium": "0",
                    "impactValue": "",
                    "settState": "settled",
                    "settFundingRate": num(round(rate, 8)),
                    "minFundingRate": "-0.02",
                    "maxFundingRate": "0.02",
                    "ts": str(now),
                }
            )
        if wanted != "ANY" and not out:
            raise OkxError("51001", "Instrument ID does not exist")
        return _ok(out)

    async def open_interest_history(self, request: web.Request) -> web.Response:
        ctx = request[CONTEXT]
        base = self._base(request)
        step_h = _OI_PERIODS.get(request.query.get("period", ""))
        if step_h is None:
            raise OkxError("51000", "Parameter period error")
        limit = self._limit(request, self.limits.okx_open_interest)
        s = self.data.open_interest(VENUE, base)
        rows: list[tuple[int, float, float]] = []
        if s is not None:
            begin, end = self._int(request, "begin"), self._int(request, "end")
            lo, hi = s.window(
                None if begin is None else begin + 1, None if end is None else end - 1, ctx.now_ms
            )
            step = step_h * HOUR_MS
            kept = [i for i in range(lo, hi) if s.ts[i] % step == 0][-limit:]
            rows = [(int(s.ts[i]), float(s.values[i, 0]), float(s.values[i, 1])) for i in kept]
        out = [
            [str(t), num(round(oi / _CONTRACT_VALUE, 2)), num(oi), num(value)]
            for t, oi, value in ctx.mangle(rows)
        ]
        out.reverse()  # newest first
        return _ok(out)
