"""Clock skew (issue 19, item 4): the daemon reads the venue's server time through real ccxt from the fake
exchange, whose clock is the venue's true time, while its own clock runs 90 s fast or slow.

A fast clock must wait for the venue's hour close (before: every hour went out stale first); both ways
the skew is measured, exported as ``riskd_clock_skew_seconds``, logged once, and /healthz says degraded
until the clock is right again."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pandas as pd
import pytest

from riskd.clock import SimClock
from riskd.daemon.wiring import Runtime, runtime
from riskd.sinks.metrics import parse_exposition
from riskd.testing.fake_exchange import FakeExchange
from riskd.testing.synthetic import synthetic_market
from tests.helpers import fake_settings

SYMS = ["BTC", "ETH", "SOL"]
T0 = pd.Timestamp("2024-03-01", tz="UTC")
HOUR = pd.Timedelta(hours=1)
GRACE = pd.Timedelta(seconds=20)


class OffsetClock:
    """The daemon's local clock: the venue's true time (a SimClock) plus ``offset``; sleeping on it moves
    the true time, as waiting does."""

    def __init__(self, true: SimClock, offset_s: float) -> None:
        self.true = true
        self.offset = pd.Timedelta(seconds=offset_s)

    def now(self) -> pd.Timestamp:
        return self.true.now() + self.offset

    async def sleep_until(self, when: pd.Timestamp, stop: asyncio.Event) -> None:
        await self.true.sleep_until(when - self.offset, stop)


async def _get(rt: Runtime, path: str) -> tuple[int, str]:
    assert rt.server is not None
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{rt.server.port}{path}") as r:
        return r.status, await r.text()


async def _skew_gauge(rt: Runtime) -> dict[str, float]:
    _, text = await _get(rt, "/metrics")
    return {
        dict(labels)["venue"]: v
        for (name, labels), v in parse_exposition(text).items()
        if name == "riskd_clock_skew_seconds"
    }


async def _healthz(rt: Runtime) -> dict[str, Any]:
    import json

    _, text = await _get(rt, "/healthz")
    return dict(json.loads(text))


async def _cycle(rt: Runtime) -> list[Any]:
    await rt.daemon.sinks.lease.tick()
    return await rt.daemon.run_once()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and "clock skew" in r.getMessage()
    ]


@pytest.mark.parametrize("offset_s", [90.0, -90.0])
async def test_skewed_clock_is_measured_reported_and_never_publishes_an_hour_stale(
    tmp_path: Path, redis_url: str, prefix: str, offset_s: float, caplog: pytest.LogCaptureFixture
) -> None:
    """Local clock 90 s off the venue's: each hour is published once, ok, at the venue's close; the skew
    is read to the millisecond (the simulated clock stands still during the request), shown on a real
    /metrics scrape and as degraded on /healthz, and logged once; back to ok when the clock is fixed."""
    caplog.set_level(logging.INFO, logger="riskd")
    true = SimClock(T0)
    local = OffsetClock(true, offset_s)
    history = synthetic_market(SYMS, T0 - pd.Timedelta(days=3), hours=3 * 24 + 12, seed=5)
    async with FakeExchange(history, now=true.now) as fx:
        settings = fake_settings(
            tmp_path,
            fx,
            universe={"symbols": SYMS},
            redis={"url": redis_url, "key_prefix": prefix, "socket_timeout_s": 0.5},
            daemon={"warmup_hours": 48, "grace_s": GRACE.total_seconds(), "lease_ttl_s": 2.0},
        )
        async with runtime(settings, clock=local, commands=False) as rt:
            rt.daemon.load()
            published = []
            for hour in pd.date_range(T0, T0 + 2 * HOUR, freq="h"):
                # the local clock says the hour is due (close + grace, plus 30 s); the venue's may not yet
                local_due = hour + HOUR + GRACE + pd.Timedelta(seconds=30)
                true.set(local_due - local.offset)
                published += await _cycle(rt)
                assert true.now() >= hour + HOUR + GRACE, (
                    "the cycle ran before the venue's hour close + grace"
                )
            assert [s.as_of for s in published] == [T0 + k * HOUR for k in (1, 2, 3)]
            assert [s.data_quality.status for s in published] == ["ok"] * 3
            assert all(not s.restated for s in published)
            # computed_at is on the venue's clock
            assert all(pd.Timestamp(s.computed_at) <= true.now() for s in published)
            assert rt.daemon.skew.last is not None
            assert rt.daemon.skew.last.venue == "binance"
            assert rt.daemon.skew.last.skew == pd.Timedelta(seconds=offset_s)
            assert await _skew_gauge(rt) == {"binance": offset_s}
            health = await _healthz(rt)
            assert health["status"] == "degraded", health
            assert any("clock skew" in r and f"{offset_s:+.1f}s" in r for r in health["reasons"]), health
            status, _ = await _get(rt, "/readyz")
            assert status == 200  # riskd compensates (it waits for the venue's close): still ready
            began = _warnings(caplog)
            assert len(began) == 1, began  # once, however many cycles saw it
            assert f"{offset_s:+.1f}s off binance" in began[0]

            local.offset = pd.Timedelta(0)  # the host's clock is fixed
            true.set(T0 + 4 * HOUR + GRACE)
            fixed = await _cycle(rt)
            assert [s.as_of for s in fixed] == [T0 + 4 * HOUR]
            assert fixed[0].data_quality.status == "ok"
            assert await _skew_gauge(rt) == {"binance": 0.0}
            health = await _healthz(rt)
            assert health["status"] == "ok", health
            ended = _warnings(caplog)[1:]
            assert len(ended) == 1, ended
            assert "clock skew over" in ended[0]


async def test_a_venue_that_does_not_answer_keeps_the_last_skew(
    tmp_path: Path, redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Binance's time endpoint failing is not fatal: the next venue (Bybit) is asked; with every venue's
    time failing the last known skew is kept and the cycle still waits by it."""
    true = SimClock(T0)
    local = OffsetClock(true, 90.0)
    history = synthetic_market(SYMS, T0 - pd.Timedelta(days=3), hours=3 * 24 + 12, seed=5)
    async with FakeExchange(history, now=true.now) as fx:
        settings = fake_settings(
            tmp_path,
            fx,
            universe={"symbols": SYMS},
            redis={"url": redis_url, "key_prefix": prefix, "socket_timeout_s": 0.5},
            daemon={"warmup_hours": 48, "grace_s": GRACE.total_seconds(), "lease_ttl_s": 2.0},
            retry={"attempts": 1},
        )
        async with runtime(settings, clock=local, commands=False) as rt:
            rt.daemon.load()
            true.set(T0 + HOUR + GRACE)
            await _cycle(rt)
            fx.inject("server_error", venue="binance", path="/fapi/v1/time")
            true.set(T0 + 2 * HOUR + GRACE)  # the local clock is 90 s past the hour's due time
            (snap,) = await _cycle(rt)
            assert rt.daemon.skew.last is not None
            assert rt.daemon.skew.last.venue == "bybit"
            assert (snap.as_of, snap.data_quality.status) == (T0 + 2 * HOUR, "ok")
            # Bybit's time fails too, and Hyperliquid's (exchangeStatus) is not served by the fake
            fx.inject("server_error", venue="bybit", path="/v5/market/time")
            before = rt.daemon.skew.last
            true.set(T0 + 3 * HOUR + GRACE - local.offset)  # local: the hour is due; the venue: 90 s early
            (snap,) = await _cycle(rt)
            assert rt.daemon.skew.last is before  # kept
            assert true.now() >= T0 + 3 * HOUR + GRACE  # and the cycle still waited by it
            assert (snap.as_of, snap.data_quality.status) == (T0 + 3 * HOUR, "ok")
