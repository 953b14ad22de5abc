"""Bybit v5 public linear stream as ccxt.pro's ``bybit`` reaches it: ``<ws base>/v5/public/linear``.

Requests are ``{"op": "subscribe", "req_id": …, "args": [topics]}`` and ``{"op": "ping"}``. Topics
served: ``allLiquidation.<SYMBOL>`` and ``kline.1.<SYMBOL>`` (``confirm`` true once closed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from riskd.testing.fake_exchange._ws import WS_PREFIX, Bar, Conn, Liquidation, WsHub

PATH = f"{WS_PREFIX}/bybit/v5/public/linear"
"""Give ccxt ``urls['api']['ws']['public']['linear'] = <server>/_ws/bybit/v5/public/linear``."""


def frames(
    conn: Conn, bars: Sequence[tuple[str, Bar]], liqs: Sequence[Liquidation], closed: bool
) -> list[str]:
    """The frames of ``bars`` and ``liqs`` this connection subscribed to."""
    out = []
    for liq in liqs:
        topic = f"allLiquidation.{liq.symbol}"
        if topic in conn.topics:
            side = "Sell" if liq.side.lower() == "sell" else "Buy"
            out.append(
                json.dumps(
                    {
                        "topic": topic,
                        "type": "snapshot",
                        "ts": liq.ts_ms + 2,
                        "data": [
                            {
                                "T": liq.ts_ms,
                                "s": liq.symbol,
                                "S": side,
                                "v": f"{liq.qty}",
                                "p": f"{liq.price}",
                            }
                        ],
                    }
                )
            )
    for symbol, bar in bars:
        topic = f"kline.1.{symbol}"
        if topic not in conn.topics:
            continue
        out.append(
            json.dumps(
                {
                    "topic": topic,
                    "type": "snapshot",
                    "ts": bar.open_ms + 59_999,
                    "data": [
                        {
                            "start": bar.open_ms,
                            "end": bar.open_ms + 59_999,
                            "interval": "1",
                            "open": f"{bar.open}",
                            "close": f"{bar.close}",
                            "high": f"{bar.high}",
                            "low": f"{bar.low}",
                            "volume": f"{bar.volume}",
                            "turnover": f"{bar.volume * bar.close}",
                            "confirm": closed,
                            "timestamp": bar.open_ms + 59_999,
                        }
                    ],
                }
            )
        )
    return out


def _control(conn: Conn, msg: Any) -> list[str]:
    if not isinstance(msg, dict):
        return []
    op = msg.get("op")
    if op == "subscribe":
        conn.topics.update(str(a) for a in msg.get("args", []))
        return [
            json.dumps(
                {
                    "success": True,
                    "ret_msg": "",
                    "conn_id": "fake",
                    "req_id": msg.get("req_id"),
                    "op": "subscribe",
                }
            )
        ]
    if op == "ping":
        return [
            json.dumps(
                {
                    "success": True,
                    "ret_msg": "pong",
                    "conn_id": "fake",
                    "req_id": msg.get("req_id"),
                    "op": "ping",
                }
            )
        ]
    return []


def routes(hub: WsHub) -> list[web.RouteDef]:
    """The websocket route and the hub registration."""
    hub.formatters["bybit"] = frames

    async def handler(request: web.Request) -> web.WebSocketResponse:
        return await hub.serve("bybit", request, _control)

    return [web.get(PATH, handler)]
