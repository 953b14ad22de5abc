"""Backfill through the real ccxt clients against the loopback fake exchange (issue 2 acceptance)."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from riskd.config import DEFAULT_UNIVERSE, Settings
from riskd.market.backfill import backfill
from riskd.store import HistoryStore
from riskd.testing.fake_exchange import FakeExchange
from riskd.testing.synthetic import MarketHistory, synthetic_market
from tests.helpers import fake_settings

START = pd.Timestamp("2024-01-01", tz="UTC")
SWITCH = pd.Timestamp("2024-02-10", tz="UTC")
SYMBOLS = [s for s in DEFAULT_UNIVERSE]  # 16 symbols, FTM listed as S on the venues


def _history(days: int = 90, symbols: list[str] | None = None) -> MarketHistory:
    return synthetic_market(
        symbols or SYMBOLS,
        START,
        hours=24 * days,
        seed=7,
        funding_intervals={"DOGE": 4, "XRP": [(START, 8), (SWITCH, 4)]},
    )


def _fake(history: MarketHistory, **kw: object) -> FakeExchange:
    """The fake with its clock half-way through the history's last hour: that candle is still open,
    as a real venue's newest candle always is."""
    return FakeExchange(history, now=history.end - pd.Timedelta(minutes=30), **kw)


def _closed(history: MarketHistory) -> pd.Timestamp:
    """End (exclusive) of the candles closed at the fake's clock."""
    return history.end - pd.Timedelta(hours=1)


def _settings(tmp_path: Path, fx: FakeExchange, **retry: float) -> Settings:
    return fake_settings(tmp_path / "data", fx, retry={"attempts": 5, "max_backoff_s": 0.05, **retry})


async def _run(settings: Settings, fx: FakeExchange, **kw: object):
    store = HistoryStore(settings.store_dir)
    report = await backfill(settings, store, since=START, clock=lambda: fx.now, **kw)
    return store, report


def _ms(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out.index = out.index.as_unit("ms")
    return out


def _assert_same_candles(store: HistoryStore, history: MarketHistory, venue: str, symbol: str) -> None:
    got = store.read("ohlcv", venue, symbol)
    want = _ms(history.ohlcv[venue][symbol]).loc[: _closed(history) - pd.Timedelta(hours=1)]
    cols = ["open", "high", "low", "close", "volume"]
    pd.testing.assert_frame_equal(got[cols], want[cols], check_freq=False)
    if venue == "hyperliquid":  # the venue reports no quote volume
        assert got["quote_volume"].isna().all()
    else:
        pd.testing.assert_series_equal(got["quote_volume"], want["quote_volume"], check_freq=False)


def _store_bytes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.parquet"))
    }


@pytest.fixture(scope="module")
def history() -> MarketHistory:
    return _history()


async def test_full_backfill_equals_the_source_and_rerun_is_a_noop(
    tmp_path: Path, history: MarketHistory
) -> None:
    """16 symbols × 3 venues × 90 days land exactly as served; a second run writes nothing."""
    async with _fake(history, aliases={"FTM": "S"}) as fx:
        settings = _settings(tmp_path, fx)
        store, report = await _run(settings, fx)
        assert report.complete, report.failures
        for venue in ("binance", "bybit", "hyperliquid"):
            for symbol in SYMBOLS:
                _assert_same_candles(store, history, venue, symbol)
                got = store.read("funding", venue, symbol)
                want = _ms(history.funding[venue][symbol])
                want = want[want.index < _closed(history)]
                for col in ("rate", "interval_hours", "rate_per_hour"):
                    pd.testing.assert_series_equal(got[col], want[col], check_freq=False)
        # Binance keeps 30 days of open interest; what it serves must land exactly.
        oi = store.read("open_interest", "binance", "BTC")
        assert len(oi) == 29 * 24
        want = _ms(history.open_interest["binance"]["BTC"]).loc[oi.index]
        pd.testing.assert_frame_equal(oi, want, check_freq=False)
        before = _store_bytes(settings.store_dir)
        _, again = await _run(settings, fx)
    assert sum(r.rows for r in again.results) == 0
    assert _store_bytes(settings.store_dir) == before
    assert report.rows_by_venue()["binance"] > 16 * 90 * 24


