"""The fake exchange answers the REAL ccxt clients as the venues do, and its faults bite as intended.

Also covers the synthetic market it serves (planted truths, data contract) and ``api_urls``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async
import numpy as np
import pandas as pd
import pytest

from riskd.sources.endpoints import CCXT_CLASSES, api_urls
from riskd.testing.fake_exchange import FakeExchange, Fault, VenueLimits
from riskd.testing.synthetic import FUNDING_COLUMNS, OHLCV_COLUMNS, MarketHistory, synthetic_market

SYMBOLS = ["BTC", "ETH", "DOGE", "XRP"]
START = pd.Timestamp("2024-01-01", tz="UTC")
SWITCH = pd.Timestamp("2024-01-20", tz="UTC")  # XRP's funding goes from 8 h to 4 h here
CASCADE = pd.Timestamp("2024-01-15 13:00", tz="UTC")
NOW = pd.Timestamp("2024-02-09 10:30", tz="UTC")  # inside the history: 10:00 is the open candle
OPEN_HOUR = NOW.floor("h")
UNIFIED = {"binance": "{}/USDT:USDT", "bybit": "{}/USDT:USDT", "hyperliquid": "{}/USDC:USDC"}


def ms(t: pd.Timestamp) -> int:
    return t.value // 1_000_000


def unified(base: str, venue: str) -> str:
    return UNIFIED[venue].format(base)


def make_history(seed: int = 7, cascades: bool = True) -> MarketHistory:
    return synthetic_market(
        SYMBOLS,
        START,
        hours=24 * 40,
        seed=seed,
        funding_intervals={"DOGE": 4, "XRP": [(START, 8), (SWITCH, 4)]},
        cascades=[(CASCADE, 0.2, 8.0, ["ETH"])] if cascades else [],
        open_interest_venues=("binance", "bybit"),
    )


@pytest.fixture(scope="module")
def history() -> MarketHistory:
    return make_history()


@pytest.fixture
async def fx(history: MarketHistory) -> AsyncIterator[FakeExchange]:
    async with FakeExchange(history, now=NOW) as server:
        yield server


@contextlib.asynccontextmanager
async def client(venue: str, fx: FakeExchange, **config: object) -> AsyncIterator[ccxt_async.Exchange]:
    exchange = getattr(ccxt_async, CCXT_CLASSES[venue])({"enableRateLimit": False, **config})
    exchange.urls["api"] = api_urls(venue, fx.base_url)
    try:
        yield exchange
    finally:
        await exchange.close()


def expected_candles(
    history: MarketHistory, venue: str, base: str, since: pd.Timestamp, n: int
) -> list[list]:
    df = history.ohlcv[venue][base]
    rows = df.loc[df.index >= since].head(n)
    cols = ["open", "high", "low", "close", "volume"]
    return [[ms(t), *map(float, r)] for t, r in zip(rows.index, rows[cols].to_numpy(), strict=True)]


# --- api_urls ----------------------------------------------------------------------------------


@pytest.mark.parametrize("venue", ["binance", "bybit", "hyperliquid", "okx"])
def test_api_urls_rebase_every_ccxt_url(venue: str) -> None:
    """Every key of the class's own urls['api'] points at the base URL, so nothing reaches the internet."""
    defaults = getattr(ccxt_async, CCXT_CLASSES[venue])().urls["api"]
    urls = api_urls(venue, "http://127.0.0.1:9/")
    assert set(urls) == set(defaults)
    assert all(u.startswith("http://127.0.0.1:9") and "{" not in u for u in urls.values())
    assert all(
        not any(h in u for h in ("binance.com", "bybit.com", "hyperliquid.xyz", "okx.com"))
        for u in urls.values()
    )


def test_api_urls_keep_paths_and_refuse_nonsense() -> None:
    """Paths survive the rebase; an unknown venue or a relative URL is refused."""
    assert api_urls("binance", "http://h:1")["fapiData"] == "http://h:1/futures/data"
    assert api_urls("hyperliquid", "http://h:1")["public"] == "http://h:1"
    with pytest.raises(ValueError, match="unknown venue"):
        api_urls("ftx", "http://h:1")
    with pytest.raises(ValueError, match="absolute URL"):
        api_urls("bybit", "127.0.0.1:8900")


# --- markets, candles, funding, open interest ----------------------------------------------------


