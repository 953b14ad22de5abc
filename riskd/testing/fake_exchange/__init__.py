"""A loopback fake of the Binance, Bybit, Hyperliquid and OKX REST APIs that real ccxt clients talk to.

Every riskd test and demo drives the real ccxt classes against it, so the adapters meet the
venues' actual JSON, page rules and failure modes (429s, bans, 5xx, timeouts, bad bodies, gaps,
duplicates, stale data) without the internet::

    history = synthetic_market(["BTC", "ETH"], "2024-01-01", hours=24 * 30)
    async with FakeExchange(history) as fx:
        exchange = ccxt.async_support.binanceusdm()
        exchange.urls["api"] = api_urls("binance", fx.base_url)
        fx.inject("rate_limit", venue="binance", path="/fapi/v1/klines", times=2)
"""

from riskd.testing.fake_exchange._faults import FAULT_KINDS, Fault, FaultKind, RequestRecord
from riskd.testing.fake_exchange._market import VenueLimits
from riskd.testing.fake_exchange._server import FakeExchange, venue_of

__all__ = [
    "FAULT_KINDS",
    "FakeExchange",
    "Fault",
    "FaultKind",
    "RequestRecord",
    "VenueLimits",
    "venue_of",
]
