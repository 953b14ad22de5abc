"""The fake exchange's endpoints freqtrade's dry-run needs (order book, mark-price candles), through real
ccxt, and its wall-clock mode."""

from __future__ import annotations

import ccxt.async_support as ccxt
import pandas as pd

from riskd.sources.endpoints import api_urls
from riskd.testing.fake_exchange import FakeExchange
from riskd.testing.synthetic import synthetic_market

START = pd.Timestamp("2024-01-01", tz="UTC")


async def _client(fx: FakeExchange) -> ccxt.binanceusdm:
    ex = ccxt.binanceusdm({"options": {"fetchMarkets": {"types": ["linear"]}}})
    ex.urls["api"] = api_urls("binance", fx.base_url)
    await ex.load_markets()
    return ex


async def test_order_book_brackets_the_mark_price() -> None:
    """``fetch_order_book`` (GET /fapi/v1/depth) returns ``limit`` levels each side, bids below and asks
    above the last price, one tick apart; a limit Binance does not offer is refused."""
    market = synthetic_market(["BTC", "ETH"], START, 72)
    async with FakeExchange(market, now=START + pd.Timedelta(hours=50, minutes=30)) as fx:
        ex = await _client(fx)
        try:
            book = await ex.fetch_order_book("BTC/USDT:USDT", limit=5)
            mark = float(market.ohlcv["binance"]["BTC"]["close"].iloc[50])  # the hour in progress, so far
            assert len(book["bids"]) == len(book["asks"]) == 5
            assert book["bids"][0][0] < book["asks"][0][0]
            assert abs(book["bids"][0][0] - mark) / mark < 0.05
            assert book["timestamp"] == int(fx.now.timestamp() * 1000)
            assert [b[0] for b in book["bids"]] == sorted((b[0] for b in book["bids"]), reverse=True)
        finally:
            await ex.close()
        assert fx.count(path="/fapi/v1/depth", status=200) == 1


async def test_mark_price_candles_1h_and_8h() -> None:
    """``fetch_ohlcv(price="mark")`` (GET /fapi/v1/markPriceKlines): 1 h rows are the candles' prices;
    8 h rows (what freqtrade reads for funding fees) aggregate them, aligned to 00:00/08:00/16:00."""
    market = synthetic_market(["BTC", "ETH"], START, 72)
    candles = market.ohlcv["binance"]["BTC"]
    async with FakeExchange(market) as fx:
        ex = await _client(fx)
        try:
            since = int(START.timestamp() * 1000)
            hourly = await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", since, 24, params={"price": "mark"})
            eight = await ex.fetch_ohlcv("BTC/USDT:USDT", "8h", since, 3, params={"price": "mark"})
        finally:
            await ex.close()
    assert [r[4] for r in hourly] == candles["close"].iloc[:24].tolist()
    assert [pd.Timestamp(r[0], unit="ms", tz="UTC").hour for r in eight] == [0, 8, 16]
    first = candles.iloc[:8]
    assert eight[0][1:5] == [
        first["open"].iloc[0],
        first["high"].max(),
        first["low"].min(),
        first["close"].iloc[-1],
    ]
    assert fx.count(path="/fapi/v1/markPriceKlines", status=200) == 2


async def test_wall_clock_mode_serves_the_hour_in_progress() -> None:
    """With ``now`` following the wall clock (what ``riskd fake-exchange`` and the dry-run test use), the
    newest kline is the hour in progress and the server's time is the wall clock's."""
    hour = pd.Timestamp.now("UTC").floor("h")
    market = synthetic_market(["BTC", "ETH"], hour - pd.Timedelta(hours=30), 40)
    async with FakeExchange(market, now=lambda: pd.Timestamp.now("UTC")) as fx:
        ex = await _client(fx)
        try:
            rows = await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", limit=5)
            server = await ex.fetch_time()
        finally:
            await ex.close()
    assert pd.Timestamp(rows[-1][0], unit="ms", tz="UTC") == hour or pd.Timestamp.now("UTC").floor("h") > hour
    assert abs(server - pd.Timestamp.now("UTC").timestamp() * 1000) < 60_000