@pytest.mark.parametrize("venue", ["binance", "bybit", "hyperliquid"])
async def test_load_markets_lists_the_universe(fx: FakeExchange, venue: str) -> None:
    """load_markets parses every listed perpetual and calls no endpoint the fake lacks."""
    async with client(venue, fx) as ex:
        markets = await ex.load_markets()
    assert {unified(b, venue) for b in SYMBOLS} <= set(markets)
    assert all(markets[unified(b, venue)]["swap"] for b in SYMBOLS)
    assert fx.count(venue=venue) > 0
    assert fx.count(status=404) == 0


async def test_bybit_instruments_are_paged_with_a_cursor(fx: FakeExchange, history: MarketHistory) -> None:
    """ccxt follows Bybit's nextPageCursor, so markets split over pages all load."""
    async with client("bybit", fx) as ex:
        await ex.load_markets()
    one_page = fx.count(path="/v5/market/instruments-info")
    async with FakeExchange(history, now=NOW, limits=VenueLimits(bybit_instruments=3)) as server:
        async with client("bybit", server) as ex:
            markets = await ex.load_markets()
        assert {unified(b, "bybit") for b in SYMBOLS} <= set(markets)
        assert markets["DOGE/USDT:USDT"]["info"]["fundingInterval"] == 240
        assert server.count(path="/v5/market/instruments-info") == one_page + 1  # 4 linear markets, 3 a page


@pytest.mark.parametrize("venue", ["binance", "hyperliquid"])
async def test_fetch_ohlcv_returns_the_synthetic_candles(
    fx: FakeExchange, history: MarketHistory, venue: str
) -> None:
    """Closed candles from `since` come back value for value, in order."""
    since = OPEN_HOUR - pd.Timedelta(hours=48)
    async with client(venue, fx) as ex:
        got = await ex.fetch_ohlcv(unified("ETH", venue), "1h", ms(since), 24)
    assert got == expected_candles(history, venue, "ETH", since, 24)


async def test_bybit_ohlcv_with_an_exact_window_matches(fx: FakeExchange, history: MarketHistory) -> None:
    """Bybit candles match when the window [since, until] holds no more than `limit` rows."""
    since = OPEN_HOUR - pd.Timedelta(hours=48)
    async with client("bybit", fx) as ex:
        got = await ex.fetch_ohlcv(
            "ETH/USDT:USDT", "1h", ms(since), 24, {"until": ms(since) + 23 * 3_600_000}
        )
    assert got == expected_candles(history, "bybit", "ETH", since, 24)


async def test_bybit_kline_returns_the_last_limit_rows_of_the_window(fx: FakeExchange) -> None:
    """Bybit's trap: with only `since`, the page is the newest `limit` candles up to now, newest first."""
    since = OPEN_HOUR - pd.Timedelta(hours=100)
    async with client("bybit", fx) as ex:
        got = await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", ms(since), 10)
    assert [c[0] for c in got] == [ms(OPEN_HOUR) - h * 3_600_000 for h in range(9, -1, -1)]
    url = (
        f"{fx.base_url}/v5/market/kline?category=linear&symbol=BTCUSDT&interval=60&start={ms(since)}&limit=3"
    )
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        raw = (await resp.json())["result"]["list"]
    assert [int(r[0]) for r in raw] == sorted((int(r[0]) for r in raw), reverse=True)


async def test_the_open_candle_is_served_partially(fx: FakeExchange, history: MarketHistory) -> None:
    """Like the venues, the still-open hour is served with partial values the client must drop."""
    async with client("binance", fx) as ex:
        got = await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", ms(OPEN_HOUR - pd.Timedelta(hours=2)), 10)
    final = history.ohlcv["binance"]["BTC"].loc[OPEN_HOUR]
    assert [c[0] for c in got][-1] == ms(OPEN_HOUR)
    assert got[:-1] == expected_candles(history, "binance", "BTC", OPEN_HOUR - pd.Timedelta(hours=2), 2)
    assert math.isclose(got[-1][5], final["volume"] * 0.5, rel_tol=1e-3)
    assert got[-1][1] == final["open"]
    assert got[-1][4] != final["close"]


@pytest.mark.parametrize("venue", ["binance", "bybit", "hyperliquid"])
async def test_funding_rate_history_returns_the_prints(
    fx: FakeExchange, history: MarketHistory, venue: str
) -> None:
    """Funding prints come back with their exact (jittered) times and rates."""
    since = NOW - pd.Timedelta(days=5)
    async with client(venue, fx) as ex:
        got = await ex.fetch_funding_rate_history(unified("BTC", venue), ms(since), 6)
    prints = history.funding[venue]["BTC"]
    by_ms = dict(zip((ms(t) for t in prints.index), prints["rate"], strict=True))
    assert len(got) == 6
    assert all(by_ms[r["timestamp"]] == r["fundingRate"] for r in got)
    if venue != "bybit":  # Bybit's window is end-anchored: ccxt's since+limit window may skip the first
        first = prints.index[prints.index >= since][0]
        assert got[0]["timestamp"] == ms(first)


