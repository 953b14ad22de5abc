"""The daemon's figures: live cycle latency, replay speed, a consumer's read_regime p99, RSS over 1,000 hours.

Run: ``python -m benchmarks.bench_daemon [--symbols 50] [--latency-ms 50] [--hours 1000]``. Everything runs
against servers this benchmark starts: a private redis-server on loopback, and the fake exchange in a child
process (so it takes neither the daemon's CPU nor its memory), its clock moved over its HTTP control
endpoint the way a simulated clock moves. The daemon uses the real ccxt clients.

- cycle latency: hour close -> key written (wall time from the scheduled wake-up to the end of the publish
  stage: fetch + compute + publish), steady state after warm-up, every request answered after
  ``latency-ms``; compute = one-row panel + core step (targets: ≤ 2 s end to end, ≤ 20 ms compute). The
  history-store write comes after the key and is reported on its own, with the whole cycle;
- replay: the bundled May 2021 sample through ``riskd replay``'s publish path with Redis (target ≥ 2,000 h/s);
- read_regime: p50/p99 of ``riskd.client.read_regime`` on loopback (target p99 < 1 ms);
- RSS: the live daemon stepped through ``--hours`` simulated hours, resident memory sampled (flat, ≤ 150 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd
import redis

from riskd.client import read_regime
from riskd.clock import SimClock
from riskd.commands.replay import replay
from riskd.config import DEFAULT_UNIVERSE, Settings, load_settings
from riskd.daemon.embedded import RedisServer
from riskd.daemon.wiring import runtime
from riskd.testing.fake_exchange import FakeExchange
from riskd.testing.sample import load_sample_store
from riskd.testing.synthetic import synthetic_market

HOUR = pd.Timedelta(hours=1)
GRACE = pd.Timedelta(seconds=20)


class _Quiet:
    """An alert channel that delivers nowhere (the benchmark measures riskd, not a console)."""

    name, max_per_minute = "console", None

    def __init__(self) -> None:
        self.destinations = ["bench"]

    async def send(self, dest: str, text: str, *, silent: bool, chart: bytes | None) -> str:
        return "ok"

    async def aclose(self) -> None:
        return None


def _symbols(n: int) -> list[str]:
    extra = [f"X{i:03d}" for i in range(max(0, n - len(DEFAULT_UNIVERSE)))]
    return [*DEFAULT_UNIVERSE, *extra][:n]


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _serve(names: list[str], start: str, hours: int, seed: int, latency_ms: float, port) -> None:
    """Child process: the fake exchange over a synthetic market until killed."""

    async def main() -> None:
        history = synthetic_market(names, pd.Timestamp(start), hours=hours, seed=seed)
        async with FakeExchange(history, latency_ms=latency_ms) as fx:
            port.value = int(fx.port)
            await asyncio.Event().wait()

    asyncio.run(main())


class ChildExchange:
    """A fake exchange in another process, its clock set over HTTP."""

    def __init__(
        self, names: list[str], start: pd.Timestamp, hours: int, seed: int, latency_ms: float
    ) -> None:
        ctx = mp.get_context("spawn")
        self._port = ctx.Value("i", 0)
        self._proc = ctx.Process(
            target=_serve, args=(names, str(start), hours, seed, latency_ms, self._port), daemon=True
        )
        self.base_url = ""

    def __enter__(self) -> ChildExchange:
        self._proc.start()
        deadline = time.monotonic() + 60
        while not self._port.value and time.monotonic() < deadline:
            time.sleep(0.05)
        self.base_url = f"http://127.0.0.1:{self._port.value}"
        return self

    def set_clock(self, now: pd.Timestamp) -> None:
        """Move the venue's clock (what it serves as closed and open)."""
        req = urllib.request.Request(
            f"{self.base_url}/_control/clock",
            data=json.dumps({"now": now.isoformat()}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(req, timeout=5).read()

    def __exit__(self, *exc: object) -> None:
        self._proc.kill()
        self._proc.join(5)


def import_floor_mb() -> dict[str, float]:
    """RSS of a fresh interpreter after importing each heavy dependency, and riskd's daemon: the floor
    under the daemon's own memory."""
    code = (
        "import importlib, sys\n"
        "importlib.import_module(sys.argv[1])\n"
        "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS:')))"
    )
    out = {}
    for module in ("pandas", "ccxt.async_support", "riskd.daemon.wiring"):
        kb = subprocess.run([sys.executable, "-c", code, module], capture_output=True, text=True, check=True)
        out[module] = int(kb.stdout) / 1024
    return out


def _settings(tmp: Path, url: str, redis_url: str, symbols: list[str], throttle: str = "off") -> Settings:
    """``throttle``: ``off`` (1 ms: the loopback fake measured alone), or ccxt's own per-venue calibration
    with the rolling window riskd uses by default (``rolling``) or ccxt's leaky bucket (``leaky``)."""
    venue: dict[str, object] = {"api_url": url}
    if throttle == "off":
        venue["rate_limit_ms"] = 1
    elif throttle == "leaky":
        venue["rate_limit_window_s"] = 0
    return load_settings(
        data_dir=tmp,
        universe={"symbols": symbols},
        venues={"binance": venue, "bybit": venue, "hyperliquid": venue},
        redis={"url": redis_url, "key_prefix": "riskd-bench:v1"},
        metrics={"port": 0},
        daemon={"warmup_hours": 24 * 10},
    )


async def _drive(
    hours: int, names: list[str], latency_ms: float, redis_url: str, seed: int, on_hour, throttle: str = "off"
) -> None:
    t0 = pd.Timestamp("2024-03-01 01:00", tz="UTC")
    first = t0 - pd.Timedelta(days=11)
    clock = SimClock(t0)
    with (
        tempfile.TemporaryDirectory() as tmp,
        ChildExchange(names, first, 11 * 24 + hours + 3, seed, latency_ms) as fx,
    ):
        settings = _settings(Path(tmp), fx.base_url, redis_url, names, throttle)
        async with runtime(settings, clock=clock, channel=_Quiet(), commands=False) as rt:
            d = rt.daemon
            d.load()
            for h in range(hours + 1):
                clock.set(t0 + h * HOUR + GRACE)
                fx.set_clock(clock.now())
                await d.sinks.lease.tick()
                start = time.perf_counter()
                await d.run_once()
                on_hour(h, time.perf_counter() - start, dict(d.timings))


async def cycle_latency(
    symbols: int, latency_ms: float, redis_url: str, cycles: int = 8, throttle: str = "off"
) -> dict[str, float]:
    """Steady-state cycle wall time and its parts (hour 0, the cold start, is not counted)."""
    rows: list[tuple[float, dict[str, float]]] = []

    def keep(h: int, wall: float, parts: dict[str, float]) -> None:
        if h > 0:
            rows.append((wall, parts))

    await _drive(cycles, _symbols(symbols), latency_ms, redis_url, 2, keep, throttle)
    keyed = [p["fetch"] + p["compute"] + p["publish"] for _, p in rows]
    walls = [w for w, _ in rows]
    return {
        "key_median_s": statistics.median(keyed),
        "key_max_s": max(keyed),
        "wall_median_s": statistics.median(walls),
        "wall_max_s": max(walls),
        "persist_median_s": statistics.median(p["persist"] for _, p in rows),
        "fetch_median_s": statistics.median(p["fetch"] for _, p in rows),
        "compute_median_ms": 1e3 * statistics.median(p["compute"] for _, p in rows),
        "publish_median_ms": 1e3 * statistics.median(p["publish"] for _, p in rows),
    }


async def rss_over_hours(hours: int, redis_url: str) -> list[tuple[int, float]]:
    """Resident memory of the live daemon every 100 simulated hours (16 symbols, 3 venues)."""
    samples: list[tuple[int, float]] = []

    def sample(h: int, wall: float, parts: dict[str, float]) -> None:
        if h % 100 == 0:
            samples.append((h, _rss_mb()))

    await _drive(hours, list(DEFAULT_UNIVERSE), 0.0, redis_url, 4, sample)
    return samples


async def replay_speed(redis_url: str) -> dict[str, float]:
    """Hours per second of a replay of the bundled sample, publishing to Redis."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            data_dir=tmp,
            universe={"symbols": ["BTC", "ETH", "XRP", "LTC", "ADA", "SOL", "DOGE", "LINK"]},
            venues={"bybit": {"enabled": False}, "hyperliquid": {"enabled": False}},
            redis={"url": redis_url, "key_prefix": "riskd-bench-replay:v1"},
            metrics={"enabled": False},
        )
        load_sample_store(settings.store_dir)
        result = await replay(settings, None, None, channel=_Quiet())
    return {"hours": len(result.snapshots), "seconds": result.seconds, "hours_per_s": result.hours_per_second}


def read_latency(redis_url: str, n: int = 20_000) -> dict[str, float]:
    """p50/p99 of read_regime (GET + parse + validate) on a synchronous client."""
    client = redis.Redis.from_url(redis_url)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        read_regime(client, prefix="riskd-bench:v1")
        times.append(time.perf_counter() - t)
    client.close()
    times.sort()
    return {"p50_ms": 1e3 * times[n // 2], "p99_ms": 1e3 * times[int(n * 0.99)]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--symbols", type=int, default=50)
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--hours", type=int, default=1000, help="simulated hours for the RSS run")
    a = p.parse_args()
    with RedisServer() as server:
        c = asyncio.run(cycle_latency(a.symbols, a.latency_ms, server.url))
        print(
            f"live cycle, {a.symbols} symbols x 3 venues, {a.latency_ms:.0f} ms per request: hour close -> key "
            f"written median {c['key_median_s']:.2f} s, max {c['key_max_s']:.2f} s (target <= 2 s); fetch "
            f"{c['fetch_median_s']:.2f} s, compute {c['compute_median_ms']:.1f} ms (target <= 20 ms), "
            f"publish {c['publish_median_ms']:.1f} ms; then the history-store write "
            f"{c['persist_median_s']:.2f} s (whole cycle median {c['wall_median_s']:.2f} s, "
            f"max {c['wall_max_s']:.2f} s)",
            flush=True,
        )
        for throttle in ("rolling", "leaky"):  # one steady-state cycle: the cold start and it fit one window
            t = asyncio.run(cycle_latency(a.symbols, a.latency_ms, server.url, cycles=1, throttle=throttle))
            print(
                f"  with ccxt's rate limits, {throttle} limiter: hour close -> key written {t['key_median_s']:.2f} s "
                f"(fetch {t['fetch_median_s']:.2f} s)",
                flush=True,
            )
        r = asyncio.run(replay_speed(server.url))
        print(
            f"replay: {r['hours']:.0f} hours in {r['seconds']:.2f} s = {r['hours_per_s']:,.0f} hours/s "
            "with Redis (target >= 2,000)",
            flush=True,
        )
        lat = read_latency(server.url)
        print(
            f"read_regime on loopback: p50 {lat['p50_ms']:.3f} ms, p99 {lat['p99_ms']:.3f} ms (target < 1 ms)"
        )
        samples = asyncio.run(rss_over_hours(a.hours, server.url))
        growth = samples[-1][1] - samples[1][1] if len(samples) > 1 else 0.0
        print(
            "daemon RSS: "
            + ", ".join(f"{h} h {mb:.0f} MB" for h, mb in samples)
            + f" (growth after warm-up {growth:+.0f} MB; target flat, <= 150 MB)",
            flush=True,
        )
        floor = import_floor_mb()
        print(
            "import floor (fresh interpreter RSS): "
            + ", ".join(f"{m} {mb:.0f} MB" for m, mb in floor.items()),
            flush=True,
        )


if __name__ == "__main__":
    main()
