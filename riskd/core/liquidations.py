"""Liquidations: events to minute totals, minutes to hours, hours to features. Pure.

No public liquidation history exists, so riskd records its own (``riskd.streams``) from the day it
starts. A long position liquidated is a SELL order, a short one a BUY. Minutes the stream did not cover
are absent (or carry ``coverage`` < 1): they are never read as "no liquidations". An hour's figures are
NaN unless its coverage reaches ``min_coverage``; the coverage itself is a feature.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

MINUTE_COLUMNS = ("events", "notional_usd", "long_usd", "short_usd", "max_usd", "coverage")
"""Columns of a minute (and of an hour) of the ``liquidations`` dataset; ``max_usd`` is the largest
single liquidation, ``coverage`` the share of the period the stream was connected and not stalled."""
FEATURE_COLUMNS = (
    "liq_notional_usd", "liq_imbalance", "liq_notional_z", "liq_imbalance_z", "liq_coverage",
)  # fmt: skip


class LiquidationParams(BaseModel):
    """Hourly liquidation features (settings section ``fragility.liquidations``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        False,
        description="Let the liquidation features enter the CFI. Off until riskd has recorded enough of "
        "its own history (weeks): before that the z-scores are NaN anyway.",
    )
    min_coverage: float = Field(
        0.9, ge=0, le=1, description="Share of an hour's minutes recorded for its figures to count."
    )
    window_hours: int = Field(168, ge=2, description="Trailing window of the z-scores (hours).")
    min_periods: int = Field(72, ge=2, description="Fewest valid past hours for a z-score.")
    std_floor: float = Field(0.05, ge=0, description="Floor of the std of log notional and of imbalance.")


def aggregate_events(events: pd.DataFrame, freq: str = "1min") -> pd.DataFrame:
    """Liquidation events (``ts`` UTC, ``symbol``, ``side`` buy/sell, ``notional_usd``) → one row per
    (period start, symbol) with ``MINUTE_COLUMNS`` except coverage (the caller knows it)."""
    cols = ["events", "notional_usd", "long_usd", "short_usd", "max_usd"]
    if events.empty:
        idx = pd.MultiIndex.from_arrays([pd.DatetimeIndex([], tz="UTC"), []], names=["ts", "symbol"])
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols}, index=idx)
    usd = events["notional_usd"].astype("float64")
    side = events["side"].str.lower()
    frame = pd.DataFrame(
        {
            "ts": pd.DatetimeIndex(events["ts"]).floor(freq),
            "symbol": events["symbol"].to_numpy(),
            "events": 1.0,
            "notional_usd": usd.to_numpy(),
            "long_usd": np.where(side == "sell", usd, 0.0),
            "short_usd": np.where(side == "buy", usd, 0.0),
            "max_usd": usd.to_numpy(),
        }
    )
    g = frame.groupby(["ts", "symbol"], sort=True)
    return g[["events", "notional_usd", "long_usd", "short_usd"]].sum().join(g["max_usd"].max())


def hourly_totals(minutes: pd.DataFrame) -> pd.DataFrame:
    """One symbol's minute rows (``MINUTE_COLUMNS``, minute-open UTC index) → hourly rows indexed by the
    hour's open time. ``coverage`` is the mean over the hour's 60 minutes, a missing minute counting 0;
    sums only add what was recorded, so read them with the coverage."""
    if minutes.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in MINUTE_COLUMNS},
                            index=pd.DatetimeIndex([], tz="UTC", name="ts"))  # fmt: skip
    hour = minutes.index.floor("h")
    g = minutes.groupby(hour)
    out = g[["events", "notional_usd", "long_usd", "short_usd"]].sum(min_count=1)
    out["max_usd"] = g["max_usd"].max()
    out["coverage"] = g["coverage"].sum() / 60.0
    out.index.name = "ts"
    return out[list(MINUTE_COLUMNS)]


def liquidation_features(
    long_usd: pd.DataFrame,
    short_usd: pd.DataFrame,
    coverage: pd.DataFrame,
    params: LiquidationParams | None = None,
) -> pd.DataFrame:
    """Hours × symbols frames (hourly liquidation notional of longs and shorts, coverage 0..1; NaN
    where nothing was recorded) → market-wide hourly features ``FEATURE_COLUMNS``.

    ``liq_notional_usd`` sums the symbols; ``liq_imbalance`` is (long − short) / (long + short) in
    [-1, 1] (positive: longs being flushed); each gets a trailing z-score against its own past hours
    (log1p of the notional). ``liq_coverage`` is the mean coverage over the symbols. An hour below
    ``min_coverage`` has NaN figures. Row t reads only rows ≤ t, so a batch run and an hour-by-hour run
    agree, and a future hour never changes a past one.
    """
    p = params or LiquidationParams()
    cov = coverage.reindex_like(long_usd).fillna(0.0).mean(axis=1)
    ok = cov >= p.min_coverage
    longs = long_usd.sum(axis=1, min_count=1).where(ok)
    shorts = short_usd.reindex_like(long_usd).sum(axis=1, min_count=1).where(ok)
    total = longs + shorts
    with np.errstate(divide="ignore", invalid="ignore"):
        imbalance = ((longs - shorts) / total).where(total > 0, 0.0).where(ok)
    out = pd.DataFrame(index=long_usd.index)
    out["liq_notional_usd"] = total
    out["liq_imbalance"] = imbalance
    out["liq_notional_z"] = _trailing_z(np.log1p(total), p)
    out["liq_imbalance_z"] = _trailing_z(imbalance, p)
    out["liq_coverage"] = cov
    return out


def _trailing_z(x: pd.Series, p: LiquidationParams) -> pd.Series:
    """z of x[t] against the ``window_hours`` before t (t excluded), with a floored std."""
    past = x.shift(1).rolling(p.window_hours, min_periods=p.min_periods)
    mean, std = past.mean(), past.std(ddof=1)
    return (x - mean) / np.maximum(std, p.std_floor)
