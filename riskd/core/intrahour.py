"""The provisional intra-hour cascade detector: closed 1-minute bars in, a ``provisional_level`` out.

A cascade unfolds in minutes while the hourly path sees it at the hour close. On every closed minute
this detector combines four signals, each computed from data up to and including that minute only:

- BTC's drop over the last 5, 15 and 60 minutes (``btc_ret_5m`` … fractions, close to close) and, when
  ``drop_from_high`` is set, below its highest close of the last ``high_window_minutes`` (``btc_drawdown``:
  a fall that started 40 minutes ago reads in full here, where a fixed-lag return sees part of it);
- the volume surge: BTC volume of the last ``volume_window_minutes`` against its own trailing mean
  scaled to the same window length ("the same minute-of-hour scale": a 15-minute sum is compared with
  15 average minutes of the trailing day, never with a whole hour);
- breadth: the share of the liquid alts whose 15-minute return is below ``breadth_return``;
- the liquidation surge: market-wide liquidation notional of the last window against its own trailing
  mean, NaN when the window holds a minute that was not recorded (a gap is never "no liquidations").

A minute is ``watch`` when BTC drops past any of the three thresholds, ``developing`` when a drop is
confirmed by at least one of volume, breadth or liquidations, and ``severe`` when it is confirmed by two,
or by one with a drop twice the threshold. The thresholds and how they were chosen are in
docs/features.md (Provisional intra-hour detector); ``riskd validate --intra-hour`` measures them.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

ProvisionalLevel = Literal["none", "watch", "developing", "severe"]
PROVISIONAL_LEVELS: tuple[ProvisionalLevel, ...] = ("none", "watch", "developing", "severe")
PROVISIONAL_CODES: dict[str, int] = {name: i for i, name in enumerate(PROVISIONAL_LEVELS)}
MINUTE = pd.Timedelta(minutes=1)
FEATURE_COLUMNS = (
    "btc_close",
    "btc_ret_5m",
    "btc_ret_15m",
    "btc_ret_60m",
    "btc_drawdown",
    "vol_surge",
    "breadth",
    "alts_seen",
    "liq_usd_window",
    "liq_surge",
)


class IntrahourParams(BaseModel):
    """Thresholds of the provisional detector (settings section ``streams.detector``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    drop_5m: float = Field(-0.02, lt=0, description="BTC 5-minute return at or below this is a drop.")
    drop_15m: float = Field(-0.03, lt=0, description="BTC 15-minute return at or below this is a drop.")
    drop_60m: float = Field(-0.03, lt=0, description="BTC 60-minute return at or below this is a drop.")
    drop_from_high: float | None = Field(
        None,
        lt=0,
        description="BTC close this far below its high of high_window_minutes is a drop (None: off).",
    )
    high_window_minutes: int = Field(60, ge=5, le=240, description="Window of that high, minutes.")
    volume_window_minutes: int = Field(15, ge=1, le=60, description="Window of the volume surge, minutes.")
    volume_baseline_minutes: int = Field(
        1440, ge=10, description="Trailing minutes whose mean volume is the baseline (before the window)."
    )
    volume_min_periods: int = Field(
        120, ge=1, description="Fewest valid baseline minutes for a volume surge (else NaN)."
    )
    volume_surge: float = Field(3.0, gt=0, description="Window volume / scaled baseline that confirms.")
    breadth_return: float = Field(-0.02, lt=0, description="An alt's 15-minute return at or below this.")
    breadth_share: float = Field(0.6, gt=0, le=1, description="Share of alts falling that confirms.")
    breadth_min_assets: int = Field(3, ge=1, description="Fewest alts with a 15-minute return for breadth.")
    liq_surge: float = Field(5.0, gt=0, description="Window liquidations / scaled baseline that confirms.")
    liq_min_usd: float = Field(
        1e6, ge=0, description="Window liquidation notional (USD) below which no surge is read."
    )
    alert_level: ProvisionalLevel = Field(
        "developing", description="Lowest provisional level that raises the 'cascade developing' alert."
    )


def _grid(frame: pd.DataFrame | pd.Series, bar: pd.Timedelta) -> pd.DatetimeIndex:
    idx = frame.index
    if len(idx) == 0:
        return pd.DatetimeIndex([], tz="UTC", name="ts")
    return pd.date_range(idx.min(), idx.max(), freq=bar, name="ts")


def _surge(values: pd.Series, window: int, baseline: int, min_periods: int) -> pd.Series:
    """Sum of the last ``window`` minutes over the trailing mean (before the window) × ``window``.
    A NaN minute inside the window makes the surge NaN."""
    recent = values.rolling(window, min_periods=window).sum()
    base = values.shift(window).rolling(baseline, min_periods=min_periods).mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        out = recent / (base * window)
    return out.where(base > 0)


def minute_features(
    btc: pd.DataFrame,
    alt_closes: pd.DataFrame | None = None,
    liquidations_usd: pd.Series | None = None,
    params: IntrahourParams | None = None,
    bar_minutes: int = 1,
) -> pd.DataFrame:
    """Detector inputs per minute (``FEATURE_COLUMNS``), on the regular minute grid of ``btc``.

    ``btc``: 1-minute bars with ``close`` and ``volume``, indexed by the minute's open time (UTC).
    ``alt_closes``: minutes × alts closes. ``liquidations_usd``: market-wide liquidation notional per
    minute, NaN (or absent) for minutes not recorded. Inputs are not mutated; every column at minute t
    reads only minutes ≤ t. ``bar_minutes`` > 1 replays coarser bars (5-minute history): every window
    becomes that many minutes' worth of bars (the 5-minute return is then one bar).
    """
    p = params or IntrahourParams()
    bars = _Bars(bar_minutes)
    grid = _grid(btc, pd.Timedelta(minutes=bar_minutes))
    close = btc["close"].astype("float64").reindex(grid)
    volume = btc["volume"].astype("float64").reindex(grid)
    out = pd.DataFrame(index=grid)
    out["btc_close"] = close
    for k in (5, 15, 60):
        out[f"btc_ret_{k}m"] = close / close.shift(bars(k)) - 1.0
    out["btc_drawdown"] = close / close.rolling(bars(p.high_window_minutes) + 1, min_periods=1).max() - 1.0
    window = bars(p.volume_window_minutes)
    base, min_periods = bars(p.volume_baseline_minutes), bars(p.volume_min_periods)
    out["vol_surge"] = _surge(volume, window, base, min_periods)
    out["breadth"], out["alts_seen"] = _breadth(alt_closes, grid, p, bars(15))
    if liquidations_usd is None:
        out["liq_usd_window"] = np.nan
        out["liq_surge"] = np.nan
    else:
        liq = liquidations_usd.astype("float64").reindex(grid)
        in_window = liq.rolling(window, min_periods=window).sum()
        surge = _surge(liq, window, base, min_periods)
        out["liq_usd_window"] = in_window
        out["liq_surge"] = surge.where(in_window >= p.liq_min_usd, np.where(in_window.notna(), 0.0, np.nan))
    return out


class _Bars:
    """Minutes → bars of ``bar_minutes`` (at least one)."""

    def __init__(self, bar_minutes: int) -> None:
        self.size = bar_minutes

    def __call__(self, minutes: int) -> int:
        return max(1, minutes // self.size)


def _breadth(
    alt_closes: pd.DataFrame | None, grid: pd.DatetimeIndex, p: IntrahourParams, lag: int
) -> tuple[pd.Series, pd.Series]:
    if alt_closes is None or alt_closes.shape[1] == 0:
        return pd.Series(np.nan, index=grid), pd.Series(0.0, index=grid)
    closes = alt_closes.astype("float64").reindex(grid)
    ret = closes / closes.shift(lag) - 1.0
    seen = ret.notna().sum(axis=1).astype("float64")
    falling = (ret <= p.breadth_return).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = falling / seen
    return share.where(seen >= p.breadth_min_assets), seen


def provisional_levels(features: pd.DataFrame, params: IntrahourParams | None = None) -> pd.Series:
    """The ``provisional_level`` of every minute of :func:`minute_features` (see the module docstring)."""
    p = params or IntrahourParams()
    r5, r15, r60 = (features[f"btc_ret_{k}m"].to_numpy() for k in (5, 15, 60))
    with np.errstate(invalid="ignore"):
        drop = (r5 <= p.drop_5m) | (r15 <= p.drop_15m) | (r60 <= p.drop_60m)
        deep = (r5 <= 2 * p.drop_5m) | (r15 <= 2 * p.drop_15m) | (r60 <= 2 * p.drop_60m)
        if p.drop_from_high is not None:
            drawdown = features["btc_drawdown"].to_numpy()
            drop |= drawdown <= p.drop_from_high
            deep |= drawdown <= 2 * p.drop_from_high
        confirms = (
            (features["vol_surge"].to_numpy() >= p.volume_surge).astype(int)
            + (features["breadth"].to_numpy() >= p.breadth_share).astype(int)
            + (features["liq_surge"].to_numpy() >= p.liq_surge).astype(int)
        )
    code = np.where(drop, 1, 0)
    code = np.where(drop & (confirms >= 1), 2, code)
    code = np.where(drop & ((confirms >= 2) | (deep & (confirms >= 1))), 3, code)
    return pd.Series(np.asarray(PROVISIONAL_LEVELS, dtype=object)[code], index=features.index, name="level")


def fires(level: str, params: IntrahourParams | None = None) -> bool:
    """Whether ``level`` reaches the alert level."""
    p = params or IntrahourParams()
    return PROVISIONAL_CODES[level] >= PROVISIONAL_CODES[p.alert_level]


def hour_end(minute_open: pd.Timestamp) -> pd.Timestamp:
    """End of the hour a minute (by its open time) belongs to: the hourly snapshot's ``as_of``."""
    return minute_open.floor("h") + pd.Timedelta(hours=1)


def first_firing(levels: pd.Series, params: IntrahourParams | None = None) -> pd.Series:
    """Per hour (indexed by hour end), the open time of the first minute whose level fires; hours with
    no firing minute are absent. One provisional episode per hour: later firings join it."""
    p = params or IntrahourParams()
    codes = levels.map(PROVISIONAL_CODES)
    hit = levels.index[(codes >= PROVISIONAL_CODES[p.alert_level]).to_numpy()]
    if len(hit) == 0:
        return pd.Series([], index=pd.DatetimeIndex([], tz="UTC", name="as_of"), dtype="datetime64[ns, UTC]")
    frame = pd.Series(hit, index=hit.floor("h") + pd.Timedelta(hours=1))
    first = frame.groupby(level=0).min()
    first.index.name = "as_of"
    return first


def lead_minutes(first_minute_open: pd.Timestamp, as_of: pd.Timestamp, bar_minutes: int = 1) -> float:
    """Minutes between the firing bar's close (when the alert can go out) and the hour close."""
    return (as_of - (first_minute_open + bar_minutes * MINUTE)) / MINUTE