async def test_binance_funding_interval_switch_shows_in_print_spacing(fx: FakeExchange) -> None:
    """XRP prints 8 h apart until the switch, then 4 h apart; fundingInfo lists only non-8 h symbols."""
    async with client("binance", fx) as ex:
        got = await ex.fetch_funding_rate_history("XRP/USDT:USDT", ms(SWITCH - pd.Timedelta(hours=16)), 5)
        intervals = await ex.fetch_funding_intervals()
    hours = np.diff([pd.Timestamp(r["timestamp"], unit="ms").floor("h").value for r in got]) / 3.6e12
    assert hours.tolist() == [8, 8, 4, 4]
    assert {k: v["interval"] for k, v in intervals.items()} == {"DOGE/USDT:USDT": "4h", "XRP/USDT:USDT": "4h"}


@pytest.mark.parametrize("venue", ["binance", "bybit", "hyperliquid"])
async def test_fetch_funding_rates_in_bulk(fx: FakeExchange, venue: str) -> None:
    """One call returns every symbol's live predicted rate (and, off Hyperliquid, the next print time)."""
    async with client(venue, fx) as ex:
        rates = await ex.fetch_funding_rates()
    assert {unified(b, venue) for b in SYMBOLS} <= set(rates)
    assert all(isinstance(rates[unified(b, venue)]["fundingRate"], float) for b in SYMBOLS)
    if venue != "hyperliquid":  # ccxt stamps Hyperliquid's next funding from the local clock
        assert rates[unified("BTC", venue)]["fundingTimestamp"] == ms(
            pd.Timestamp("2024-02-09 16:00", tz="UTC")
        )
        assert rates[unified("DOGE", venue)]["fundingTimestamp"] == ms(
            pd.Timestamp("2024-02-09 12:00", tz="UTC")
        )


async def test_binance_open_interest_history_and_its_30_day_retention(
    fx: FakeExchange, history: MarketHistory
) -> None:
    """OI history matches the synthetic values; a `since` older than 30 days is refused like the venue does."""
    since = NOW.floor("h") - pd.Timedelta(hours=10)
    async with client("binance", fx) as ex:
        got = await ex.fetch_open_interest_history(
            "BTC/USDT:USDT", "1h", ms(since), 5, {"until": ms(since) + 4 * 3_600_000}
        )
        with pytest.raises(ccxt.BadRequest):
            await ex.fetch_open_interest_history("BTC/USDT:USDT", "1h", ms(NOW - pd.Timedelta(days=31)), 5)
    oi = history.open_interest["binance"]["BTC"].loc[since:].head(5)
    assert [r["timestamp"] for r in got] == [ms(t) for t in oi.index]
    assert [r["openInterestAmount"] for r in got] == oi["open_interest"].tolist()
    assert [r["openInterestValue"] for r in got] == oi["open_interest_value"].tolist()


async def test_bybit_open_interest_history(fx: FakeExchange, history: MarketHistory) -> None:
    """Bybit's open-interest endpoint (newest first, end-anchored) serves the synthetic values."""
    since = NOW.floor("h") - pd.Timedelta(hours=10)
    async with client("bybit", fx) as ex:
        got = await ex.fetch_open_interest_history(
            "BTC/USDT:USDT", "1h", ms(since), 5, {"until": ms(since) + 4 * 3_600_000}
        )
    oi = history.open_interest["bybit"]["BTC"].loc[since:].head(5)
    assert [(r["timestamp"], r["openInterestAmount"]) for r in got] == list(
        zip(map(ms, oi.index), oi["open_interest"], strict=True)
    )


async def test_binance_limit_above_the_venue_maximum_is_refused(fx: FakeExchange) -> None:
    """klines with limit > 1500 gets Binance's -1130 error, surfaced by ccxt as BadRequest."""
    async with client("binance", fx) as ex:
        with pytest.raises(ccxt.BadRequest):
            await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", ms(START), None, {"limit": 1501})


async def test_hyperliquid_keeps_only_the_most_recent_candles(history: MarketHistory) -> None:
    """Only the newest `hyperliquid_candle_retention` candles exist, whatever `since` asks for."""
    limits = VenueLimits(hyperliquid_candle_retention=100)
    async with FakeExchange(history, now=NOW, limits=limits) as server, client("hyperliquid", server) as ex:
        got = await ex.fetch_ohlcv("BTC/USDC:USDC", "1h", ms(START), 1000)
    assert len(got) == 100
    assert got[0][0] == ms(OPEN_HOUR - pd.Timedelta(hours=99))
    assert got[-1][0] == ms(OPEN_HOUR)


