"""The batch panel over the stored history: the offline module, replay, export and the daemon's cold start
all build their panel here, so every path computes from the same rows."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from riskd.core import Panel, build_panel
from riskd.core.params import FragilityParams
from riskd.market.cache import HOUR
from riskd.store import HistoryStore


def liquidation_minutes(
    store: HistoryStore, params: FragilityParams, start: pd.Timestamp | None, stop: pd.Timestamp
) -> dict[str, pd.DataFrame] | None:
    """riskd's own all-market liquidation minutes in [start, stop) per recording venue, for the panel;
    None unless ``fragility.liquidations.enabled`` (then the core ignores the record entirely). The batch
    panel and the daemon's hour read it here, from the store the minute streams write at each hour."""
    if not params.liquidations.enabled:
        return None
    return {v: store.read("liquidations", v, "ALL", start, stop) for v in params.liquidations.venues}


def store_first_hour(
    store: HistoryStore, params: FragilityParams, symbols: Iterable[str]
) -> pd.Timestamp | None:
    """The first hour the store's primary-venue candles (perp or spot) cover; None when it holds none."""
    primary = params.funding.primary_venue
    firsts = [
        frame.index[0].floor("h")
        for dataset in ("ohlcv", "spot_ohlcv")
        for s in symbols
        if len(frame := store.read(dataset, primary, s))
    ]
    return min(firsts) if firsts else None


def store_panel(
    store: HistoryStore,
    params: FragilityParams,
    symbols: Iterable[str],
    venues: Iterable[str],
    end: pd.Timestamp,
    start: pd.Timestamp | None = None,
) -> Panel | None:
    """The batch panel over the store's history through the hour opened at ``end`` (None: no BTC yet).

    The offline module, replay and the daemon's cold start all build their panel here.
    """
    primary = params.funding.primary_venue
    symbols = tuple(symbols)
    stop = end + HOUR

    def read(dataset: str, venue: str) -> dict[str, pd.DataFrame]:
        frames = {s: store.read(dataset, venue, s, None, stop) for s in symbols}
        return {s: f for s, f in frames.items() if len(f)}

    ohlcv = read("ohlcv", primary)
    spot = read("spot_ohlcv", primary)
    if "BTC" not in ohlcv and "BTC" not in spot:
        return None
    first = min(f.index[0] for f in (*ohlcv.values(), *spot.values())).floor("h")
    start = first if start is None else max(start.floor("h"), first)
    if start > end:
        return None
    return build_panel(
        ohlcv,
        {v: read("funding", v) for v in venues},
        read("open_interest", primary) or None,
        spot or None,
        ohlcv_1d=read("ohlcv_1d", primary) or None,
        liquidations=liquidation_minutes(store, params, start, stop),
        symbols=symbols,
        start=start,
        end=end,
        params=params.panel,
    )
