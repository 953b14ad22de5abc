"""What a venue is, as data: ``VenueSpec`` (shaped like ccxt's ``describe()``). Each venue module declares
one and registers it (:mod:`riskd.sources.registry`); this module imports no adapter, so every part of
riskd can read specs without a loop through the adapters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Dataset = Literal["ohlcv", "funding", "open_interest", "current_funding"]
FundingRole = Literal["primary", "gap"]
DATASETS: tuple[Dataset, ...] = ("ohlcv", "funding", "open_interest", "current_funding")


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

    def raw_id(self, base: str) -> str:
        """The venue's own market id of ``base`` (``BTCUSDT``, ``BTC-USDT-SWAP``, ``BTC``)."""
        return self.market_id.format(base=base, quote=self.quote)

    def serves(self, dataset: str) -> bool:
        """Whether the venue serves ``dataset`` (``ohlcv``, ``funding``, ``open_interest`` …)."""
        return dataset in self.datasets
