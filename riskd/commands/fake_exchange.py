"""``riskd fake-exchange``: serve a synthetic market of the configured universe until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from typing import Any

import pandas as pd

from riskd.commands._args import port_arg
from riskd.config import Settings
from riskd.testing.synthetic import synthetic_market

log = logging.getLogger("riskd.fake_exchange")

FUTURE_HOURS = 24 * 7
"""History generated past the start time, so a demo left running for a week still has candles."""


def add_parser(sub: Any) -> None:
    """``riskd fake-exchange``'s arguments."""
    fx = sub.add_parser("fake-exchange", help="serve the loopback fake exchange (for demos and benchmarks)")
    fx.add_argument("--host", default="127.0.0.1")
    fx.add_argument("--port", type=port_arg, default=8900)
    fx.add_argument("--hours", type=int, default=24 * 30, help="hours of synthetic history to serve")
    fx.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")


def cli_fake_exchange(settings: Settings, args: argparse.Namespace) -> int:
    """Serve ``args.hours`` of history up to the wall clock, which keeps running; print how to connect."""
    from riskd.testing.fake_exchange._server import FakeExchange  # aiohttp only when chosen

    now = pd.Timestamp.now("UTC")
    start = now.floor("h") - pd.Timedelta(hours=args.hours)
    history = synthetic_market(settings.universe.symbols, start, args.hours + FUTURE_HOURS)
    fx = FakeExchange(
        history,
        now=lambda: pd.Timestamp.now("UTC"),
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        aliases=settings.universe.renames,
    )

    async def serve() -> None:
        await fx.start()
        lines = [
            f"fake exchange serving {len(history.symbols)} symbols on {fx.base_url} (Ctrl-C stops)",
            "point riskd at it with:",
            *(f"  export {name}={value}" for name, value in fx.env().items()),
            f'inject faults: curl -X POST {fx.base_url}/_control/faults -d \'{{"kind": "rate_limit", "times": 3}}\'',
        ]
        print("\n".join(lines), flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await fx.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0
