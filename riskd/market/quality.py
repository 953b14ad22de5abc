"""How much of an hour's input was there: the data quality every snapshot carries (live and replayed)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from riskd.contract.models import DataQuality
from riskd.core import Panel
from riskd.core.params import FragilityParams
from riskd.market.cache import HOUR, MarketCache
from riskd.market.fetch import FetchReport


def assess(
    cache: MarketCache,
    hour: pd.Timestamp,
    venues: Iterable[str],
    report: FetchReport | None,
    btc: str = "BTC",
) -> DataQuality:
    """The data quality of the hour opened at ``hour``: ok, degraded (some source) or stale (BTC).

    Stale: the primary venue has no BTC candle for the hour. Degraded: a fetch failed, or a venue's
    newest funding print is older than its interval allows, or a venue lists none of the universe, or
    fewer than ``regime.min_coverage`` of the universe have a candle (the core then publishes the hour as
    ``unknown``: the same rule, so a restated hour recomputed from a partial fetch never reads ``ok``).
    """
    primary = cache.params.funding.primary_venue
    stale: list[str] = []
    missing: list[str] = []
    notes: list[str] = []
    have = sum(1 for s in cache.symbols if _has_hour(cache, "ohlcv", primary, s, hour))
    coverage = have / max(1, len(cache.symbols))
    if not _has_hour(cache, "ohlcv", primary, btc, hour):
        missing.append(f"{primary}:ohlcv")
        notes.append(f"no {btc} candle from {primary} for {hour:%Y-%m-%d %H:00} UTC")
    elif coverage < cache.params.regime.min_coverage:
        stale.append(f"{primary}:ohlcv")
        notes.append(
            f"candles for {have} of {len(cache.symbols)} symbols ({coverage:.0%}), below regime.min_coverage "
            f"({cache.params.regime.min_coverage:.0%}): the regime is unknown"
        )
    for (venue, dataset), err in sorted((report.failed if report else {}).items()):
        stale.append(f"{venue}:{dataset}")
        notes.append(f"{venue} {dataset}: {err[:160]}")
    for venue in venues:
        newest = [t for s in cache.symbols if (t := cache.last_ts("funding", venue, s)) is not None]
        if not newest:
            missing.append(f"{venue}:funding")
        elif max(newest) < hour + HOUR - pd.Timedelta(hours=9):  # longest interval (8 h) plus the hour
            stale.append(f"{venue}:funding")
    status = "stale" if f"{primary}:ohlcv" in missing else ("degraded" if stale or missing else "ok")
    return DataQuality(
        status=status,
        coverage=coverage,
        stale_sources=sorted(set(stale)),
        missing_sources=sorted(set(missing)),
        notes=notes,
    )


def _has_hour(cache: MarketCache, dataset: str, venue: str, symbol: str, hour: pd.Timestamp) -> bool:
    frame = cache.frames.get((dataset, venue, symbol))
    return frame is not None and hour in frame.index


def assess_row(panel: Panel, venues: Iterable[str], params: FragilityParams) -> DataQuality:
    """Data quality of a one-row panel from stored history (replay): BTC present, venues present."""
    symbols = list(panel.symbols)
    closes = panel.close[0]
    coverage = float(np.isfinite(closes).mean()) if len(symbols) else 0.0
    missing = []
    if "BTC" not in symbols or not np.isfinite(closes[symbols.index("BTC")]):
        missing.append(f"{params.funding.primary_venue}:ohlcv")
    for venue in venues:
        rates = panel.funding.get(venue)
        if rates is None or not np.isfinite(rates[0]).any():
            missing.append(f"{venue}:funding")
    status = (
        "stale" if f"{params.funding.primary_venue}:ohlcv" in missing else ("degraded" if missing else "ok")
    )
    return DataQuality(status=status, coverage=coverage, missing_sources=missing)
