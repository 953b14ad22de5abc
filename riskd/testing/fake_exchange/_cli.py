"""``riskd fake-exchange``: serve a synthetic market of the configured universe until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

import pandas as pd

from riskd.settings import Settings
from riskd.testing.synthetic import synthetic_market

log = logging.getLogger("riskd.fake_exchange")

FUTURE_HOURS = 24 * 7
"""History generated past the start time, so a demo left running for a week still has candles."""


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
