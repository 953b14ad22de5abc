"""Benchmark of the minute side (issue 14): real ccxt.pro clients against the fake's websockets, real Redis.

    .venv/bin/python -m benchmarks.bench_minutes                     # both figures
    .venv/bin/python -m benchmarks.bench_minutes --minutes 60 --liq-per-s 100 --symbols 50

1. Closed minute → provisional state in Redis: from the moment the fake exchange is asked to send a
   minute's closed candles (then waits ``--latency-ms``, 50 ms by default, as a network would) until
   ``<prefix>:regime:live`` carries that minute, read by a second Redis client. p50 and p99.
2. CPU and RSS of the riskd side for one simulated hour: the all-market liquidation stream at
   ``--liq-per-s`` messages per second and 1-minute candles for ``--symbols`` symbols updated every
   ``--update-ms`` (Binance: 250 ms). The fake exchange runs in its own thread; the CPU figure is the
   main thread's (``time.thread_time``), i.e. ccxt.pro parsing, the recorder, the detector and the
   Redis writes, as a share of one core over the simulated hour. RSS is sampled every 10 minutes.
   Target: under 5 % of one core, RSS flat.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import redis.asyncio as aioredis

from riskd.clock import SimClock
from riskd.config import load_settings
from riskd.daemon.embedded import RedisServer
from riskd.streams.task import MinuteStreams
from riskd.testing.fake_exchange import FakeExchange
from riskd.testing.fake_exchange._ws import Liquidation
from riskd.testing.synthetic import synthetic_market

START = pd.Timestamp("2024-01-02 00:00", tz="UTC")


class _Null:
    """An alert sink that accepts everything (delivery is not what is measured)."""

    async def submit(self, alerts: Any, *, chart: bytes | None = None) -> list[str]:
        return ["queued" for _ in alerts]


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(args: argparse.Namespace) -> None:
    symbols = ["BTC", *[f"A{i:02d}" for i in range(args.symbols - 1)]][: args.symbols]
    fx = FakeExchange(synthetic_market(symbols, "2024-01-01", hours=30, seed=1))
    fx.start_in_thread()
    fx.ws.latency_s = args.latency_ms / 1000
    tmp = Path(tempfile.mkdtemp(prefix="riskd-bench-minutes-"))
    with RedisServer() as server:
        settings = load_settings(
            data_dir=tmp,
            universe={"symbols": symbols[:16]},
            venues={v: {"api_url": fx.base_url} for v in ("binance", "bybit", "hyperliquid")},
            redis={"url": server.url, "key_prefix": "bench:v1"},
            streams={
                "enabled": True,
                "venues": ["binance"],
                "candle_symbols": symbols,
                "tick_s": 0.02,
                "close_grace_s": 3600.0,
            },
        )
        client, reader = aioredis.from_url(server.url), aioredis.from_url(server.url)
        clock = SimClock(START)
        ms = MinuteStreams(settings, client=client, pipeline=_Null(), clock=clock)
        stop = asyncio.Event()
        task = asyncio.create_task(ms.run(stop))
        await _threadsafe(fx, fx.ws.wait_connected("binance", 2))
        rng = np.random.default_rng(0)
        price = {s: 100.0 + i for i, s in enumerate(symbols)}
        latencies, rss, cpu0, t0 = [], [_rss_mb()], time.thread_time(), time.perf_counter()
        per_update = max(1, int(args.liq_per_s * args.update_ms / 1000))
        updates = int(60_000 / args.update_ms)
        for i in range(args.minutes):
            m = START + pd.Timedelta(minutes=i)
            ms_open = int(m.value // 1_000_000)
            bars = {}
            for s in symbols:
                c = price[s] * (1 + rng.normal(0, 0.001))
                bars[f"{s}USDT"] = (price[s], max(price[s], c), min(price[s], c), c, 10.0)
                price[s] = c
            for u in range(updates - 1):
                liqs = [
                    Liquidation(
                        f"{symbols[j % len(symbols)]}USDT",
                        "sell" if j % 2 else "buy",
                        100.0,
                        1.0,
                        ms_open + u * args.update_ms + j,
                    )
                    for j in range(per_update)
                ]
                await _threadsafe(fx, fx.ws.push_minute(m, bars, liqs, partial=True, closed=False))
            clock.set(m + pd.Timedelta(seconds=60))
            sent = time.perf_counter()
            await _threadsafe(fx, fx.ws.push_minute(m, bars, [], partial=False))
            want = ms_open + 60_000
            while True:
                raw = await reader.get("bench:v1:regime:live")
                if raw and f'"minute_ms":{want}' in raw.decode():
                    break
                await asyncio.sleep(0.0005)
            latencies.append(time.perf_counter() - sent)
            if (i + 1) % 10 == 0:
                rss.append(_rss_mb())
        cpu = time.thread_time() - cpu0
        wall = time.perf_counter() - t0
        stop.set()
        await task
        await client.aclose()
        await reader.aclose()
    fx.stop()
    lat = np.array(latencies) * 1000
    print(
        f"closed minute → regime:live with {args.latency_ms:.0f} ms injected latency, {len(lat)} minutes: "
        f"p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms"
    )
    sim_s = args.minutes * 60
    msgs = args.minutes * ((updates - 1) * (per_update + args.symbols) + args.symbols)
    print(
        f"{args.minutes} simulated minutes ({msgs:,} frames: {args.liq_per_s}/s liquidations, {args.symbols} "
        f"symbols' candles every {args.update_ms} ms) replayed in {wall:.1f} s"
    )
    print(
        f"riskd-side CPU {cpu:.1f} s = {100 * cpu / sim_s:.2f} % of one core over the simulated span (target < 5 %)"
    )
    print("RSS every 10 simulated minutes (MB): " + ", ".join(f"{r:.0f}" for r in rss))
    print(f"recorder: {ms.recorder.events:,} liquidations, {ms.recorder.duplicates} duplicates dropped")


async def _threadsafe(fx: FakeExchange, coro: Any) -> None:
    """Run a hub coroutine on the fake's own loop (it serves from a thread)."""
    assert fx._loop is not None
    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, fx._loop))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--liq-per-s", type=int, default=100)
    ap.add_argument("--symbols", type=int, default=50)
    ap.add_argument("--update-ms", type=int, default=250)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
