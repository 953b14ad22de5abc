"""One fetch cycle against venues that hang, refuse connections or fail: it ends on time, cancels
promptly, says one line per venue and keeps each venue's health (issue 9, findings 5, 6 and 7)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from riskd.config import Settings, load_settings
from riskd.core.params import FragilityParams
from riskd.market import FetchReport, MarketCache, fetch_recent
from riskd.market.sources import make_source
from riskd.sinks.metrics import Metrics
from riskd.sources import VenueSource
from riskd.store import HistoryStore
from riskd.testing.fake_exchange import FakeExchange
from riskd.testing.synthetic import MarketHistory, synthetic_market

SYMS = ["BTC", "ETH", "SOL", "XRP", "DOGE"]
VENUES = ("binance", "bybit", "hyperliquid")
START = pd.Timestamp("2024-03-01", tz="UTC")
NOW = START + pd.Timedelta(hours=70, minutes=30)
HOUR = pd.Timedelta(hours=1)


@pytest.fixture(scope="module")
def history() -> MarketHistory:
    return synthetic_market(SYMS, START, hours=72, seed=4)


@pytest.fixture
async def fx(history: MarketHistory) -> AsyncIterator[FakeExchange]:
    async with FakeExchange(history, now=NOW) as server:
        yield server


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once the socket is closed


def _settings(url: str, **retry: float) -> Settings:
    venue = {"api_url": url, "rate_limit_ms": 1, "timeout_s": 5.0}
    policy = {"attempts": 4, "initial_backoff_s": 0.01, "max_backoff_s": 0.05, "jitter_s": 0.0, **retry}
    return load_settings(venues={v: venue for v in VENUES}, retry=policy)


def _sources(settings: Settings) -> dict[str, VenueSource]:
    return {v: make_source(v, settings, clock=lambda: NOW) for v in VENUES}


async def _cycle(sources: dict[str, VenueSource], tmp_path: Path, **kw: object) -> tuple[FetchReport, float]:
    cache = MarketCache(SYMS, FragilityParams())
    until = NOW.floor("h")
    started = time.perf_counter()
    report = await fetch_recent(
        sources, HistoryStore(tmp_path / "store"), cache, until=until, warm_start=until - 24 * HOUR, **kw
    )
    return report, time.perf_counter() - started


async def _close(sources: dict[str, VenueSource]) -> None:
    for source in sources.values():
        await source.close()


async def test_a_hanging_venue_is_cut_at_the_deadline_and_named(fx: FakeExchange, tmp_path: Path) -> None:
    """Every venue hangs: the cycle returns at its 1 s deadline, each (venue, dataset) failed "deadline"."""
    fx.inject("hang")
    sources = _sources(_settings(fx.base_url))
    try:
        report, took = await _cycle(sources, tmp_path, deadline_s=1.0)
    finally:
        await _close(sources)
    assert took < 2.5
    assert set(report.failed) == {("binance", d) for d in ("ohlcv", "funding", "open_interest")} | {
        ("bybit", "funding"),
        ("hyperliquid", "funding"),
    }
    assert all(err.startswith("deadline") for err in report.failed.values())
    assert report.venue_health == dict.fromkeys(VENUES, "degraded")
    assert all("cut by the deadline" in line for line in report.summaries.values())


async def test_the_deadline_comes_from_the_settings(fx: FakeExchange, tmp_path: Path) -> None:
    """Without an explicit deadline, fetch_recent applies daemon.fetch_deadline_s, as `riskd run` sets it."""
    fx.inject("hang")
    settings = _settings(fx.base_url)
    settings.daemon.fetch_deadline_s = 0.5
    sources = _sources(settings)
    try:
        report, took = await _cycle(sources, tmp_path)
    finally:
        await _close(sources)
    assert took < 2.0
    assert report.failed[("bybit", "funding")] == "deadline: not finished within 0.5s"


async def test_unreachable_venues_fail_fast_down_and_named(tmp_path: Path) -> None:
    """Every venue's port closed: the circuits open after 3 refused connections each, the cycle ends in
    well under a second, each venue is down with ConnectionRefusedError in its line, and the health map
    the daemon passes (LiveState.venue_health) feeds riskd_venue_up."""
    metrics = Metrics()
    sources = _sources(_settings(f"http://127.0.0.1:{_closed_port()}", circuit_failures=3, attempts=6))
    try:
        report, took = await _cycle(sources, tmp_path, health=metrics.state.venue_health)
    finally:
        await _close(sources)
    assert took < 3.0
    assert metrics.state.venue_health == dict.fromkeys(VENUES, "down")
    for venue, line in report.summaries.items():
        assert line.startswith(f"{venue}: DOWN since")
        assert "ConnectionRefusedError" in line
        assert "3 requests" in line
    up = {
        s.labels["venue"]: s.value
        for fam in text_string_to_metric_families(metrics.exposition().decode())
        if fam.name == "riskd_venue_up"
        for s in fam.samples
    }
    assert up == dict.fromkeys(VENUES, 0.0)


async def test_venue_up_is_one_while_ok_or_degraded() -> None:
    """riskd_venue_up is 1 for ok and degraded venues, 0 for down ones, absent before any cycle."""
    metrics = Metrics()
    assert metrics.registry.get_sample_value("riskd_venue_up", {"venue": "binance"}) is None
    metrics.state.venue_health.update(binance="ok", bybit="degraded", hyperliquid="down")
    values = {v: metrics.registry.get_sample_value("riskd_venue_up", {"venue": v}) for v in VENUES}
    assert values == {"binance": 1.0, "bybit": 1.0, "hyperliquid": 0.0}


async def test_one_summary_line_per_venue_and_retries_at_debug(
    fx: FakeExchange, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Transient 503s on Binance's candles: at INFO and above the cycle logs exactly one line per venue
    (Binance's counts its retries); the retries themselves are DEBUG."""
    fx.inject("server_error", venue="binance", path="klines", status=503, times=2)
    sources = _sources(_settings(fx.base_url))
    try:
        with caplog.at_level(logging.DEBUG, logger="riskd"):
            report, _ = await _cycle(sources, tmp_path)
    finally:
        await _close(sources)
    assert not report.failed
    loud = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert sorted(r.getMessage().split(":")[0] for r in loud) == sorted(VENUES)
    binance = next(r.getMessage() for r in loud if r.getMessage().startswith("binance"))
    assert ", 2 retried, 0 failed, circuit closed" in binance
    assert sum("retry" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG) == 2
    assert report.venue_health == dict.fromkeys(VENUES, "ok")