async def test_hyperliquid_pages_are_capped(history: MarketHistory) -> None:
    """candleSnapshot stops at its per-call cap and fundingHistory at 500 rows, both from startTime."""
    limits = VenueLimits(hyperliquid_candles_per_call=50)
    async with FakeExchange(history, now=NOW, limits=limits) as server, client("hyperliquid", server) as ex:
        candles = await ex.fetch_ohlcv("BTC/USDC:USDC", "1h", ms(START), 1000)
        prints = await ex.fetch_funding_rate_history("BTC/USDC:USDC", ms(START))
    assert len(candles) == 50
    assert candles[0][0] == ms(START)
    assert len(prints) == 500
    assert pd.Timestamp(prints[0]["timestamp"], unit="ms", tz="UTC").floor("h") == START


async def test_hyperliquid_unknown_query_gets_422(fx: FakeExchange) -> None:
    """An /info body the venue cannot deserialize gets HTTP 422, as on the real API."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{fx.base_url}/info", json={"type": "nope"}) as resp:
            assert resp.status == 422
        async with session.post(f"{fx.base_url}/info", data=b"{not json") as resp:
            assert resp.status == 422


async def test_aliases_list_a_renamed_asset_under_its_new_name(history: MarketHistory) -> None:
    """With aliases {"ETH": "ETH2"} the venues list ETH2, serving ETH's history (a rebrand like FTM -> S)."""
    async with (
        FakeExchange(history, now=NOW, aliases={"ETH": "ETH2"}) as server,
        client("binance", server) as ex,
    ):
        markets = await ex.load_markets()
        got = await ex.fetch_ohlcv("ETH2/USDT:USDT", "1h", ms(START), 3)
    assert "ETH2/USDT:USDT" in markets
    assert "ETH/USDT:USDT" not in markets
    assert got == expected_candles(history, "binance", "ETH", START, 3)


async def test_hand_made_frames_are_served_as_given() -> None:
    """MarketHistory.from_frames lets recorded or edge-case data be served unchanged (unrounded floats too)."""
    index = pd.date_range("2024-03-01", periods=3, freq="h", tz="UTC", name="ts")
    candles = pd.DataFrame(
        {
            "open": [1.1, 2.2, 3.3],
            "high": [2.0, 3.0, 4.0],
            "low": [1.0, 2.0, 3.0],
            "close": [2.2, 3.3, 1 / 3],
        },
        index=index,
    ).assign(volume=[10.0, 20.0, 1e-7], quote_volume=[11.0, 22.0, 33.0])
    history = MarketHistory.from_frames({"binance": {"PEPE": candles}})
    async with FakeExchange(history) as server, client("binance", server) as ex:
        got = await ex.fetch_ohlcv("PEPE/USDT:USDT", "1h", ms(index[0]), 10)
    assert history.end == index[-1] + pd.Timedelta(hours=1)
    assert got == [[ms(t), *r] for t, r in zip(index, candles.iloc[:, :5].to_numpy().tolist(), strict=True)]


async def test_paths_no_venue_serves_are_404_and_logged(fx: FakeExchange) -> None:
    """A call the fake does not implement fails loudly and shows in the log (so gaps get noticed)."""
    async with aiohttp.ClientSession() as session, session.get(f"{fx.base_url}/fapi/v1/aggTrades") as resp:
        assert resp.status == 404
    assert fx.count(venue="binance", path="/fapi/v1/aggTrades", status=404) == 1


# --- the clock ------------------------------------------------------------------------------------


async def test_clock_hides_the_future_and_advances(fx: FakeExchange) -> None:
    """Nothing stamped after `now` is served; advance() reveals the next hour."""
    fx.now = pd.Timestamp("2024-01-10 05:00", tz="UTC")
    async with client("binance", fx) as ex:
        before = await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", None, 3)
        fx.advance(1)
        after = await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", None, 3)
        prints = await ex.fetch_funding_rate_history("BTC/USDT:USDT", None, 1000)
    assert before[-1][0] == ms(pd.Timestamp("2024-01-10 05:00", tz="UTC"))
    assert after[-1][0] == ms(pd.Timestamp("2024-01-10 06:00", tz="UTC"))
    assert max(p["timestamp"] for p in prints) <= ms(fx.now)


