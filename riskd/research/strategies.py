"""The strategies the research tested, each turning entry hours into a trades frame.

Every function returns :func:`riskd.research.backtest.make_trades` output (one row per non-overlapping
trade; entry at the close of the signal hour). Inputs are plain frames: ``closes`` (hours x symbols,
BTC in ``BTC``) and ``features`` (hourly; ``btc_ret_1h`` as a fraction, ``btc_vol_ratio`` = this hour's
BTC volume over the previous 24 h mean, ``cfi``), as the core's batch path produces them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskd.research.backtest import basket_returns, make_trades, non_overlapping
from riskd.research.events import BTC, forward_returns, past_returns

DEFAULT_COST_BPS = 30.0
"""Round trip in a cascade (RESEARCH.md: alt spreads 10-15 bps, ~30 bps round trip, not the usual ~10)."""

GRID_RETURNS: tuple[float, ...] = (-0.015, -0.02, -0.025, -0.03)
"""BTC 1 h return thresholds of the fade grid (fractions)."""
GRID_VOLUMES: tuple[float, ...] = (1.5, 2.0, 3.0)
"""``btc_vol_ratio`` thresholds of the fade grid."""
GRID_HOLDS: tuple[int, ...] = (12, 24, 48)
"""Holding periods of the fade grid, hours."""
GRID_CFI: tuple[bool, ...] = (False, True)
"""Without / with the CFI filter (CFI above the median of all earlier hours)."""


@dataclass(frozen=True, order=True)
class FadeParams:
    """One point of the BTC cascade-fade grid: buy BTC after a hour with ``btc_ret_1h < ret`` and
    ``btc_vol_ratio > vol`` (and a high CFI if ``cfi_filter``), hold ``hold_h`` hours."""

    ret: float
    vol: float
    hold_h: int
    cfi_filter: bool

    def label(self) -> str:
        """Short name for tables, e.g. ``r-2.0% v2.0 h24 cfi``."""
        return f"r{self.ret:+.1%} v{self.vol:g} h{self.hold_h}" + (" cfi" if self.cfi_filter else "")


def fade_grid(
    returns: Sequence[float] = GRID_RETURNS,
    volumes: Sequence[float] = GRID_VOLUMES,
    holds: Sequence[int] = GRID_HOLDS,
    cfi: Sequence[bool] = GRID_CFI,
) -> list[FadeParams]:
    """Every combination (4 x 3 x 3 x 2 = 72 by default)."""
    return [FadeParams(r, v, h, c) for r in returns for v in volumes for h in holds for c in cfi]


def cfi_above_past_median(cfi: pd.Series, min_history_h: int = 24 * 30) -> pd.Series:
    """True where the CFI is above the median of all earlier hours (past data only)."""
    med = cfi.expanding(min_periods=min_history_h).median().shift(1)
    return (cfi > med) & med.notna()


def btc_fade_candidates(
    closes: pd.DataFrame,
    features: pd.DataFrame,
    grid: Sequence[FadeParams] | None = None,
    *,
    cost_bps: float = DEFAULT_COST_BPS,
) -> dict[FadeParams, pd.DataFrame]:
    """The trades of every grid point over the whole history (the walk-forward picks among them)."""
    grid = list(grid) if grid is not None else fade_grid()
    cfi_high = cfi_above_past_median(features["cfi"]) if any(p.cfi_filter for p in grid) else None
    fwd = {h: forward_returns(closes[[BTC]], h)[BTC] for h in {p.hold_h for p in grid}}
    out = {}
    for p in grid:
        signal = (features["btc_ret_1h"] < p.ret) & (features["btc_vol_ratio"] > p.vol)
        if cfi_high is not None and p.cfi_filter:
            signal &= cfi_high
        entries = non_overlapping(features.index[signal.to_numpy(dtype=bool)], p.hold_h)
        out[p] = make_trades(fwd[p.hold_h].reindex(entries), hold_h=p.hold_h, cost_bps=cost_bps)
    return out


def alts_of(closes: pd.DataFrame, alts: Sequence[str] | None = None) -> list[str]:
    """The alt columns: ``alts`` if given (those present), else every column but BTC."""
    cols = [c for c in closes.columns if c != BTC]
    return [c for c in alts if c in closes.columns] if alts is not None else cols


def alt_contagion(
    closes: pd.DataFrame,
    entries: pd.DatetimeIndex,
    *,
    hold_h: int = 48,
    alts: Sequence[str] | None = None,
    cost_bps: float = DEFAULT_COST_BPS,
) -> pd.DataFrame:
    """Long an equal-weight basket of the alts at each event close, hold ``hold_h`` hours.

    Extra columns: ``alt_ret`` (the basket's gross return), ``btc_ret`` (BTC over the same hours, for the
    beta decomposition and the buy-the-dip benchmark), ``n_long``.
    """
    taken = non_overlapping(entries, hold_h)
    alt_ret, n = basket_returns(closes, taken, hold_h, alts_of(closes, alts))
    btc_ret, _ = basket_returns(closes, taken, hold_h, [BTC])
    alt_ret = alt_ret.where(n > 0)
    return make_trades(alt_ret, hold_h=hold_h, cost_bps=cost_bps, alt_ret=alt_ret, btc_ret=btc_ret, n_long=n)


def alt_btc_spread(
    closes: pd.DataFrame,
    entries: pd.DatetimeIndex,
    *,
    hold_h: int = 48,
    alts: Sequence[str] | None = None,
    cost_bps: float = DEFAULT_COST_BPS,
) -> pd.DataFrame:
    """Market-neutral: long the alt basket, short the same notional of BTC (two legs: twice the cost)."""
    taken = non_overlapping(entries, hold_h)
    alt_ret, n = basket_returns(closes, taken, hold_h, alts_of(closes, alts))
    btc_ret, _ = basket_returns(closes, taken, hold_h, [BTC])
    gross = (alt_ret - btc_ret).where(n > 0)
    return make_trades(gross, hold_h=hold_h, cost_bps=cost_bps, legs=2, alt_ret=alt_ret, btc_ret=btc_ret)


def cross_sectional(
    closes: pd.DataFrame,
    entries: pd.DatetimeIndex,
    *,
    hold_h: int = 48,
    overshoot_hours: int = 1,
    fraction: float = 0.2,
    alts: Sequence[str] | None = None,
    cost_bps: float = DEFAULT_COST_BPS,
) -> pd.DataFrame:
    """Long the hardest-hit alts, short the least-hit, equal weight, at each event close.

    "Hit" is the alt's return over the ``overshoot_hours`` up to the event close; each side holds the
    ``fraction`` (a quintile by default, at least one alt) of the alts with prices at entry and exit.
    Two legs: twice the cost. Extra columns ``long_ret``, ``short_ret``, ``n_long``.
    """
    cols = alts_of(closes, alts)
    taken = non_overlapping(entries, hold_h)
    hit = past_returns(closes[cols], overshoot_hours).reindex(taken)
    fwd = forward_returns(closes[cols], hold_h).reindex(taken)
    hit = hit.where(fwd.notna())
    long_ret, short_ret, n_side = [], [], []
    for t in taken:
        row = hit.loc[t].dropna().sort_values()
        k = max(1, int(np.floor(len(row) * fraction)))
        if len(row) < 2 * k:
            long_ret.append(np.nan)
            short_ret.append(np.nan)
            n_side.append(0)
            continue
        long_ret.append(fwd.loc[t, row.index[:k]].mean())
        short_ret.append(fwd.loc[t, row.index[-k:]].mean())
        n_side.append(k)
    lr = pd.Series(long_ret, index=taken, dtype=float)
    sr = pd.Series(short_ret, index=taken, dtype=float)
    return make_trades(
        lr - sr,
        hold_h=hold_h,
        cost_bps=cost_bps,
        legs=2,
        long_ret=lr,
        short_ret=sr,
        n_long=pd.Series(n_side, index=taken),
    )


def multi_asset_hold(
    closes: pd.DataFrame,
    crashing: pd.DataFrame | pd.Series,
    *,
    hold_h: int = 1,
    cost_bps: float = DEFAULT_COST_BPS,
) -> pd.DataFrame:
    """The first seed document's strategy: long at the crash close, hold 1-2 h, equal weight.

    ``crashing`` is either hours x symbols (True where the multi-asset detector flagged that asset: the
    document buys the crashing assets) or one boolean per hour (the detector fired: buy every listed
    asset, the stand-in when per-asset flags are not available).
    """
    if isinstance(crashing, pd.Series):
        hours = crashing.reindex(closes.index).fillna(False).astype(bool)
        flags = pd.DataFrame(
            np.repeat(hours.to_numpy()[:, None], closes.shape[1], axis=1),
            index=closes.index,
            columns=closes.columns,
        )
    else:
        flags = crashing.reindex(columns=closes.columns).fillna(False).astype(bool)
    entries = non_overlapping(flags.index[flags.any(axis=1).to_numpy()], hold_h)
    fwd = forward_returns(closes, hold_h).reindex(entries)
    picked = fwd.where(flags.reindex(entries).to_numpy())
    gross = picked.mean(axis=1)
    return make_trades(gross, hold_h=hold_h, cost_bps=cost_bps, n_long=picked.notna().sum(axis=1))
