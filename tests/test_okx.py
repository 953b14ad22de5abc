"""OKX, the venue added through the registry: backfill, a live cycle, the gap, live = batch with four venues.

Real ccxt ``okx`` against the fake exchange's OKX routes, real Redis, the real daemon.
"""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pandas as pd
import pytest

from riskd.clock import SimClock
from riskd.config import Settings, load_settings
from riskd.contract.models import Snapshot
from riskd.contract.snapshot import snapshots_of
from riskd.core import compute_fragility
from riskd.daemon.wiring import Runtime, runtime
from riskd.errors import RateLimited
from riskd.market import store_panel
from riskd.market.backfill import backfill
from riskd.market.sources import make_source
from riskd.sinks.metrics import parse_exposition
from riskd.store import HistoryStore
from riskd.testing.fake_exchange import FakeExchange
from riskd.testing.synthetic import MarketHistory, synthetic_market
from tests.helpers import fake_settings

SYMS = ["BTC", "ETH", "SOL", "XRP", "DOGE"]
VENUES = ("binance", "bybit", "hyperliquid", "okx")
T0 = pd.Timestamp("2024-03-01", tz="UTC")
HOUR = pd.Timedelta(hours=1)
GRACE = pd.Timedelta(seconds=20)


def _market(days: int = 12, hours_after: int = 30) -> MarketHistory:
    return synthetic_market(
        SYMS,
        T0 - pd.Timedelta(days=days),
        hours=days * 24 + hours_after,
        seed=5,
        venues=VENUES,
        open_interest_venues=("binance", "okx"),
        funding_intervals={"DOGE": 4},
        cascades=[(T0 - 24 * HOUR, 0.07, 6.0, None)],
    )


def _venue(fx: FakeExchange, **extra: object) -> dict[str, object]:
    return {"api_url": fx.base_url, "rate_limit_ms": 1, "max_concurrency": 8, "timeout_s": 2.0, **extra}


def _retry() -> dict[str, float]:
    return {"attempts": 3, "initial_backoff_s": 0.01, "max_backoff_s": 0.02, "jitter_s": 0.0}