# --- faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("venue", "error"),
    [
        ("binance", ccxt.DDoSProtection),
        ("bybit", ccxt.RateLimitExceeded),
        ("hyperliquid", ccxt.RateLimitExceeded),
    ],
)
async def test_rate_limit_fault_raises_the_ccxt_rate_error(fx: FakeExchange, venue: str, error: type) -> None:
    """A 429 surfaces as ccxt's rate error (DDoSProtection on Binance, RateLimitExceeded elsewhere)."""
    fx.inject("rate_limit", venue=venue, times=1)
    async with client(venue, fx) as ex:
        with pytest.raises(error):
            await ex.load_markets()
    assert fx.count(venue=venue, status=429, fault="rate_limit") == 1


async def test_rate_limit_and_ban_carry_retry_after(fx: FakeExchange) -> None:
    """429 and 418 answers carry a Retry-After header for the client's back-off."""
    fx.inject("rate_limit", path="/fapi/v1/time", times=1, retry_after=7)
    fx.inject("ban", path="/fapi/v1/ping", times=1, retry_after=120)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fx.base_url}/fapi/v1/time") as resp:
            assert (resp.status, resp.headers["Retry-After"]) == (429, "7")
        async with session.get(f"{fx.base_url}/fapi/v1/ping") as resp:
            assert (resp.status, resp.headers["Retry-After"]) == (418, "120")
    async with client("binance", fx) as ex:
        fx.inject("ban", venue="binance", times=1)
        with pytest.raises(ccxt.DDoSProtection):
            await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", None, 3)


async def test_retry_after_as_http_date_and_ban_body_follow_the_fake_clock(fx: FakeExchange) -> None:
    """Retry-After can be an HTTP-date (the fake's now + retry_after), and Binance's 418 body names the
    ban's end in ms on the fake's clock, ``retry_after`` from now: what a client must honour."""
    import email.utils
    import json

    fx.inject("rate_limit", path="/fapi/v1/time", times=1, retry_after=90, retry_after_date=True)
    fx.inject("ban", path="/fapi/v1/ping", times=1, retry_after=7200)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fx.base_url}/fapi/v1/time") as resp:
            when = email.utils.parsedate_to_datetime(resp.headers["Retry-After"])
        async with session.get(f"{fx.base_url}/fapi/v1/ping") as resp:
            body = json.loads(await resp.text())
    assert pd.Timestamp(when) == NOW.floor("s") + pd.Timedelta(seconds=90)
    assert f"banned until {ms(NOW) + 7_200_000}" in body["msg"]


@pytest.mark.parametrize("venue", ["binance", "bybit", "hyperliquid"])
async def test_markets_scope_fails_each_venues_market_list_only(fx: FakeExchange, venue: str) -> None:
    """``path="markets"`` breaks what ccxt's load_markets asks on every venue, and nothing else."""
    fx.inject("server_error", path="markets", status=503)
    async with client(venue, fx) as ex:
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await ex.load_markets()
        if venue != "hyperliquid":  # Hyperliquid's funding rates come from the market-list endpoint itself
            since = ms(NOW - pd.Timedelta(hours=5))
            ex.markets = {}  # raw candle endpoints need no market list
            method = ex.fapiPublicGetKlines if venue == "binance" else ex.publicGetV5MarketKline
            params = {
                "symbol": "BTCUSDT",
                "interval": "1h" if venue == "binance" else "60",
                "startTime": since,
            }
            assert await method({**params, **({"category": "linear"} if venue == "bybit" else {})})
    assert fx.count(venue=venue, status=503) >= 1


async def test_hang_holds_until_the_server_stops(history: MarketHistory) -> None:
    """A hung venue accepts the request and never answers; stopping the fake releases it at once."""
    async with FakeExchange(history, now=NOW) as server:
        server.inject("hang", venue="binance")
        async with aiohttp.ClientSession() as session:
            request = asyncio.ensure_future(session.get(f"{server.base_url}/fapi/v1/exchangeInfo"))
            done, _ = await asyncio.wait([request], timeout=1.0)
            assert not done
            started = time.perf_counter()
            await server.close()
            with contextlib.suppress(aiohttp.ClientError):
                (await request).close()
    assert time.perf_counter() - started < 3


@pytest.mark.parametrize("status", [500, 502, 503])
@pytest.mark.parametrize("venue", ["binance", "hyperliquid"])
async def test_server_error_fault_is_exchange_not_available(
    fx: FakeExchange, venue: str, status: int
) -> None:
    """5xx gateway pages become ccxt.ExchangeNotAvailable (a NetworkError, so retryable)."""
    fx.inject("server_error", venue=venue, status=status, times=1)
    async with client(venue, fx) as ex:
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await ex.load_markets()
    assert fx.count(status=status) == 1