async def test_funding_lands_on_one_per_hour_basis(tmp_path: Path, history: MarketHistory) -> None:
    """A 4 h symbol and one switching 8 h -> 4 h get the right interval per print on every venue."""
    async with _fake(history) as fx:
        settings = _settings(tmp_path, fx)
        store, report = await _run(settings, fx, symbols=["DOGE", "XRP", "BTC"], datasets=["funding"])
    assert report.complete
    for venue in ("binance", "bybit"):
        doge = store.read("funding", venue, "DOGE")
        assert set(doge["interval_hours"]) == {4.0}
        xrp = store.read("funding", venue, "XRP")
        assert set(xrp.loc[xrp.index < SWITCH, "interval_hours"]) == {8.0}
        assert set(xrp.loc[xrp.index > SWITCH, "interval_hours"]) == {4.0}
        spacing = xrp.index.to_series().diff().dt.total_seconds().div(3600).round(2)
        assert set(spacing[xrp.index > SWITCH + pd.Timedelta(hours=4)]) == {4.0}
    assert set(store.read("funding", "hyperliquid", "DOGE")["interval_hours"]) == {1.0}
    for venue in ("binance", "bybit", "hyperliquid"):
        f = store.read("funding", venue, "DOGE")
        assert (f["rate_per_hour"] == f["rate"] / f["interval_hours"]).all()
    # one basis: per-hour rates of the venues are of one magnitude though their intervals differ 1 h..8 h
    means = [
        store.read("funding", v, "BTC")["rate_per_hour"].mean() for v in ("binance", "bybit", "hyperliquid")
    ]
    assert max(means) / min(means) < 3


SMALL = ["BTC", "ETH", "SOL"]


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("rate_limit", {"times": 3, "retry_after": 0}),
        ("ban", {"times": 2, "retry_after": 0}),
        ("server_error", {"times": 3, "status": 502}),
        ("server_error", {"times": 2, "status": 500}),
        ("timeout", {"times": 2, "seconds": 5}),
        ("malformed", {"times": 2, "body": "truncated"}),
        ("malformed", {"times": 2, "body": "html"}),
        ("malformed", {"times": 2, "body": "empty"}),
        ("malformed", {"times": 2, "body": "cut"}),
        ("duplicate", {"times": 5}),
    ],
)
async def test_transient_faults_are_retried_and_the_result_is_exact(
    tmp_path: Path, kind: str, fields: dict, caplog: pytest.LogCaptureFixture
) -> None:
    """Each transient fault on every venue's candles: the backfill completes, equal to the source, retries logged."""
    history = _history(days=30, symbols=SMALL)
    async with _fake(history) as fx:
        for path in ("/fapi/v1/klines", "/v5/market/kline", "/info:candleSnapshot"):
            fx.inject(kind, path=path, **fields)
        settings = _settings(tmp_path, fx, **({"attempts": 5} if kind != "timeout" else {}))
        settings.venues.binance.timeout_s = settings.venues.bybit.timeout_s = 0.5
        settings.venues.hyperliquid.timeout_s = 0.5
        with caplog.at_level(logging.DEBUG, logger="riskd.sources"):  # retries are DEBUG, the summary INFO
            store, report = await _run(settings, fx, symbols=SMALL, datasets=["ohlcv"])
    assert report.complete, [r.error for r in report.failures]
    for venue in ("binance", "bybit", "hyperliquid"):
        for symbol in SMALL:
            _assert_same_candles(store, history, venue, symbol)
    if kind != "duplicate":
        assert any("retry" in r.message for r in caplog.records)


async def test_missing_candles_are_reported_exactly(tmp_path: Path) -> None:
    """Hours a venue never serves show up as exactly those gaps, nothing else."""
    history = _history(days=20, symbols=SMALL)
    holes = [START + pd.Timedelta(hours=h) for h in (100, 101, 102, 300)]
    async with _fake(history) as fx:
        fx.inject("missing", venue="binance", symbol="ETH", hours=holes)
        settings = _settings(tmp_path, fx)
        _, report = await _run(settings, fx, symbols=SMALL, datasets=["ohlcv"])
    assert report.complete
    gaps = {(t.venue, t.symbol): runs for t, runs in report.gaps.items()}
    assert gaps == {("binance", "ETH"): [(holes[0], holes[2]), (holes[3], holes[3])]}
    assert report.missing_hours_by_venue() == {"binance": 4}


async def test_stale_venue_shows_as_a_missing_tail(tmp_path: Path) -> None:
    """A venue answering as of 5 hours ago leaves the last 5 hours reported missing."""
    history = _history(days=10, symbols=SMALL)
    async with _fake(history) as fx:
        fx.inject("stale", venue="bybit", behind_hours=5)
        settings = _settings(tmp_path, fx)
        _, report = await _run(settings, fx, symbols=SMALL, datasets=["ohlcv"])
    end = _closed(history)
    for symbol in SMALL:
        runs = report.gaps[next(t for t in report.gaps if t.venue == "bybit" and t.symbol == symbol)]
        assert runs == [(end - pd.Timedelta(hours=5), end - pd.Timedelta(hours=1))]
    assert not any(t.venue != "bybit" for t in report.gaps)