def _ms(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out.index = out.index.as_unit("ms")
    return out


async def test_backfill_of_okx_lands_funding_and_open_interest_exactly(tmp_path: Path) -> None:
    """Backfilling OKX stores its funding (8 h and 4 h prints) and hourly open interest exactly as served,
    and asks for no candles (OKX serves none riskd reads)."""
    history = _market(days=40, hours_after=0)
    async with FakeExchange(history, now=history.end - pd.Timedelta(minutes=30)) as fx:
        settings = load_settings(data_dir=tmp_path, venues={"okx": _venue(fx, enabled=True)}, retry=_retry())
        store = HistoryStore(settings.store_dir)
        since = history.start
        report = await backfill(
            settings,
            store,
            since=since,
            venues=["okx"],
            datasets=["ohlcv", "funding", "open_interest"],
            clock=lambda: fx.now,
        )
    assert report.complete, report.failures
    assert {r.task.dataset for r in report.results} == {"funding", "open_interest"}
    closed = history.end - HOUR
    for symbol in SYMS:
        got = store.read("funding", "okx", symbol)
        want = _ms(history.funding["okx"][symbol])
        want = want[want.index < closed]
        for col in ("rate", "interval_hours", "rate_per_hour"):
            pd.testing.assert_series_equal(got[col], want[col], check_freq=False)
    assert set(store.read("funding", "okx", "DOGE")["interval_hours"]) == {4.0}
    oi = store.read("open_interest", "okx", "BTC")
    want_oi = _ms(history.open_interest["okx"]["BTC"])
    want_oi = want_oi[want_oi.index < closed]
    assert len(oi) == len(want_oi) > 24 * 39  # 100-row pages walked and split without loss
    pd.testing.assert_frame_equal(oi, want_oi.loc[oi.index], check_freq=False, check_exact=False, rtol=1e-9)
    assert fx.count(venue="okx", path="candles") == 0


async def test_okx_current_funding_and_rate_limit_translation(tmp_path: Path) -> None:
    """One bulk call gives every OKX symbol's live rate, due at the coming settlement; a 429 with OKX's
    code 50011 is a RateLimited error that is retried."""
    history = _market(days=3, hours_after=0)
    async with FakeExchange(history, now=history.end - pd.Timedelta(minutes=30)) as fx:
        settings = load_settings(data_dir=tmp_path, venues={"okx": _venue(fx, enabled=True)}, retry=_retry())
        seen: list[str] = []
        source = make_source("okx", settings, clock=lambda: fx.now, hook=lambda v, e, o: seen.append(o))
        async with source:
            await source.markets()
            fx.inject("rate_limit", venue="okx", path="/api/v5/public/funding-rate", times=1, retry_after=0.0)
            frame = await source.fetch_current_funding()
            fx.inject(
                "rate_limit", venue="okx", path="/api/v5/public/funding-rate", times=10, retry_after=0.0
            )
            with pytest.raises(RateLimited):
                await source.fetch_current_funding()
    assert set(frame.index) == set(SYMS)
    assert frame.loc["DOGE", "interval_hours"] == 4.0
    assert frame.loc["BTC", "interval_hours"] == 8.0
    assert (frame["next_funding_time"] > fx.now).all()
    assert (frame["next_funding_time"] - fx.now <= pd.Timedelta(hours=8)).all()
    assert "rate_limited" in seen
    assert "ok" in seen


def _settings(tmp: Path, fx: FakeExchange, redis_url: str, prefix: str) -> Settings:
    return fake_settings(
        tmp,
        fx,
        universe={"symbols": SYMS},
        venues={v: _venue(fx, enabled=True) for v in VENUES},
        redis={"url": redis_url, "key_prefix": prefix, "socket_timeout_s": 0.5},
        daemon={"warmup_hours": 24 * 10, "grace_s": GRACE.total_seconds(), "lease_ttl_s": 2.0},
        retry=_retry(),
    )


class _Quiet:
    """An alert channel that keeps nothing (the alerts are not under test here)."""

    name = "console"
    max_per_minute: int | None = None
    destinations = ("none",)

    async def send(self, dest: str, text: str, *, silent: bool, chart: bytes | None) -> str:
        return "1"

    async def aclose(self) -> None:
        return None


@contextlib.asynccontextmanager
async def _daemon(tmp_path: Path, redis_url: str) -> AsyncIterator[tuple[Runtime, SimClock, Settings]]:
    clock = SimClock(T0)
    async with FakeExchange(_market(), now=clock.now) as fx:
        settings = _settings(tmp_path, fx, redis_url, f"riskd-test-{uuid.uuid4().hex[:8]}:v1")
        async with runtime(settings, clock=clock, channel=_Quiet(), commands=False) as rt:
            rt.daemon.load()
            yield rt, clock, settings


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


async def test_live_cycle_with_okx_in_the_aggregates_the_gap_and_equal_to_batch(
    tmp_path: Path, redis_url: str
) -> None:
    """With OKX enabled the live daemon fetches its funding, publishes gap_okx (and its metric series),
    OKX moves the cross-venue funding gap, and every hour equals the batch computation over four venues."""
    async with _daemon(tmp_path, redis_url) as (rt, clock, settings):
        assert settings.fragility.funding.gap_venues == ("bybit", "hyperliquid", "okx")
        snaps: list[Snapshot] = []
        for hour in pd.date_range(T0, T0 + 20 * HOUR, freq="h"):
            clock.set(hour + HOUR + GRACE)
            await rt.daemon.sinks.lease.tick()
            snaps += await rt.daemon.run_once()
        url = f"http://127.0.0.1:{rt.server.port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as r:
            scrape = parse_exposition(await r.text())
    assert len(snaps) == 21
    assert all(s.data_quality.status == "ok" for s in snaps)
    assert all(s.features["gap_okx"] is not None and math.isfinite(s.features["gap_okx"]) for s in snaps)
    pair = ("riskd_funding_gap_hourly_ratio", (("venue_pair", "binance-okx"),))
    assert math.isclose(scrape[pair], snaps[-1].features["gap_okx"], rel_tol=1e-9)
    assert (
        scrape[
            (
                "riskd_exchange_requests_total",
                (("endpoint", "funding-rate-history"), ("outcome", "ok"), ("venue", "okx")),
            )
        ]
        > 0
    )

    store = HistoryStore(settings.store_dir)
    last = pd.Timestamp(snaps[-1].as_of) - HOUR
    frame = compute_fragility(store_panel(store, settings.fragility, SYMS, VENUES, last), settings.fragility)
    batch = {s.as_of: s for s in snapshots_of(frame, computed_at=snaps[-1].computed_at)}
    for s in snaps:
        b = batch[s.as_of]
        assert (s.state, s.cascade_level, s.cfi_quintile) == (b.state, b.cascade_level, b.cfi_quintile)
        assert _close(s.cfi, b.cfi), s.as_of
        for name, value in b.features.items():
            assert _close(s.features[name], value), (s.as_of, name)
    assert frame["funding_coverage_okx"].iloc[-1] == 1.0
    agg = frame.loc[last]
    assert math.isclose(
        snaps[-1].features["gap_okx"], agg["agg_funding"] - agg["agg_funding_okx"], rel_tol=1e-12
    )

    three = settings.fragility.model_copy(
        update={
            "funding": settings.fragility.funding.model_copy(update={"gap_venues": ("bybit", "hyperliquid")})
        }
    )
    without = compute_fragility(store_panel(store, three, SYMS, VENUES[:3], last), three)
    assert not math.isclose(without["funding_gap"].iloc[-1], frame["funding_gap"].iloc[-1], rel_tol=1e-9)
