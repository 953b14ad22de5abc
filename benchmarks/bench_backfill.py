"""Backfill throughput from the loopback fake exchange, latency-bound as against a real venue.

Run: ``python -m benchmarks.bench_backfill [--symbols 8] [--days 60] [--latency-ms 50]``. Every
request waits ``latency-ms`` at the fake; ccxt's own throttle is set to 1 ms so the figure shows our
pagination and concurrency, not ccxt's politeness delay. Two runs: the default concurrency limit per
venue, and a limit of 1 (requests strictly one after another per venue).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import pandas as pd

from riskd.config import DEFAULT_UNIVERSE, load_settings
from riskd.market.backfill import backfill
from riskd.store import HistoryStore
from riskd.testing.fake_exchange import FakeExchange
from riskd.testing.synthetic import synthetic_market


def run(symbols: int, days: int, latency_ms: float, concurrency: int) -> dict[str, float]:
    """Rows/s, requests and wall time of one backfill of ``symbols`` × 3 venues × ``days``."""
    names = list(DEFAULT_UNIVERSE[:symbols])
    start = pd.Timestamp("2024-01-01", tz="UTC")
    history = synthetic_market(names, start, hours=24 * days, seed=1)
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeExchange(history, now=history.end - pd.Timedelta(minutes=30), latency_ms=latency_ms) as fx,
    ):
        venue = {"api_url": fx.base_url, "max_concurrency": concurrency, "rate_limit_ms": 1}
        settings = load_settings(
            data_dir=Path(tmp), venues={"binance": venue, "bybit": venue, "hyperliquid": venue}
        )
        store = HistoryStore(settings.store_dir)
        t0 = time.perf_counter()
        report = asyncio.run(backfill(settings, store, since=start, symbols=names, clock=lambda: fx.now))
        wall = time.perf_counter() - t0
        requests = len(fx.requests)
    rows = sum(r.rows for r in report.results)
    return {"rows": rows, "requests": requests, "seconds": wall, "rows_per_s": rows / wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--symbols", type=int, default=8)
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--latency-ms", type=float, default=50.0)
    a = p.parse_args()
    print(
        f"backfill: {a.symbols} symbols x 3 venues x {a.days} days, {a.latency_ms:.0f} ms latency per request"
    )
    default = load_settings().venues.binance.max_concurrency
    for label, conc in ((f"concurrency {default} per venue (default)", default), ("concurrency 1", 1)):
        r = run(a.symbols, a.days, a.latency_ms, conc)
        print(
            f"  {label:36s} {r['rows']:>9,.0f} rows  {r['requests']:>5,.0f} requests  "
            f"{r['seconds']:6.2f} s  {r['rows_per_s']:>9,.0f} rows/s"
        )


if __name__ == "__main__":
    main()
