"""The fake exchange's broken answers: rate limits, bans, gateway errors and bad bodies.

Each is shaped like what a client meets in the wild, so ccxt's own error mapping is exercised:
Binance's -1003 body on 429/418, Bybit's retCode 10006, OKX's code 50011, nginx's HTML page on 5xx.
"""

from __future__ import annotations

import math
from email.utils import formatdate

from aiohttp import web

from riskd.testing.fake_exchange._faults import Fault

_GATEWAY_PAGE = (
    "<html><head><title>{status} {reason}</title></head><body><center><h1>{status} {reason}</h1>"
    "</center><hr><center>nginx</center></body></html>"
)
_MAINTENANCE_PAGE = "<!DOCTYPE html><html><head><title>System maintenance</title></head><body>We'll be back soon.</body></html>"


def error_response(fault: Fault, venue: str, now_ms: int) -> web.Response:
    """The answer of a rate limit, ban or server error, in the venue's own words where it has any."""
    status = int(fault.status or 503)
    headers = {"Retry-After": _retry_after(fault, now_ms)} if fault.retry_after is not None else {}
    if fault.kind == "server_error":
        page = _GATEWAY_PAGE.format(status=status, reason=web.Response(status=status).reason)
        return web.Response(status=status, text=page, content_type="text/html", headers=headers)
    if venue == "binance":
        ban_ms = int((120.0 if fault.retry_after is None else fault.retry_after) * 1000)
        banned = f"IP(127.0.0.1) banned until {now_ms + ban_ms}"
        why = banned if fault.kind == "ban" else "request weight exceeded"
        msg = f"Too many requests; {why}. Please use the websocket for live updates to avoid polling the API."
        return web.json_response({"code": -1003, "msg": msg}, status=status, headers=headers)
    if venue == "bybit":
        body = {
            "retCode": 10006,
            "retMsg": "Too many visits!",
            "result": {},
            "retExtInfo": {},
            "time": now_ms,
        }
        return web.json_response(body, status=status, headers=headers)
    if venue == "okx":
        body = {"code": "50011", "msg": "Too Many Requests", "data": []}
        return web.json_response(body, status=status, headers=headers)
    return web.Response(status=status, text="Too Many Requests", headers=headers)


def _retry_after(fault: Fault, now_ms: int) -> str:
    """Retry-After in whole seconds (rounded up, as venues send it), or as an HTTP-date on the fake's clock."""
    seconds = float(fault.retry_after or 0.0)
    if fault.retry_after_date:
        return formatdate((now_ms / 1000) + seconds, usegmt=True)
    return str(math.ceil(seconds))


async def malformed_response(
    request: web.Request, response: web.Response, fault: Fault
) -> web.StreamResponse:
    """A 200 whose body breaks the JSON contract.

    ``truncated``: a complete answer holding half a JSON document; ``html``: a maintenance page;
    ``empty``: no body; ``cut``: the connection drops halfway through the promised Content-Length.
    """
    raw = bytes(response.body) if isinstance(response.body, bytes | bytearray) else b"{}"
    if fault.body == "html":
        return web.Response(status=200, text=_MAINTENANCE_PAGE, content_type="text/html")
    if fault.body == "empty":
        return web.Response(status=200, body=b"", content_type="application/json")
    if fault.body == "cut":
        stream = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        stream.content_length = len(raw)
        await stream.prepare(request)
        await stream.write(raw[: max(1, len(raw) // 2)])
        if request.transport is not None:
            request.transport.close()
        return stream
    return web.Response(status=200, body=raw[: max(1, len(raw) // 2)], content_type="application/json")
