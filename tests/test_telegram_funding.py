"""Per-symbol funding for /funding: the pure table, and the key the leader writes each cycle."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd
import pytest
import redis.asyncio as aioredis

from riskd.clock import SimClock
from riskd.config import load_settings
from riskd.daemon.wiring import runtime
from riskd.market import funding_table
from riskd.sinks.funding import funding_key
from riskd.telegram.format import funding_html
from riskd.telegram.status import RedisStatusSource
from riskd.testing.fake_exchange import FakeExchange
from riskd.testing.synthetic import synthetic_market

SYMS = ["BTC", "ETH", "DOGE"]
VENUES = ("binance", "bybit", "hyperliquid")
T0 = pd.Timestamp("2024-03-01", tz="UTC")
HOUR = pd.Timedelta(hours=1)


def _prints(times: list[str], rate: float, hours: float) -> pd.DataFrame:
    idx = pd.DatetimeIndex(pd.to_datetime(times, utc=True), name="ts")
    return pd.DataFrame({"rate": rate, "interval_hours": hours, "rate_per_hour": rate / hours}, index=idx)


def test_funding_table_takes_each_partitions_last_print_before_the_hour() -> None:
    """One row per (venue, symbol) funding partition: last print ≤ as_of, per hour and per 8 h, next time."""
    frames = {
        ("funding", "binance", "BTC"): _prints(
            ["2024-03-01 00:00", "2024-03-01 08:00", "2024-03-01 16:00"], 8e-4, 8
        ),
        ("funding", "hyperliquid", "BTC"): _prints(["2024-03-01 09:00", "2024-03-01 10:00"], 2e-5, 1),
        ("ohlcv", "binance", "BTC"): pd.DataFrame({"close": [1.0]}, index=pd.DatetimeIndex([T0])),
    }
    table = funding_table(frames, pd.Timestamp("2024-03-01 10:00", tz="UTC"))
    assert table["as_of"] == "2024-03-01T10:00:00+00:00"
    (binance, hyper) = table["rows"]
    assert (binance["venue"], binance["funding_time"], binance["next_funding_time"]) == (
        "binance",
        "2024-03-01T08:00:00+00:00",
        "2024-03-01T16:00:00+00:00",
    )
    assert binance["rate_per_hour"] == pytest.approx(1e-4)
    assert binance["rate_per_8h"] == pytest.approx(8e-4)
    assert hyper["rate_per_8h"] == pytest.approx(1.6e-4)
    assert hyper["next_funding_time"] == "2024-03-01T11:00:00+00:00"
    assert "hyperliquid: +0.0160%/8 h (+0.00200%/h) · every 1 h" in funding_html(table, "BTC")


async def test_the_leader_writes_the_funding_key_each_cycle(tmp_path: Path, redis_url: str) -> None:
    """A real cycle against the fake exchanges writes <prefix>:funding with every venue's symbols; the bot reads it."""
    prefix = f"riskd:test:{uuid.uuid4().hex[:12]}"
    clock = SimClock(T0)
    market = synthetic_market(
        SYMS, T0 - pd.Timedelta(days=12), hours=12 * 24 + 10, seed=3, funding_intervals={"DOGE": 4}
    )
    async with FakeExchange(market, now=clock.now) as fx:
        venue = {"api_url": fx.base_url, "rate_limit_ms": 1, "max_concurrency": 8, "timeout_s": 2.0}
        settings = load_settings(
            data_dir=tmp_path,
            universe={"symbols": SYMS},
            venues={v: venue for v in VENUES},
            redis={"url": redis_url, "key_prefix": prefix, "socket_timeout_s": 0.5},
            metrics={"enabled": False},
            daemon={"warmup_hours": 24 * 10, "grace_s": 20, "lease_ttl_s": 2.0},
            retry={"attempts": 3, "initial_backoff_s": 0.01, "max_backoff_s": 0.02, "jitter_s": 0.0},
        )
        async with runtime(settings, clock=clock, commands=False) as rt:
            rt.daemon.load()
            clock.set(T0 + HOUR + pd.Timedelta(seconds=20))
            await rt.daemon.sinks.lease.tick()
            await rt.daemon.run_once()
    client = aioredis.Redis.from_url(redis_url)
    try:
        table = json.loads(await client.get(funding_key(prefix)))
        assert await RedisStatusSource(client, prefix).funding_table() == table
    finally:
        await client.aclose()
    assert table["as_of"] == "2024-03-01T01:00:00+00:00"  # the hour that closed
    assert {(r["venue"], r["symbol"]) for r in table["rows"]} == {(v, s) for v in VENUES for s in SYMS}
    doge = {r["venue"]: r for r in table["rows"] if r["symbol"] == "DOGE"}
    assert doge["binance"]["interval_hours"] == 4.0
    assert doge["hyperliquid"]["interval_hours"] == 1.0
    for r in table["rows"]:
        assert (
            pd.Timestamp(r["funding_time"])
            <= pd.Timestamp(table["as_of"])
            < pd.Timestamp(r["next_funding_time"])
        )
