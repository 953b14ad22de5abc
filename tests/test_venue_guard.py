"""Venues are treated as they ask (issue 9): their waits, bans and outages, with real ccxt against the fake.

Every source here runs on a clock the test moves; the fake exchange answers on the same clock, so a
ban's end in Binance's body and a circuit's next probe are both read on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import pytest

from riskd.config import Settings, load_settings
from riskd.core.params import FragilityParams
from riskd.errors import CircuitOpen, SourceError, TemporaryError, VenueBanned
from riskd.market import MarketCache, fetch_recent
from riskd.market.sources import make_source
from riskd.sources import VenueSource
from riskd.store import HistoryStore
from riskd.testing.fake_exchange import FakeExchange
from riskd.testing.synthetic import MarketHistory, synthetic_market

SYMS = ["BTC", "ETH", "SOL", "XRP", "DOGE", "ADA"]
START = pd.Timestamp("2024-03-01", tz="UTC")
NOW = START + pd.Timedelta(hours=70, minutes=30)
HOUR = pd.Timedelta(hours=1)
T = NOW.floor("h")  # end (exclusive) of the closed candles at NOW


class Clock:
    """A clock the test moves; the sources and the fake exchange both read it."""

    def __init__(self, now: pd.Timestamp) -> None:
        self.now = now

    def __call__(self) -> pd.Timestamp:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += pd.Timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def history() -> MarketHistory:
    return synthetic_market(SYMS, START, hours=72, seed=2)


@pytest.fixture
async def fx(history: MarketHistory, clock: Clock) -> AsyncIterator[FakeExchange]:
    async with FakeExchange(history, now=clock) as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


def _settings(fx: FakeExchange, **retry: float) -> Settings:
    venue = {"api_url": fx.base_url, "rate_limit_ms": 1, "timeout_s": 2.0}
    policy = {
        "attempts": 4,
        "initial_backoff_s": 0.01,
        "max_backoff_s": 0.05,
        "jitter_s": 0.0,
        "max_wait_s": 60.0,
        "circuit_failures": 10,
        "circuit_cooldown_s": 60.0,
        **retry,
    }
    return load_settings(venues={v: venue for v in ("binance", "bybit", "hyperliquid")}, retry=policy)


def _source(venue: str, fx: FakeExchange, clock: Clock, **retry: float) -> VenueSource:
    return make_source(venue, _settings(fx, **retry), clock=clock)


def _times(fx: FakeExchange, venue: str, path: str | None = None) -> list[float]:
    return [r.at for r in fx.requests if r.venue == venue and (path is None or path in r.endpoint)]


# ---- the venue's wait -------------------------------------------------------------------------------


async def test_retry_after_seconds_is_waited_in_full(fx: FakeExchange, clock: Clock) -> None:
    """A 429 asking for 1 s is retried after at least 1 s, though the back-off ceiling is 0.05 s."""
    fx.inject("rate_limit", venue="binance", path="klines", times=1, retry_after=1)
    async with _source("binance", fx, clock) as source:
        frame = await source.fetch_ohlcv("BTC", T - 5 * HOUR, T)
    assert len(frame) == 5
    first, second = _times(fx, "binance", "klines")
    assert second - first >= 0.95


async def test_retry_after_http_date_is_waited_until_that_moment(fx: FakeExchange, clock: Clock) -> None:
    """A Retry-After given as an HTTP-date 2 s ahead (on the venue's clock) holds the retry 2 s."""
    fx.inject("rate_limit", venue="bybit", path="kline", times=1, retry_after=2, retry_after_date=True)
    async with _source("bybit", fx, clock) as source:
        frame = await source.fetch_ohlcv("ETH", T - 5 * HOUR, T)
    assert len(frame) == 5
    first, second = _times(fx, "bybit", "kline")
    assert second - first >= 1.9


async def test_a_short_wait_pauses_every_request_to_the_venue(fx: FakeExchange, clock: Clock) -> None:
    """A 429 on one symbol holds back the venue's other symbols too: the limit is the venue's, not the
    symbol's, so nothing else goes out during the wait."""
    fx.inject("rate_limit", venue="binance", path="klines", symbol="BTC", times=1, retry_after=1)
    async with _source("binance", fx, clock) as source:
        await source.markets()
        await source.fetch_ohlcv("BTC", T - 2 * HOUR, T)  # the 429, then the 1 s wait
        limited = next(r.at for r in fx.requests if r.status == 429)
        await asyncio.gather(*(source.fetch_ohlcv(s, T - 2 * HOUR, T) for s in SYMS[1:]))
    during = [t for t in _times(fx, "binance", "klines") if limited < t < limited + 0.95]
    assert during == []


@pytest.mark.parametrize("header", [True, False], ids=["retry-after-and-body", "body-only"])
async def test_a_ban_longer_than_allowed_fails_now_and_blocks_the_venue(
    fx: FakeExchange, clock: Clock, header: bool
) -> None:
    """Binance's 418 (3 h by header and body, or 120 s by the body alone against a 60 s max wait):
    the request fails at once with the wait known, nothing more goes to Binance (other symbols and
    datasets included) until the ban ends, then requests flow again. Bybit is untouched."""
    ban = 3 * 3600.0 if header else 120.0
    fx.inject("ban", venue="binance", path="klines", times=1, retry_after=ban if header else None)
    async with (
        _source("binance", fx, clock) as binance,
        _source("bybit", fx, clock) as bybit,
    ):
        await binance.markets()
        sent = fx.count(venue="binance")
        started = time.perf_counter()
        with pytest.raises(VenueBanned) as info:
            await binance.fetch_ohlcv("BTC", T - 5 * HOUR, T)
        assert time.perf_counter() - started < 1.0
        assert info.value.retry_after == pytest.approx(ban, abs=1)
        assert fx.count(venue="binance") == sent + 1  # never retried into the ban
        for attempt in (
            binance.fetch_ohlcv("ETH", T - 5 * HOUR, T),
            binance.fetch_funding("SOL", T - 5 * HOUR, T),
        ):
            with pytest.raises(VenueBanned):
                await attempt
        assert fx.count(venue="binance") == sent + 1
        assert binance.guard.health() == "down"
        assert "BANNED until" in binance.guard.summary()
        assert len(await bybit.fetch_ohlcv("BTC", T - 5 * HOUR, T)) == 5
        clock.advance(ban + 1)
        binance.begin_cycle()  # the next cycle
        assert len(await binance.fetch_ohlcv("ETH", T - 5 * HOUR, T)) == 5
        assert binance.guard.health() == "ok"


async def test_a_wait_past_the_cycle_deadline_fails_now(fx: FakeExchange, clock: Clock) -> None:
    """Inside a cycle with 2 s left, a 429 asking for 5 s (below max_wait_s) fails the request at once."""
    fx.inject("rate_limit", venue="hyperliquid", path="candleSnapshot", times=1, retry_after=5)
    async with _source("hyperliquid", fx, clock) as source:
        await source.markets()
        source.begin_cycle(deadline_s=2.0)
        started = time.perf_counter()
        with pytest.raises(VenueBanned):
            await source.fetch_ohlcv("BTC", T - 5 * HOUR, T)
        assert time.perf_counter() - started < 1.0
        assert source.guard.banned_until == NOW + pd.Timedelta(seconds=5)


# ---- the circuit breaker ----------------------------------------------------------------------------


async def _exchange_info(source: VenueSource) -> object:
    return await source.request("exchangeInfo", source.exchange.fapiPublicGetExchangeInfo)


async def _burst(source: VenueSource, n: int = 4) -> list[object]:
    return await asyncio.gather(*(_exchange_info(source) for _ in range(n)), return_exceptions=True)


async def test_the_circuit_opens_probes_once_and_closes_on_success(fx: FakeExchange, clock: Clock) -> None:
    """3 failed requests in a row open the circuit: requests then fail at once, nothing sent; after the
    cool-down exactly one probe goes out, its failure doubles the cool-down, and a probe that succeeds
    closes the circuit."""
    fault = fx.inject("server_error", venue="binance", status=503)
    async with _source("binance", fx, clock, circuit_failures=3, attempts=6) as source:
        with pytest.raises(TemporaryError) as first:
            await _exchange_info(source)
        assert not isinstance(first.value, CircuitOpen)
        assert fx.count(venue="binance") == 3  # the retries stop once the circuit opens
        assert (source.guard.state, source.guard.health()) == ("open", "down")
        assert all(isinstance(r, CircuitOpen) for r in await _burst(source))
        assert fx.count(venue="binance") == 3

        clock.advance(61)
        results = await _burst(source)
        assert fx.count(venue="binance") == 4  # one probe
        assert sum(isinstance(r, CircuitOpen) for r in results) == 3
        assert source.guard.open_until == clock.now + pd.Timedelta(seconds=120)
        assert "DOWN since" in source.guard.summary()
        assert "503" in source.guard.summary()

        fault.times = fault.fired  # the venue recovers
        clock.advance(61)
        assert all(isinstance(r, CircuitOpen) for r in await _burst(source))
        assert fx.count(venue="binance") == 4
        clock.advance(60)
        results = await _burst(source)
        assert sum(isinstance(r, CircuitOpen) for r in results) == 3  # the others raced the probe
        assert all(not isinstance(r, BaseException) for r in await _burst(source))
        assert source.guard.state == "closed"
        source.begin_cycle()  # the next cycle starts clean
        assert source.guard.health() == "ok"


async def test_a_needs_a_human_error_does_not_open_the_circuit(fx: FakeExchange, clock: Clock) -> None:
    """A venue that answers "bad request" is up: such errors never count towards opening the circuit."""
    async with _source("binance", fx, clock, circuit_failures=2) as source:
        for _ in range(4):
            with pytest.raises(SourceError) as info:
                await source.request(
                    "klines",
                    lambda: source.exchange.fapiPublicGetKlines({"symbol": "BTCUSDT", "limit": 5000}),
                )
            assert not isinstance(info.value, TemporaryError)
        assert source.guard.state == "closed"


# ---- one market-list load per cycle -----------------------------------------------------------------


async def _cycle(sources: dict[str, VenueSource], tmp_path: Path, **kw: object):
    cache = MarketCache(SYMS, FragilityParams())
    store = HistoryStore(tmp_path / "store")
    until = NOW.floor("h")
    return await fetch_recent(sources, store, cache, until=until, warm_start=until - 24 * HOUR, **kw)


async def test_a_failing_market_list_is_asked_once_per_cycle_not_per_symbol(
    fx: FakeExchange, clock: Clock, tmp_path: Path
) -> None:
    """Bybit's instrument list fails: one load (with its retries) per cycle for all six symbols, its
    failure remembered for the rest of the cycle and asked again next cycle."""
    fx.inject("server_error", venue="bybit", path="markets", status=502)
    async with _source("bybit", fx, clock, attempts=3) as source:
        report = await _cycle({"bybit": source}, tmp_path)
        per_load = 2  # ccxt asks for the trading and the pre-launch instruments at once
        assert fx.count(venue="bybit", path="instruments-info") == 3 * per_load
        assert fx.count(venue="bybit") == 3 * per_load
        assert "502" in report.failed[("bybit", "funding")]
        assert report.venue_health == {"bybit": "degraded"}
        await _cycle({"bybit": source}, tmp_path)
        assert fx.count(venue="bybit", path="instruments-info") == 6 * per_load


async def test_concurrent_symbols_share_one_market_list_load(
    fx: FakeExchange, clock: Clock, tmp_path: Path
) -> None:
    """Six symbols x three datasets at once, the first list load failing once: two list requests in
    all (the failure and its retry), and every symbol fetched."""
    fx.inject("server_error", venue="binance", path="markets", status=503, times=1)
    async with _source("binance", fx, clock) as source:
        report = await _cycle({"binance": source}, tmp_path)
    assert fx.count(venue="binance", path="exchangeInfo") == 2
    assert fx.count(venue="binance", path="fundingInfo") == 1
    assert not report.failed
    assert {(d, s) for d, _, s, _ in report.fetched} == {
        (d, s) for d in ("ohlcv", "funding", "open_interest") for s in SYMS
    }
    assert report.venue_health == {"binance": "ok"}