async def test_timeout_fault_trips_the_client_timeout(fx: FakeExchange) -> None:
    """A held request raises ccxt.RequestTimeout after the client's own timeout, not the hold."""
    fx.inject("timeout", path="klines", seconds=10, times=1)
    async with client("binance", fx, timeout=300) as ex:
        await ex.load_markets()
        started = time.perf_counter()
        with pytest.raises(ccxt.RequestTimeout):
            await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", None, 3)
    assert time.perf_counter() - started < 3


async def test_malformed_json_is_not_raised_by_ccxt(fx: FakeExchange) -> None:
    """A 200 with broken JSON passes ccxt silently (garbage rows or nothing): adapters must validate."""
    async with client("binance", fx) as ex:
        await ex.load_markets()
        fx.inject("malformed", path="klines", times=1)
        garbage = await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", None, 3)
        fx.inject("malformed", path="premiumIndex", body="html", times=1)
        nothing = await ex.fetch_funding_rates()
    assert garbage
    assert all(None in row for row in garbage)
    assert nothing == {}
    assert fx.count(fault="malformed", status=200) == 2


async def test_connection_cut_mid_body_is_a_ccxt_error(fx: FakeExchange) -> None:
    """A body cut short of its Content-Length raises ccxt.ExchangeError (not a NetworkError!)."""
    async with client("bybit", fx) as ex:
        await ex.load_markets()
        fx.inject("malformed", venue="bybit", body="cut", times=1)
        with pytest.raises(ccxt.ExchangeError) as info:
            await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", None, 3)
    assert not isinstance(info.value, ccxt.NetworkError)


