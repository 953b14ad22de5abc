"""Liquidations: events to minute totals, minutes to hours, hours to features. Pure.

No public liquidation history exists, so riskd records its own (``riskd.streams``) from the day it
starts. A long position liquidated is a SELL order, a short one a BUY. Minutes the stream did not cover
are absent (or carry ``coverage`` < 1): they are never read as "no liquidations". An hour's figures are
NaN unless its coverage reaches ``min_coverage``; the coverage itself is a feature.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from riskd.core.windows import previous_zscore

MINUTE_COLUMNS = ("events", "notional_usd", "long_usd", "short_usd", "max_usd", "coverage")
"""Columns of a minute (and of an hour) of the ``liquidations`` dataset; ``max_usd`` is the largest
single liquidation, ``coverage`` the share of the period the stream was connected and not stalled."""
FEATURE_COLUMNS = (
    "liq_notional_usd",
    "liq_imbalance",
    "liq_notional_z",
    "liq_imbalance_z",
    "liq_coverage",
)
HOUR_FIELDS = ("long_usd", "short_usd", "coverage")
"""Columns of :attr:`riskd.core.Panel.liquidations` (hours × 3): the market's liquidated longs and shorts
(USD, summed over the venues) and the hour's recorded share."""
STAGE1 = ("liq_notional_usd", "liq_imbalance", "liq_coverage")
"""The hour's own figures (stage 1: no look-back)."""
STAGE2 = ("liq_notional_z", "liq_imbalance_z")
"""Each against its own past (stage 2: a trailing window, the current hour excluded)."""


class LiquidationParams(BaseModel):
    """Hourly liquidation features (settings section ``fragility.liquidations``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

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
    venues: list[str] = Field(
        default_factory=lambda: ["binance", "bybit"],
        description="Venues whose all-market recording (symbol ALL of the liquidations dataset) is summed; "
        "an hour's coverage is the mean over them, a venue that recorded nothing counting 0.",
    )
    cfi_weight: float = Field(
        1.0,
        ge=0,
        description="Weight of the liquidation notional's past-only rank in CFI v2 (the other components "
        "weigh 1 each by default), when enabled.",
    )


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
        return pd.DataFrame(
            {c: pd.Series(dtype="float64") for c in MINUTE_COLUMNS},
            index=pd.DatetimeIndex([], tz="UTC", name="ts"),
        )
    hour = minutes.index.floor("h")
    g = minutes.groupby(hour)
    out = g[["events", "notional_usd", "long_usd", "short_usd"]].sum(min_count=1)
    out["max_usd"] = g["max_usd"].max()
    out["coverage"] = g["coverage"].sum() / 60.0
    out.index.name = "ts"
    return out[list(MINUTE_COLUMNS)]


def hourly_market(minutes: Mapping[str, pd.DataFrame], grid: pd.DatetimeIndex) -> np.ndarray:
    """Venue → its all-market minute rows (``MINUTE_COLUMNS``) → the panel's ``liquidations`` array on
    ``grid`` (hour open times): longs and shorts summed over the venues that recorded (NaN where none
    did), coverage the mean over ALL the venues given (a venue that recorded nothing counts 0).

    Row t covers the minutes of [t, t + 1 h): known at the hour's close, like the candle stamped t."""
    out = np.full((len(grid), len(HOUR_FIELDS)), np.nan)
    out[:, 2] = 0.0
    if not minutes or not len(grid):
        return out
    cov = np.zeros(len(grid))
    for frame in minutes.values():
        hours = hourly_totals(frame)
        pos = grid.get_indexer(hours.index.as_unit(grid.unit) if len(hours) else hours.index)
        keep = pos >= 0
        pos, hours = pos[keep], hours[keep]
        for j, col in enumerate(("long_usd", "short_usd")):
            values = hours[col].to_numpy(dtype=np.float64)
            out[pos, j] = np.where(np.isnan(out[pos, j]), values, out[pos, j] + values)
        cov[pos] += hours["coverage"].to_numpy(dtype=np.float64)
    out[:, 2] = cov / len(minutes)
    return out


def stage1_series(hours: np.ndarray, p: LiquidationParams) -> dict[str, np.ndarray]:
    """The hour's figures from rows of :func:`hourly_market`: notional and long/short imbalance in
    [-1, 1] (positive: longs flushed), NaN below ``min_coverage``; the coverage itself always."""
    longs, shorts, cov = hours[:, 0], hours[:, 1], np.nan_to_num(hours[:, 2], nan=0.0)
    ok = cov >= p.min_coverage
    total = np.where(ok, longs + shorts, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        imbalance = np.where(total > 0, (longs - shorts) / total, 0.0)
    return {
        "liq_notional_usd": total,
        "liq_imbalance": np.where(np.isnan(total), np.nan, imbalance),
        "liq_coverage": cov,
    }


def stage2_series(s1: Mapping[str, np.ndarray], p: LiquidationParams) -> dict[str, np.ndarray]:
    """Each figure against its own ``window_hours`` before the hour (log1p of the notional)."""
    return {
        "liq_notional_z": previous_zscore(
            np.log1p(s1["liq_notional_usd"]), p.window_hours, p.min_periods, p.std_floor
        ),
        "liq_imbalance_z": previous_zscore(s1["liq_imbalance"], p.window_hours, p.min_periods, p.std_floor),
    }


def liquidation_features(
    hours: np.ndarray, index: pd.DatetimeIndex, params: LiquidationParams | None = None
) -> pd.DataFrame:
    """``FEATURE_COLUMNS`` for rows of :func:`hourly_market`, as a frame: what the core computes when
    ``fragility.liquidations.enabled`` (the same two functions), for research on riskd's own record."""
    p = params or LiquidationParams()
    s1 = stage1_series(hours, p)
    out = pd.DataFrame({**s1, **stage2_series(s1, p)}, index=index)
    return out[list(FEATURE_COLUMNS)]
