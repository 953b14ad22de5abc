"""Replay speed beside its floor: ``riskd replay``'s publish path vs one plain SET per hour, one run.

Run: ``python -m benchmarks replay [--repeat 3]``. A private redis-server on loopback; the bundled May 2021
sample (8 symbols, Binance) replayed under its own prefix with alerts delivered to a channel that sends
nowhere. The floor is what any writer pays: one ``SET`` of the same snapshot JSON per hour, awaited in turn
on the same asyncio client library, against the same Redis in the same run. Issue 23's aim: replay ≤ 2×
the floor. Printed: hours/s of each and the ratio (best of ``--repeat``; the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time

import redis.asyncio as aioredis

from benchmarks.bench_daemon import _Quiet
from riskd.commands.replay import replay
from riskd.config import load_settings
from riskd.daemon.embedded import RedisServer
from riskd.testing.sample import load_sample_store


async def replay_once(redis_url: str, prefix: str) -> tuple[int, float, str]:
    """(hours, seconds, one snapshot's JSON) of one fresh replay of the bundled sample."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            data_dir=tmp,
            universe={"symbols": ["BTC", "ETH", "XRP", "LTC", "ADA", "SOL", "DOGE", "LINK"]},
            venues={"bybit": {"enabled": False}, "hyperliquid": {"enabled": False}},
            redis={"url": redis_url, "key_prefix": prefix},
            metrics={"enabled": False},
        )
        load_sample_store(settings.store_dir)
        result = await replay(settings, None, None, channel=_Quiet(), fresh=True)
    return len(result.snapshots), result.seconds, result.snapshots[-1].to_json()


async def set_floor(redis_url: str, body: str, hours: int) -> float:
    """Seconds for ``hours`` plain SETs of ``body``, one awaited after the other."""
    client = aioredis.Redis.from_url(redis_url)
    await client.ping()
    t0 = time.perf_counter()
    for i in range(hours):
        await client.set(f"riskd-bench-floor:{i % 64}", body)
    seconds = time.perf_counter() - t0
    await client.aclose()
    return seconds


async def measure(redis_url: str, repeat: int) -> dict[str, float]:
    best_replay = best_floor = float("inf")
    hours = 0
    for k in range(repeat):
        hours, seconds, body = await replay_once(redis_url, f"riskd-bench-replay-{k}:v1")
        best_replay = min(best_replay, seconds)
        best_floor = min(best_floor, await set_floor(redis_url, body, hours))
    return {"hours": hours, "replay_s": best_replay, "floor_s": best_floor}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    with RedisServer() as server:
        m = asyncio.run(measure(server.url, a.repeat))
    rate, floor = m["hours"] / m["replay_s"], m["hours"] / m["floor_s"]
    print(
        f"replay: {m['hours']:.0f} hours in {m['replay_s']:.3f} s = {rate:,.0f} hours/s; plain SET per hour "
        f"{floor:,.0f} /s; replay takes {m['replay_s'] / m['floor_s']:.1f}x the SET floor (aim <= 2x); "
        f"best of {a.repeat}, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
