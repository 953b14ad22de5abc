"""Binance USDT-M ``fstream`` as ccxt.pro's ``binanceusdm`` reaches it: ``<ws base>/market/ws/<n>``.

Subscriptions are ``{"method": "SUBSCRIBE", "params": [...], "id": n}`` answered ``{"result": null,
"id": n}``. Streams served: ``!forceOrder@arr`` and ``<symbol>@forceOrder`` (forced orders) and
``<symbol>@kline_1m`` (1-minute candles, ``x`` true once closed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from riskd.testing.fake_exchange._ws import WS_PREFIX, Bar, Conn, Liquidation, WsHub

PATH = f"{WS_PREFIX}/binance"
"""Give ccxt ``urls['api']['ws']['linear'] = <server>/_ws/binance/ws``; it adds ``/market`` itself."""


def frames(
    conn: Conn, bars: Sequence[tuple[str, Bar]], liqs: Sequence[Liquidation], closed: bool
) -> list[str]:
    """The frames of ``bars`` and ``liqs`` this connection subscribed to."""
    out = []
    for liq in liqs:
        if "!forceOrder@arr" in conn.topics or f"{liq.symbol.lower()}@forceOrder" in conn.topics:
            out.append(
                json.dumps(
                    {
                        "e": "forceOrder",
                        "E": liq.ts_ms + 2,
                        "o": {
                            "s": liq.symbol,
                            "S": liq.side.upper(),
                            "o": "LIMIT",
                            "f": "IOC",
                            "q": f"{liq.qty}",
                            "p": f"{liq.price}",
                            "ap": f"{liq.price}",
                            "X": "FILLED",
                            "l": f"{liq.qty}",
                            "z": f"{liq.qty}",
                            "T": liq.ts_ms,
                        },
                    }
                )
            )
    for symbol, bar in bars:
        if f"{symbol.lower()}@kline_1m" not in conn.topics:
            continue
        out.append(
            json.dumps(
                {
                    "e": "kline",
                    "E": bar.open_ms + 60_000,
                    "s": symbol,
                    "k": {
                        "t": bar.open_ms,
                        "T": bar.open_ms + 59_999,
                        "s": symbol,
                        "i": "1m",
                        "o": f"{bar.open}",
                        "c": f"{bar.close}",
                        "h": f"{bar.high}",
                        "l": f"{bar.low}",
                        "v": f"{bar.volume}",
                        "n": 1,
                        "x": closed,
                        "q": f"{bar.volume * bar.close}",
                    },
                }
            )
        )
    return out


def _control(conn: Conn, msg: Any) -> list[str]:
    if isinstance(msg, dict) and msg.get("method") == "SUBSCRIBE":
        conn.topics.update(str(p) for p in msg.get("params", []))
        return [json.dumps({"result": None, "id": msg.get("id")})]
    if isinstance(msg, dict) and msg.get("method") == "UNSUBSCRIBE":
        conn.topics.difference_update(str(p) for p in msg.get("params", []))
        return [json.dumps({"result": None, "id": msg.get("id")})]
    return []


def routes(hub: WsHub) -> list[web.RouteDef]:
    """The websocket route (any stream index) and the hub registration."""
    hub.formatters["binance"] = frames

    async def handler(request: web.Request) -> web.WebSocketResponse:
        return await hub.serve("binance", request, _control)

    return [web.get(PATH + "/market/ws/{n}", handler), web.get(PATH + "/public/ws/{n}", handler)]