@pytest.mark.parametrize("where", ["back-off", "in-flight"])
async def test_cancelling_a_fetch_mid_retry_ends_it_at_once(
    fx: FakeExchange, tmp_path: Path, where: str
) -> None:
    """A cycle cancelled (SIGTERM) while a request is in a 30 s back-off, or in flight to a venue that
    hangs, raises CancelledError within a second: neither tenacity nor an except swallows it."""
    if where == "back-off":
        fx.inject("server_error", venue="binance", status=503)
    else:
        fx.inject("hang", venue="binance")
    settings = _settings(fx.base_url, initial_backoff_s=30.0, max_backoff_s=30.0)
    answered = asyncio.Event()
    source = make_source("binance", settings, clock=lambda: NOW, hook=lambda *_: answered.set())
    sources = {"binance": source}
    try:
        task = asyncio.create_task(_cycle(sources, tmp_path))
        if where == "back-off":  # the first answer (a 503) is in: the 30 s back-off has begun
            await asyncio.wait_for(answered.wait(), timeout=5)
        await asyncio.sleep(0.3)
        assert not task.done()
        started = time.perf_counter()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)
        assert time.perf_counter() - started < 1.0
    finally:
        await _close(sources)


# ---- riskd once, offline ----------------------------------------------------------------------------


def _once(
    tmp_path: Path, url: str, redis_url: str, deadline_s: float
) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKD_")}
    env.update({f"RISKD_VENUES__{v.upper()}__API_URL": url for v in VENUES})
    env.update(
        {
            "RISKD_DATA_DIR": str(tmp_path),
            "RISKD_REDIS__URL": redis_url,
            "RISKD_METRICS__PORT": "0",
            "RISKD_REDIS__KEY_PREFIX": f"riskd-test-{tmp_path.name}:v1",
            "RISKD_UNIVERSE__SYMBOLS": json.dumps(SYMS),
            "RISKD_DAEMON__FETCH_DEADLINE_S": str(deadline_s),
            "RISKD_RETRY__INITIAL_BACKOFF_S": "0.2",
        }
    )
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "riskd", "once"], env=env, capture_output=True, text=True, timeout=120
    )
    return out, time.perf_counter() - started


@pytest.mark.parametrize("kind", ["closed-port", "hang"])
def test_riskd_once_offline_answers_within_a_minute_naming_each_venue(
    tmp_path: Path, redis_url: str, history: MarketHistory, kind: str
) -> None:
    """`riskd once` with every venue unreachable (a closed port, or a fake that hangs) answers within a
    minute with a stale, unknown snapshot (exit 3), and names each venue it could not reach in its log and
    its notes."""
    fx = None
    if kind == "hang":
        fx = FakeExchange(history, now=NOW).start_in_thread()
        fx.inject("hang")
    url = fx.base_url if fx else f"http://127.0.0.1:{_closed_port()}"
    try:
        out, took = _once(tmp_path, url, redis_url, deadline_s=3.0)
    finally:
        if fx is not None:
            fx.stop()
    assert out.returncode == 3, out.stderr[-3000:]  # EXIT_BLIND: the snapshot printed is not usable
    assert took < 60
    snapshot = json.loads(out.stdout.strip().splitlines()[-1])
    assert snapshot["data_quality"]["status"] == "stale"
    assert snapshot["state"] == "unknown"
    notes = " ".join(snapshot["data_quality"]["notes"])
    for venue in VENUES:
        assert f"{venue} funding:" in notes
        line = next(x for x in out.stderr.splitlines() if f"riskd.market: {venue}: " in x)
        assert ("ConnectionRefusedError" if kind == "closed-port" else "cut by the deadline") in line
