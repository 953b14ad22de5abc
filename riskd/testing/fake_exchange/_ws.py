"""The fake exchange's websocket side: a hub of connected ccxt.pro clients and a scripted minute path.

Tests and the demo push minutes (1-minute bars per symbol, liquidations) with :meth:`WsHub.push_minute`;
each venue module (``_ws_binance``, ``_ws_bybit``) turns them into its own frames for the connections
subscribed to them. The path is scripted, not clocked: whoever pushes decides what time it is.

Faults, per venue: :meth:`disconnect` (the server closes every connection), :meth:`stall` (connections
stay open and answer pings but receive nothing until :meth:`resume`), ``malformed`` (the next frames
are not JSON or have unreadable fields), and ``duplicate`` / ``out_of_order`` pushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from aiohttp import WSMsgType, web

WS_PREFIX = "/_ws"


@dataclass(frozen=True)
class Bar:
    """One 1-minute bar: open time (ms), OHLC, base volume."""

    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True)
class Liquidation:
    """One forced order: ``side`` sell liquidates a long, buy a short; ``ts_ms`` its trade time."""

    symbol: str
    side: str
    price: float
    qty: float
    ts_ms: int


@dataclass
class Conn:
    """One connected client: its venue, socket and subscribed topics."""

    venue: str
    ws: web.WebSocketResponse
    topics: set[str] = field(default_factory=set)


Formatter = Callable[[Conn, Sequence[tuple[str, Bar]], Sequence[Liquidation], bool], list[str]]
"""(connection, bars by venue symbol id, liquidations, bars closed?) → the frames it subscribed to."""


class WsHub:
    """Connections and faults of the websocket venues (see the module docstring)."""

    def __init__(self) -> None:
        self.conns: list[Conn] = []
        self.stalled: set[str] = set()
        self.malformed: dict[str, int] = {}
        self.connects: dict[str, int] = {}
        self.frames_sent: dict[str, int] = {}
        self.formatters: dict[str, Formatter] = {}
        self.latency_s = 0.0

    def connected(self, venue: str) -> int:
        """Open connections of ``venue`` that subscribed to something."""
        return sum(1 for c in self.conns if c.venue == venue and c.topics and not c.ws.closed)

    async def wait_connected(self, venue: str, count: int = 1, within_s: float = 10.0) -> None:
        """Wait until ``venue`` has ``count`` subscribed connections."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while self.connected(venue) < count:
            if loop.time() > deadline:
                raise TimeoutError(f"{venue}: {self.connected(venue)} of {count} ws connections subscribed")
            await asyncio.sleep(0.01)

    async def serve(
        self, venue: str, request: web.Request, on_text: Callable[[Conn, Any], list[str]]
    ) -> web.WebSocketResponse:
        """Run one connection: answer its control frames with ``on_text`` until either side closes."""
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        conn = Conn(venue, ws)
        self.conns.append(conn)
        self.connects[venue] = self.connects.get(venue, 0) + 1
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                with contextlib.suppress(ValueError):
                    for reply in on_text(conn, json.loads(msg.data)):
                        if venue not in self.stalled:
                            await ws.send_str(reply)
        finally:
            with contextlib.suppress(ValueError):
                self.conns.remove(conn)
        return ws

    async def push_minute(
        self,
        minute: pd.Timestamp | int,
        bars: dict[str, tuple[float, float, float, float, float]] | None = None,
        liquidations: Sequence[Liquidation] = (),
        *,
        duplicate: bool = False,
        out_of_order: bool = False,
        partial: bool = True,
        closed: bool = True,
    ) -> None:
        """Send one minute: ``bars`` (venue symbol id like BTCUSDT → o, h, l, c, v) as closed 1-minute
        candles, and ``liquidations``. ``partial`` first sends an unclosed update of each bar (as venues
        do mid-minute); ``duplicate`` sends every frame twice; ``out_of_order`` sends the liquidations
        newest first and after the closed bars. ``closed`` False sends only the unclosed bar updates
        and the liquidations (a venue's updates within the minute). ``latency_s`` delays a closed
        minute's frames, as a network would."""
        if closed and self.latency_s:
            await asyncio.sleep(self.latency_s)
        open_ms = minute if isinstance(minute, int) else int(pd.Timestamp(minute).value // 1_000_000)
        candles = [(s, Bar(open_ms, *v)) for s, v in (bars or {}).items()]
        liqs = list(reversed(liquidations)) if out_of_order else list(liquidations)
        for conn in list(self.conns):
            if conn.venue in self.stalled or conn.ws.closed or not conn.topics:
                continue
            fmt = self.formatters[conn.venue]
            frames = fmt(conn, candles, [], False) if partial else []
            if not closed:
                frames += fmt(conn, [], liqs, True)
            elif out_of_order:
                frames += fmt(conn, candles, [], True) + fmt(conn, [], liqs, True)
            else:
                frames += fmt(conn, [], liqs, True) + fmt(conn, candles, [], True)
            for frame in frames:
                for _ in range(2 if duplicate else 1):
                    await self._send(conn, frame)

    async def _send(self, conn: Conn, frame: str) -> None:
        left = self.malformed.get(conn.venue, 0)
        if left:
            self.malformed[conn.venue] = left - 1
            frame = frame[: len(frame) // 2] if left % 2 else frame.replace('"', "'")
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await conn.ws.send_str(frame)
            self.frames_sent[conn.venue] = self.frames_sent.get(conn.venue, 0) + 1

    async def disconnect(self, venue: str) -> int:
        """Close every connection of ``venue`` from the server side; returns how many."""
        mine = [c for c in self.conns if c.venue == venue]
        for c in mine:
            with contextlib.suppress(Exception):  # a connection that closed itself meanwhile is fine
                await c.ws.close(code=1001, message=b"fake exchange: disconnect fault")
        return len(mine)

    def stall(self, venue: str) -> None:
        """Keep ``venue``'s connections open but send them nothing (pings are still answered)."""
        self.stalled.add(venue)

    def resume(self, venue: str) -> None:
        """End a stall."""
        self.stalled.discard(venue)

    def corrupt(self, venue: str, frames: int) -> None:
        """Make the next ``frames`` frames to ``venue`` malformed (cut short, or not JSON at all)."""
        self.malformed[venue] = frames

    async def close_all(self) -> None:
        """Close every connection (server shutdown)."""
        for venue in {c.venue for c in self.conns}:
            await self.disconnect(venue)
