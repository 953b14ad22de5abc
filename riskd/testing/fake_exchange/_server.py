"""The loopback fake exchange: one aiohttp server answering as Binance, Bybit, Hyperliquid and OKX.

The venues' paths do not overlap, so one base URL serves all three and the venue is read from
the path. A middleware applies the clock and the fault switches around every venue handler and
records each answer; ``/_control/*`` routes let a CLI user or another process flip them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeAlias

import pandas as pd
from aiohttp import web

from riskd.sources.symbols import base_of as symbol_base
from riskd.testing.fake_exchange._binance import Binance
from riskd.testing.fake_exchange._bybit import Bybit
from riskd.testing.fake_exchange._faults import (
    ERROR_KINDS,
    HOUR_MS,
    Fault,
    FaultKind,
    FaultSet,
    RequestLog,
    RequestRecord,
    faults_from_json,
)
from riskd.testing.fake_exchange._hyperliquid import Hyperliquid, read_info_body
from riskd.testing.fake_exchange._market import CONTEXT, MarketData, RequestContext, VenueError, VenueLimits
from riskd.testing.fake_exchange._okx import PREFIX as OKX_PREFIX
from riskd.testing.fake_exchange._okx import Okx
from riskd.testing.fake_exchange._responses import error_response, malformed_response
from riskd.testing.fake_exchange._ws import WS_PREFIX, WsHub
from riskd.testing.fake_exchange._ws_binance import routes as binance_ws_routes
from riskd.testing.fake_exchange._ws_bybit import routes as bybit_ws_routes
from riskd.testing.synthetic import MarketHistory, to_utc

ClockLike: TypeAlias = datetime | pd.Timestamp | str | int | Callable[[], Any] | None

_BINANCE_PREFIXES = ("/fapi/", "/futures/data/", "/api/", "/sapi/", "/dapi/", "/eapi/", "/papi/")


def venue_of(path: str) -> str:
    """Which venue a request path belongs to ("unknown" for anything else)."""
    if path.startswith(OKX_PREFIX):  # before Binance's "/api/"
        return "okx"
    if path.startswith(_BINANCE_PREFIXES):
        return "binance"
    if path.startswith("/v5/"):
        return "bybit"
    if path == "/info":
        return "hyperliquid"
    return "unknown"


def _to_ms(value: Any) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return to_utc(value).value // 1_000_000  # .value is in ns whatever the unit


class FakeExchange:
    """Serves a MarketHistory on 127.0.0.1 the way the three venues' REST APIs do.

    ``async with FakeExchange(history) as fx`` (or ``fx.start_in_thread()`` … ``fx.stop()`` from
    sync code), then point ccxt at ``fx.base_url`` with ``riskd.sources.endpoints.api_urls``.
    ``now`` is the simulated clock (default: the end of the history, every candle closed).
    """

    def __init__(
        self,
        history: MarketHistory,
        *,
        now: ClockLike = None,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0.0,
        seed: int = 0,
        limits: VenueLimits | None = None,
        aliases: dict[str, str] | None = None,
        log_size: int = 100_000,
    ) -> None:
        self.history = history
        self.data = MarketData(history, aliases)
        self.limits = limits or VenueLimits()
        self.host, self.port = host, port
        self.latency_ms = latency_ms
        self.faults = FaultSet(seed)
        self.log = RequestLog(log_size)
        self.ws = WsHub()
        self._clock: Callable[[], int] = lambda: 0
        self.now = now
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # --- the clock ---------------------------------------------------------------------------
    @property
    def now(self) -> pd.Timestamp:
        """The simulated time the venues answer at."""
        return pd.Timestamp(self._clock(), unit="ms", tz="UTC")

    @now.setter
    def now(self, value: ClockLike) -> None:
        """Fix the clock (a time), make it live (a callable returning a time), or reset it (None)."""
        if value is None:
            fixed = _to_ms(self.history.end)
            self._clock = lambda: fixed
        elif callable(value):
            clock = value
            self._clock = lambda: _to_ms(clock())
        else:
            fixed = _to_ms(value)
            self._clock = lambda: fixed

    def now_ms(self) -> int:
        """The simulated time in ms since the epoch."""
        return self._clock()

    def advance(self, hours: float = 1.0) -> pd.Timestamp:
        """Move a fixed clock forward (a daemon test's "one hour later")."""
        self.now = self.now_ms() + int(hours * HOUR_MS)
        return self.now

    # --- faults and the log ------------------------------------------------------------------
    def inject(self, kind: FaultKind, **fields: Any) -> Fault:
        """Switch a fault on, e.g. ``fx.inject("rate_limit", venue="binance", times=2)``."""
        return self.faults.add(Fault(kind=kind, **fields))

    def clear_faults(self) -> None:
        """Switch every fault off."""
        self.faults.clear()

    def count(
        self,
        venue: str | None = None,
        path: str | None = None,
        status: int | None = None,
        fault: str | None = None,
    ) -> int:
        """Requests answered so far that match every filter given (``path`` as a substring)."""
        return self.log.count(venue, path, status, fault)

    @property
    def requests(self) -> list[RequestRecord]:
        """The most recent requests, oldest first."""
        return list(self.log.records)

    # --- lifecycle -----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://host:port`` once started."""
        if self._runner is None:
            raise RuntimeError("the fake exchange is not running")
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment variables pointing riskd's venues at this server."""
        return {
            f"RISKD_VENUES__{v.upper()}__API_URL": self.base_url
            for v in ("binance", "bybit", "hyperliquid", "okx")
        }

    async def start(self) -> FakeExchange:
        """Bind and serve on the running loop (port 0 picks a free port)."""
        self._closing = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        app = web.Application(middlewares=[self._middleware], client_max_size=1 << 20)
        for venue in (Binance, Bybit, Hyperliquid, Okx):
            app.add_routes(venue(self.data, self.limits).routes())
        app.add_routes(self._control_routes())
        app.add_routes([*binance_ws_routes(self.ws), *bybit_ws_routes(self.ws)])
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self

    async def close(self) -> None:
        """Release held requests, stop serving and free the port."""
        if self._closing is not None:
            self._closing.set()
        if self._runner is not None:
            await self.ws.close_all()
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeExchange:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start_in_thread(self) -> FakeExchange:
        """Serve from a background thread with its own loop, for sync code (benchmarks, demo)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start())
            except BaseException as err:  # surfaced to the caller below
                failure.append(err)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.close())
            loop.close()

        self._thread = threading.Thread(target=run, name="riskd-fake-exchange", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop a server started with ``start_in_thread``."""
        if self._thread is None or self._loop is None:
            return
        loop = self._loop
        if self._closing is not None:
            loop.call_soon_threadsafe(self._closing.set)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> FakeExchange:
        return self.start_in_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the middleware ------------------------------------------------------------------------
    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if request.path.startswith(("/_control/", WS_PREFIX)):
            return await handler(request)
        started = time.perf_counter()
        venue = venue_of(request.path)
        endpoint, symbol, status = request.path, None, 500
        fired: list[Fault] = []
        try:
            endpoint, symbol = await self._describe(request, venue)
            fired = self.faults.take(venue, endpoint, symbol)
            try:
                response = await self._answer(request, handler, venue, fired)
            except VenueError as err:
                response = err.response
            status = response.status
            return response
        except web.HTTPException as err:  # aiohttp's own 404/405 for paths no venue serves
            status = err.status
            raise
        finally:
            shaped = next((f.kind for f in fired if f.kind != "latency"), None)
            elapsed = (time.perf_counter() - started) * 1000
            self.log.add(RequestRecord(venue, endpoint, symbol, status, shaped, elapsed))

    async def _describe(self, request: web.Request, venue: str) -> tuple[str, str | None]:
        """(endpoint, base asset) of a request, for fault scopes and the log."""
        if venue == "hyperliquid":
            try:
                body = await read_info_body(request)
            except VenueError:
                return request.path, None
            req = body.get("req")
            coin = body.get("coin") or (req.get("coin") if isinstance(req, dict) else None)
            return f"/info:{body['type']}", self.data.base_of(venue, coin)
        raw = request.query.get("symbol") or request.query.get("instId")
        base = self.data.base_of(venue, raw) or (symbol_base(raw) if raw else None)
        return request.path, base

    async def _answer(
        self, request: web.Request, handler: Callable[[web.Request], Any], venue: str, fired: list[Fault]
    ) -> web.StreamResponse:
        delay = self.latency_ms + sum(f.latency_ms for f in fired if f.kind == "latency")
        if delay > 0:
            await self._hold(delay / 1000)
        for f in fired:
            if f.kind == "timeout":
                await self._hold(f.seconds)
            elif f.kind == "hang":
                await self._hold(None)
        error = next((f for f in fired if f.kind in ERROR_KINDS), None)
        if error is not None:
            return error_response(error, venue, self.now_ms())
        request[CONTEXT] = self._context(fired)
        response = await handler(request)
        malformed = next((f for f in fired if f.kind == "malformed"), None)
        if malformed is not None and isinstance(response, web.Response):
            return await malformed_response(request, response, malformed)
        return response

    def _context(self, fired: list[Fault]) -> RequestContext:
        behind = sum(f.behind_hours for f in fired if f.kind == "stale")
        drop = frozenset(h for f in fired if f.kind == "missing" for h in (f.hours or ()))
        dup = [f for f in fired if f.kind == "duplicate"]
        dup_hours = frozenset(h for f in dup for h in (f.hours or ()))
        return RequestContext(
            now_ms=self.now_ms() - int(behind * HOUR_MS),
            drop_hours=drop,
            duplicate_hours=dup_hours or None,
            duplicate_edges=any(f.hours is None for f in dup),
            faults=[f.kind for f in fired],
        )

    async def _hold(self, seconds: float | None) -> None:
        """Sleep (None: until shutdown), but wake at once when the server shuts down (so tests never wait
        on a hold)."""
        if self._closing is None:
            await asyncio.sleep(3600.0 if seconds is None else seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)

    # --- control ---------------------------------------------------------------------------------
    def _control_routes(self) -> Sequence[web.RouteDef]:
        return [
            web.get("/_control/faults", self._list_faults),
            web.post("/_control/faults", self._add_faults),
            web.delete("/_control/faults", self._clear_faults),
            web.get("/_control/clock", self._get_clock),
            web.post("/_control/clock", self._set_clock),
            web.get("/_control/stats", self._stats),
            web.post("/_control/reset", self._reset),
        ]

    async def _list_faults(self, request: web.Request) -> web.Response:
        return web.json_response([f.to_dict() for f in self.faults.active()])

    async def _add_faults(self, request: web.Request) -> web.Response:
        try:
            added = [self.faults.add(f) for f in faults_from_json(await request.json())]
        except (ValueError, TypeError) as err:
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response([f.to_dict() for f in added])

    async def _clear_faults(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return web.json_response({"cleared": True})

    async def _get_clock(self, request: web.Request) -> web.Response:
        return web.json_response({"now": self.now.isoformat(), "now_ms": self.now_ms()})

    async def _set_clock(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            value = body.get("now") if isinstance(body, dict) else None
            self.now = (lambda: pd.Timestamp.now("UTC")) if value == "wall" else value
        except (ValueError, TypeError) as err:
            return web.json_response({"error": str(err)}, status=400)
        return await self._get_clock(request)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.log.totals())

    async def _reset(self, request: web.Request) -> web.Response:
        self.faults.clear()
        self.log.clear()
        return web.json_response({"reset": True})
