"""What a venue is, as data: ``VenueSpec`` (shaped like ccxt's ``describe()``). Each venue module declares
one and registers it (:mod:`riskd.sources.registry`); this module imports no adapter, so every part of
riskd can read specs without a loop through the adapters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Dataset = Literal["ohlcv", "funding", "open_interest", "current_funding"]
FundingRole = Literal["primary", "gap"]
DATASETS: tuple[Dataset, ...] = ("ohlcv", "funding", "open_interest", "current_funding")


Completeness = Literal["complete", "sampled", "absent"]
"""How much of a venue's liquidations its public stream carries: every one (Bybit ``allLiquidation``), at
most the latest per symbol per second (Binance ``forceOrder``, OKX), or none at all (Hyperliquid)."""


@dataclass(frozen=True)
class StreamSpec:
    """What a venue means to the minute side (:mod:`riskd.streams`): its websocket and its liquidations.

    ``ws_shape``: where ccxt.pro takes the websocket base URL in ``urls["api"]["ws"]`` (a path of keys).
    ``fake_ws_path``: the loopback fake exchange's websocket path for the venue (tests and the demos).
    ``liquidations``: ``all_market`` (one subscription for every symbol) or ``per_symbol`` (a topic per
    market, ``liquidation_topic`` formatted with the market id). ``candle_closed(message, market_id)``: the
    open times (ms) of the candles a raw candle frame marks closed (ccxt's parsed candle drops the flag).
    ``ccxt_options``: options the ccxt.pro client needs for this venue. ``completeness``: see
    :data:`Completeness`."""

    ws_shape: tuple[str, ...]
    fake_ws_path: str
    liquidations: Literal["all_market", "per_symbol"]
    candle_closed: Callable[[Any, str], list[int]]
    completeness: Completeness
    liquidation_topic: str = ""
    ccxt_options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class VenueSpec:
    """One venue: how to reach it, how it names markets, what it serves and its part in the funding gap.

    ``market_id`` formats a base asset into the venue's own id (``{base}USDT``, ``{base}-USDT-SWAP``).
    ``scaled_prefixes`` are the prefixes of contracts listed per 1,000 tokens (``1000PEPE``, ``kPEPE``).
    ``endpoints`` are the names the adapter counts requests under (``riskd_exchange_requests_total``).
    ``rate_limit_window_s`` is the window the venue's published limits count over (ccxt's rolling window).
    ``funding_role``: ``primary`` is the venue of the aggregates, ``gap`` venues are averaged and
    subtracted from it in the funding gap, None stays out of both.
    """

    name: str
    title: str
    source: type[Any]  # the adapter class (a riskd.sources.base.VenueSource subclass)
    ccxt_class: str
    quote: str
    market_id: str
    endpoints: tuple[str, ...]
    datasets: frozenset[Dataset]
    funding_role: FundingRole | None
    rate_limit_window_s: float = 60.0
    scaled_prefixes: tuple[str, ...] = ("1000000", "10000", "1000")
    enabled_by_default: bool = True
    import_quotes: tuple[str, ...] = ()
    """Quotes a history file's pair may carry for this venue's perps (``USDC`` and none for Hyperliquid);
    empty: the venue's ``quote``."""
    stream: StreamSpec | None = None
    """The venue's websocket facts; None: riskd records no stream from it."""
    liquidation_completeness: Completeness = "absent"
    """How complete the venue's liquidation record can be (a stream's, or none)."""

    def raw_id(self, base: str) -> str:
        """The venue's own market id of ``base`` (``BTCUSDT``, ``BTC-USDT-SWAP``, ``BTC``)."""
        return self.market_id.format(base=base, quote=self.quote)

    def quotes(self) -> tuple[str, ...]:
        """The quotes :mod:`riskd.importer` accepts in a file's pair name for this venue."""
        return self.import_quotes or (self.quote,)

    def serves(self, dataset: str) -> bool:
        """Whether the venue serves ``dataset`` (``ohlcv``, ``funding``, ``open_interest`` …)."""
        return dataset in self.datasets