async def test_a_venue_that_stays_down_is_reported_not_corrupted(tmp_path: Path) -> None:
    """Persistent 503s on one venue: the others complete; the failed ranges are named; a rerun finishes."""
    history = _history(days=10, symbols=SMALL)
    async with _fake(history) as fx:
        fault = fx.inject("server_error", venue="hyperliquid", path="candleSnapshot", status=503)
        settings = _settings(tmp_path, fx)
        store, report = await _run(settings, fx, symbols=SMALL, datasets=["ohlcv"])
        assert not report.complete
        failed = {(r.task.venue, r.task.symbol): r.failed for r in report.failures}
        assert set(failed) == {("hyperliquid", s) for s in SMALL}
        assert all(f == (START, _closed(history)) for f in failed.values())
        for symbol in SMALL:
            _assert_same_candles(store, history, "binance", symbol)
        fx.clear_faults()
        assert fault is not None
        _, again = await _run(settings, fx, symbols=SMALL, datasets=["ohlcv"])
    assert again.complete
    for symbol in SMALL:
        _assert_same_candles(store, history, "hyperliquid", symbol)


def test_killed_backfill_resumes_to_identical_bytes(tmp_path: Path) -> None:
    """`riskd backfill` killed with SIGKILL half-way, then rerun, ends byte-identical to an uninterrupted run."""
    history = _history(days=30, symbols=SMALL)
    with _fake(history, latency_ms=5) as fx:
        env = {**os.environ, **fx.env(), "RISKD_BACKFILL__CHUNK_HOURS": "24", "RISKD_LOG_LEVEL": "WARNING"}
        # loopback: no need for ccxt to pace requests as it must for the real venues' weight limits
        env.update({f"RISKD_VENUES__{v}__RATE_LIMIT_MS": "1" for v in ("BINANCE", "BYBIT", "HYPERLIQUID")})
        args = [
            sys.executable,
            "-m",
            "riskd",
            "backfill",
            "--since",
            str(START),
            "--until",
            str(_closed(history)),
            "--symbols",
            ",".join(SMALL),
            "--no-progress",
        ]

        def run(data: Path, kill_after_files: int | None = None) -> int:
            proc = subprocess.Popen(args, env={**env, "RISKD_DATA_DIR": str(data)}, stdout=subprocess.DEVNULL)
            if kill_after_files is None:
                return proc.wait(timeout=240)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                if len(list((data / "store").rglob("*.parquet"))) >= kill_after_files:
                    break
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            return proc.returncode

        assert run(tmp_path / "killed", kill_after_files=6) == -signal.SIGKILL
        partial = _store_bytes(tmp_path / "killed" / "store")
        assert partial  # it had written something before it died
        assert run(tmp_path / "killed") == 0
        assert run(tmp_path / "clean") == 0
    assert _store_bytes(tmp_path / "killed" / "store") == _store_bytes(tmp_path / "clean" / "store")


async def test_current_funding_of_every_symbol_in_one_call_per_venue(tmp_path: Path) -> None:
    """The bulk call (premiumIndex, tickers, metaAndAssetCtxs) gives every symbol's live rate on one basis."""
    from riskd.market.sources import make_source

    history = _history(days=5, symbols=["BTC", "ETH", "DOGE"])
    async with _fake(history) as fx:
        settings = _settings(tmp_path, fx)
        frames = {}
        for venue in ("binance", "bybit", "hyperliquid"):
            source = make_source(venue, settings, clock=lambda: fx.now)
            try:
                await source.markets()  # loading markets is its own (cached) step
                before = len(fx.requests)
                frames[venue] = await source.fetch_current_funding()
                calls = [r.endpoint for r in fx.requests[before:]]
            finally:
                await source.close()
            bulk = [c for c in calls if any(k in c for k in ("premiumIndex", "tickers", "metaAndAssetCtxs"))]
            assert len(bulk) == 1, calls  # one call for all symbols
    for venue, frame in frames.items():
        assert {"BTC", "ETH", "DOGE"} <= set(frame.index), venue
        assert (frame["rate_per_hour"] == frame["rate"] / frame["interval_hours"]).all()
    assert frames["hyperliquid"].loc["BTC", "interval_hours"] == 1.0
    assert frames["binance"].loc["BTC", "interval_hours"] == 8.0


async def test_symbol_not_listed_on_a_venue_is_skipped_not_fatal(tmp_path: Path) -> None:
    """A delisted or never-listed asset is reported as not listed; the rest completes."""
    history = _history(days=5, symbols=["BTC", "ETH"])
    async with _fake(history) as fx:
        settings = _settings(tmp_path, fx)
        store, report = await _run(settings, fx, symbols=["BTC", "ETH", "LUNA"], datasets=["ohlcv"])
    assert report.complete
    unlisted = {(r.task.venue, r.task.symbol) for r in report.results if not r.listed}
    assert unlisted == {(v, "LUNA") for v in ("binance", "bybit", "hyperliquid")}
    assert len(store.read("ohlcv", "binance", "ETH")) == 5 * 24 - 1
