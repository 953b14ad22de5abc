"""The daemon's recent market data: frames per (dataset, venue, symbol), prepared once per fetch.

The one-hour panel the core steps on is built by ``build_panel`` — the batch path's own function — over
the cached frames, so the live row of hour T is the row a batch panel over the store has at T.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from riskd.core import Panel, build_panel
from riskd.core.panel import Candles, Prints, prepare
from riskd.core.params import FragilityParams
from riskd.store import HistoryStore

HOUR = pd.Timedelta(hours=1)
PANEL_DATASETS = ("ohlcv", "spot_ohlcv", "ohlcv_1d", "funding", "open_interest")
"""The stored datasets the hourly panel reads (daily bars only rank the funding universe)."""


class MarketCache:
    """Recent frames per (dataset, venue, symbol), trimmed to the look-back one panel row needs."""

    def __init__(self, symbols: Iterable[str], params: FragilityParams, keep_hours: int = 72) -> None:
        self.symbols = tuple(symbols)
        self.params = params
        lookback = max(params.panel.funding_max_age_hours, params.panel.open_interest_max_age_hours)
        self.lookback = pd.Timedelta(hours=lookback + 2)  # what one panel row can reach back to
        self.keep = pd.Timedelta(hours=max(keep_hours, lookback + 2))
        self.frames: dict[tuple[str, str, str], pd.DataFrame] = {}
        # The same data prepared once per fetch (core.panel.prepare), so the hourly one-row panel is
        # array look-ups: the compute budget is 20 ms for 50 symbols x 3 venues.
        self.prepared: dict[tuple[str, str, str], Candles | Prints] = {}

    def load(self, store: HistoryStore, venues: Iterable[str], until: pd.Timestamp) -> None:
        """Fill the cache from the store (start-up): the last ``keep`` before ``until``."""
        start = until - self.keep
        for dataset, venue, symbol in store.partitions():
            if dataset not in PANEL_DATASETS:  # other timeframes (5m, 4h, …) are not the hourly panel's
                continue
            if symbol in self.symbols and (venue in venues or dataset == "spot_ohlcv"):
                frame = store.read(dataset, venue, symbol, start, until)
                if len(frame):
                    self._hold((dataset, venue, symbol), frame)

    def add(self, dataset: str, venue: str, symbol: str, frame: pd.DataFrame) -> None:
        """Merge new rows (a later row for the same time wins) and trim to the look-back."""
        if frame.empty:
            return
        key = (dataset, venue, symbol)
        old = self.frames.get(key)
        merged = frame if old is None else pd.concat([old, frame.astype(old.dtypes.to_dict())])
        merged = merged[~merged.index.duplicated(keep="last")].sort_index()
        self._hold(key, merged[merged.index >= merged.index[-1] - self.keep])

    def _hold(self, key: tuple[str, str, str], frame: pd.DataFrame) -> None:
        self.frames[key] = frame
        self.prepared[key] = prepare(key[0], frame)

    def last_ts(self, dataset: str, venue: str, symbol: str) -> pd.Timestamp | None:
        """Newest row held for a partition."""
        frame = self.frames.get((dataset, venue, symbol))
        return None if frame is None or frame.empty else frame.index[-1]

    def panel(self, hour: pd.Timestamp, venues: Iterable[str]) -> Panel:
        """The one-row panel of the candle opened at ``hour``, built as the batch path builds it."""

        def pick(dataset: str, venue: str) -> dict[str, Any]:
            return {s: f for (d, v, s), f in self.prepared.items() if d == dataset and v == venue}

        primary = self.params.funding.primary_venue
        panel = build_panel(
            pick("ohlcv", primary),
            {v: pick("funding", v) for v in venues},
            pick("open_interest", primary) or None,
            pick("spot_ohlcv", primary) or None,
            ohlcv_1d=pick("ohlcv_1d", primary) or None,
            symbols=self.symbols,
            start=hour - self.lookback,
            end=hour,
            params=self.params.panel,
        )
        n = len(panel.index)
        return panel.rows(n - 1, n)