async def test_fault_fires_the_next_n_times_then_heals(fx: FakeExchange) -> None:
    """times=2: two failures, then the same call succeeds; the log counts both kinds."""
    fx.inject("rate_limit", venue="bybit", path="kline", times=2)
    async with client("bybit", fx) as ex:
        await ex.load_markets()
        for _ in range(2):
            with pytest.raises(ccxt.RateLimitExceeded):
                await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", None, 3)
        assert len(await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", None, 3)) == 3
    assert fx.count(path="/v5/market/kline", fault="rate_limit") == 2
    assert fx.count(path="/v5/market/kline", status=200) == 1


async def test_probabilistic_faults_replay_with_the_seed(history: MarketHistory) -> None:
    """probability uses a seeded RNG: the same seed fails the same requests, some but not all."""

    async def pattern(seed: int) -> list[int]:
        async with FakeExchange(history, now=NOW, seed=seed) as server, aiohttp.ClientSession() as s:
            server.inject("server_error", probability=0.5)
            out = []
            for _ in range(20):
                async with s.get(f"{server.base_url}/fapi/v1/ping") as resp:
                    out.append(resp.status)
            return out

    first, again, other = await pattern(3), await pattern(3), await pattern(4)
    assert first == again
    assert first != other
    assert 0 < first.count(503) < 20


async def test_fault_scopes_by_venue_path_and_symbol(fx: FakeExchange) -> None:
    """A fault scoped to one venue, path or symbol leaves every other request alone."""
    fx.inject("server_error", venue="bybit")
    fx.inject("server_error", venue="binance", path="klines", symbol="ETH")
    async with client("binance", fx) as ex:
        await ex.load_markets()
        assert len(await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", None, 2)) == 2
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await ex.fetch_ohlcv("ETH/USDT:USDT", "1h", None, 2)
    assert fx.count(venue="binance", status=503) == 1


async def test_missing_and_duplicate_candles(fx: FakeExchange) -> None:
    """`missing` drops the given hours; `duplicate` repeats rows, and ccxt passes both through."""
    gone, twice = OPEN_HOUR - pd.Timedelta(hours=3), OPEN_HOUR - pd.Timedelta(hours=5)
    fx.inject("missing", path="klines", hours=[gone])
    fx.inject("duplicate", path="klines", hours=[twice.isoformat()])
    async with client("binance", fx) as ex:
        got = [
            c[0]
            for c in await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", ms(OPEN_HOUR - pd.Timedelta(hours=6)), 7)
        ]
    assert ms(gone) not in got
    assert got.count(ms(twice)) == 2
    assert len(got) == 7


async def test_stale_fault_serves_an_older_now(fx: FakeExchange) -> None:
    """`stale` answers as if the clock were behind: the newest candle is hours old."""
    fx.inject("stale", venue="hyperliquid", behind_hours=5)
    async with client("hyperliquid", fx) as ex:
        got = await ex.fetch_ohlcv("BTC/USDC:USDC", "1h", ms(OPEN_HOUR - pd.Timedelta(hours=10)))
    assert got[-1][0] == ms(OPEN_HOUR - pd.Timedelta(hours=5))


async def test_latency_fault_delays_answers(fx: FakeExchange) -> None:
    """`latency` adds its milliseconds to every matching request."""
    fx.inject("latency", path="/fapi/v1/ping", latency_ms=200)
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.get(f"{fx.base_url}/fapi/v1/ping") as resp:
            assert resp.status == 200
    assert time.perf_counter() - started >= 0.19


def test_fault_rejects_unknown_kinds_and_fields() -> None:
    """A typo in a fault switch is an error, not a silently inactive fault."""
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault(kind="ratelimit")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown fault field"):
        Fault.from_dict({"kind": "timeout", "secs": 3})


async def test_control_endpoint_switches_faults_and_clock(fx: FakeExchange) -> None:
    """Faults and the clock can be flipped over HTTP (for `riskd fake-exchange` users)."""
    async with aiohttp.ClientSession() as s:
        async with s.post(
            f"{fx.base_url}/_control/faults", json=[{"kind": "server_error", "venue": "binance"}]
        ) as r:
            assert r.status == 200
            assert (await r.json())[0]["status"] == 503
        async with s.get(f"{fx.base_url}/fapi/v1/ping") as r:
            assert r.status == 503
        async with s.delete(f"{fx.base_url}/_control/faults") as r:
            assert r.status == 200
        async with s.get(f"{fx.base_url}/fapi/v1/ping") as r:
            assert r.status == 200
        async with s.post(f"{fx.base_url}/_control/faults", json={"kind": "nope"}) as r:
            assert r.status == 400
        async with s.post(f"{fx.base_url}/_control/clock", json={"now": "2024-01-05T03:00:00Z"}) as r:
            assert (await r.json())["now_ms"] == ms(pd.Timestamp("2024-01-05 03:00", tz="UTC"))
        async with s.get(f"{fx.base_url}/_control/stats") as r:
            stats = await r.json()
    assert {
        "venue": "binance",
        "endpoint": "/fapi/v1/ping",
        "status": 503,
        "fault": "server_error",
        "count": 1,
    } in stats
    assert fx.now == pd.Timestamp("2024-01-05 03:00", tz="UTC")


# --- sync use and the CLI -------------------------------------------------------------------------


def test_start_in_thread_serves_sync_ccxt(history: MarketHistory) -> None:
    """From sync code the server runs in a thread; ccxt's sync client works against it."""
    with FakeExchange(history, now=NOW) as server:
        exchange = ccxt.binanceusdm({"enableRateLimit": False})
        exchange.urls["api"] = api_urls("binance", server.base_url)
        candles = exchange.fetch_ohlcv("BTC/USDT:USDT", "1h", ms(START), 5)
        url = server.base_url
    assert candles == expected_candles(history, "binance", "BTC", START, 5)
    with pytest.raises(urllib.error.URLError, match="refused"):
        urllib.request.urlopen(f"{url}/fapi/v1/ping", timeout=1)


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
def test_cli_prints_the_env_and_stops_on_ctrl_c() -> None:
    """`riskd fake-exchange` serves the universe, prints the env vars to use, and exits 0 on Ctrl-C."""
    env = {**os.environ, "RISKD_UNIVERSE__SYMBOLS": '["BTC","ETH"]'}
    cmd = [sys.executable, "-m", "riskd", "fake-exchange", "--port", "0", "--hours", "48"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(5)]
        url = next(w for w in lines[0].split() if w.startswith("http://"))
        assert f"export RISKD_VENUES__BINANCE__API_URL={url}" in "".join(lines)
        with urllib.request.urlopen(f"{url}/v5/market/tickers?category=linear", timeout=5) as resp:
            assert b"BTCUSDT" in resp.read()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


# --- the synthetic market ---------------------------------------------------------------------------


def test_synthetic_frames_follow_the_data_contract(history: MarketHistory) -> None:
    """UTC hourly `ts` index, sorted and unique; the contract's columns and dtypes."""
    candles = history.ohlcv["bybit"]["DOGE"]
    prints = history.funding["binance"]["DOGE"]
    for df in (candles, prints, history.open_interest["binance"]["DOGE"]):
        assert df.index.name == "ts"
        assert str(df.index.tz) == "UTC"
        assert df.index.is_monotonic_increasing
        assert df.index.is_unique
    assert list(candles.columns) == list(OHLCV_COLUMNS)
    assert len(candles) == 24 * 40
    assert (candles.index[1:] - candles.index[:-1] == pd.Timedelta(hours=1)).all()
    assert list(prints.columns) == list(FUNDING_COLUMNS)
    assert prints["interval_inferred"].dtype == bool
    assert not prints["interval_inferred"].any()
    assert (prints["rate_per_hour"] == prints["rate"] / prints["interval_hours"]).all()
    assert (candles["high"] >= candles[["open", "close"]].max(axis=1)).all()
    assert (candles["low"] <= candles[["open", "close"]].min(axis=1)).all()


def test_synthetic_funding_schedules() -> None:
    """8 h on Binance/Bybit at 00/08/16, 4 h for overrides, hourly on Hyperliquid, the switch at its hour."""
    h = make_history()
    hours = {v: h.funding[v]["BTC"].index.floor("h").hour for v in ("binance", "bybit", "hyperliquid")}
    assert set(hours["binance"]) == set(hours["bybit"]) == {0, 8, 16}
    assert len(set(hours["hyperliquid"])) == 24
    assert set(h.funding["binance"]["DOGE"]["interval_hours"]) == {4.0}
    xrp = h.funding["binance"]["XRP"]["interval_hours"]
    assert set(xrp[xrp.index <= SWITCH]) == {8.0}
    assert set(xrp[xrp.index > SWITCH]) == {4.0}


def test_synthetic_cascade_is_planted_exactly() -> None:
    """In the cascade hour the asset closes `drop` below its open on `volume_multiplier` times the volume."""
    planted, plain = make_history(), make_history(cascades=False)
    eth, eth0 = planted.ohlcv["binance"]["ETH"], plain.ohlcv["binance"]["ETH"]
    row = eth.loc[CASCADE]
    assert row["close"] / row["open"] == pytest.approx(0.8, abs=1e-6)
    assert row["quote_volume"] / eth0.loc[CASCADE, "quote_volume"] == pytest.approx(8.0, rel=1e-6)
    assert eth.loc[: CASCADE - pd.Timedelta(hours=1)].equals(eth0.loc[: CASCADE - pd.Timedelta(hours=1)])
    assert planted.ohlcv["binance"]["BTC"].equals(plain.ohlcv["binance"]["BTC"])
    assert planted.cascades[0].assets == ("ETH",)


def test_synthetic_is_seeded_and_universe_independent() -> None:
    """A symbol's path depends on the seed and its name only, not on the rest of the universe."""
    alone = synthetic_market(["SOL"], START, 48, seed=1).ohlcv["binance"]["SOL"]
    crowd = synthetic_market(["BTC", "SOL", "ETH"], START, 48, seed=1).ohlcv["binance"]["SOL"]
    other = synthetic_market(["SOL"], START, 48, seed=2).ohlcv["binance"]["SOL"]
    assert alone.equals(crowd)
    assert not alone.equals(other)


def test_synthetic_slice_cuts_every_dataset(history: MarketHistory) -> None:
    """slice() keeps [start, end) of every frame and the cascades inside it."""
    cut = history.slice("2024-01-15", "2024-01-16")
    candles = cut.ohlcv["binance"]["ETH"]
    assert len(candles) == 24
    assert candles.equals(history.ohlcv["binance"]["ETH"].loc["2024-01-15"])
    assert cut.funding["hyperliquid"]["BTC"].index.max() < pd.Timestamp("2024-01-16", tz="UTC")
    assert cut.cascades == history.cascades
    assert history.slice("2024-02-01").cascades == ()


def test_synthetic_big_market_is_lazy_and_fast() -> None:
    """600 symbols × 6 years cost nothing up front; one frame builds in well under a second."""
    started = time.perf_counter()
    big = synthetic_market([f"A{i}" for i in range(600)], "2019-01-01", 52_560)
    frame = big.ohlcv["binance"]["A599"]
    assert len(frame) == 52_560
    assert len(big.symbols) == 600
    assert time.perf_counter() - started < 2.0


async def test_serving_is_fast_enough_for_backfills(history: MarketHistory) -> None:
    """A 1,500-candle Binance page is answered in well under 100 ms (benchmarks page through years)."""
    async with FakeExchange(history, now=NOW) as server, aiohttp.ClientSession() as s:
        url = f"{server.base_url}/fapi/v1/klines?symbol=BTCUSDT&interval=1h&startTime={ms(START)}&limit=1500"
        async with s.get(url) as r:
            assert r.status == 200
        started = time.perf_counter()
        async with s.get(url) as r:
            rows = await r.json()
        assert len(rows) == 24 * 40 - 13  # every candle up to the open one at NOW
        assert time.perf_counter() - started < 0.1
