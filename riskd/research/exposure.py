"""The regime as bots use it: hold BTC, or the equal-weight alt basket, at exposure = ``risk_multiplier``.

The exposure set at the close of hour ``T`` earns the return of hour ``T + 1`` (no look-ahead): the
strategy's hourly return is ``m_T x r_{T+1}``. Every rule runs at **the same mean exposure** over the
evaluated hours, so a lower loss is not bought with less exposure:

- each multiplier series (the regime under each tier signal, and the nested choice between them) is
  scaled down linearly to the lowest mean among them (``m x target / mean``: the tiers' proportions
  are kept, the level is what the bot's sizing sets anyway);
- **constant** exposure equal to that target;
- **volatility targeting** over each of ``vol_windows_h`` (24 h and 168 h): ``min(c / sigma_T, 1)`` with
  ``sigma_T`` the asset's realised volatility over the window up to ``T`` and ``c`` solved so the mean
  exposure matches. Matching means over the evaluated span uses that span's volatility level: one scalar,
  chosen for the comparison, not a forecast.

Measures (:mod:`riskd.research.filterstats`): annual return compounded (CAGR, so never below −100 %),
volatility, Sharpe, max drawdown, daily ES99, worst day, **gross** and **net** of a cost per unit of
exposure change (``cost_bps`` x |m_T − m_{T−1}|, charged when the exposure changes), and the paired
differences of ES99 and Sharpe against constant exposure and volatility targeting, over the same
block-bootstrap resamples of days.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskd.research.events import BTC
from riskd.research.filterstats import net_table, paired_table, performance

CONSTANT = "constant"
BUY_AND_HOLD = "buy and hold"


def vol_target_name(window_h: int) -> str:
    """The row name of volatility targeting over ``window_h`` hours."""
    return f"vol target {window_h} h"


@dataclass(frozen=True)
class FilterResult:
    """``summary``: one row per (asset, strategy, period): ``mean_exposure``, ``ann_return`` (CAGR),
    ``ann_vol``, ``sharpe``, ``max_drawdown``, ``es99_day``, ``worst_day``, ``days`` (gross).
    ``net``: one row per (asset, strategy): ``turnover`` (Σ|Δm| per year), ``cost`` (per year),
    ``ann_return``, ``sharpe``, ``es99_day`` net of cost. ``paired``: one row per (asset, strategy,
    baseline): ``d_es99`` and ``d_sharpe`` (strategy − baseline, gross) with 95% CIs. ``equity``: hourly
    compounded gross equity per (asset, strategy) over the out-of-sample span; ``exposures`` likewise."""

    summary: pd.DataFrame
    net: pd.DataFrame
    paired: pd.DataFrame
    equity: pd.DataFrame
    exposures: pd.DataFrame
    first_test: pd.Timestamp
    vol_windows_h: tuple[int, ...]
    target: dict[str, float]
    cost_bps: float
    block_h: int
    reps: int
    rules: tuple[str, ...]


def basket_returns(closes: pd.DataFrame) -> pd.DataFrame:
    """Hourly simple returns of BTC and of the equal-weight basket of the alts priced in both hours."""
    rets = closes.pct_change(fill_method=None)
    alts = rets.drop(columns=[BTC], errors="ignore")
    return pd.DataFrame({"BTC": rets[BTC], "alt basket": alts.mean(axis=1)}, index=closes.index)


def vol_target_exposure(
    ret: pd.Series, target_mean: float, mask: pd.Series, window_h: int = 168
) -> pd.Series:
    """``min(c / sigma_T, 1)`` with ``c`` such that its mean over ``mask`` hours is ``target_mean``."""
    sigma = ret.rolling(window_h, min_periods=window_h // 2).std()
    inv = (1.0 / sigma).where(sigma > 0)
    sel = inv[mask.to_numpy()].dropna()
    if len(sel) == 0 or not 0 < target_mean <= 1:
        return pd.Series(target_mean, index=ret.index)
    lo, hi = 0.0, 1.0 / float(sel.min()) + 1.0 / float(sel.median()) * 10
    for _ in range(80):
        c = (lo + hi) / 2
        if np.minimum(c * sel, 1.0).mean() < target_mean:
            lo = c
        else:
            hi = c
    return np.minimum(c * inv, 1.0).fillna(target_mean)


def exposures_at_one_mean(
    r: pd.Series, multipliers: Mapping[str, pd.Series], have: pd.Series, vol_windows_h: Sequence[int]
) -> tuple[dict[str, pd.Series], float]:
    """Every rule's hourly exposure for one asset at the common mean (the lowest of the multipliers')."""
    raw = {n: m.reindex(r.index).astype(float) for n, m in multipliers.items()}
    means = {n: float(m[have.to_numpy()].mean()) for n, m in raw.items()}
    target = min(means.values()) if means else 1.0
    out = {n: m * (target / means[n]) if means[n] > 0 else m for n, m in raw.items()}
    out[CONSTANT] = pd.Series(target, index=r.index)
    for w in vol_windows_h:
        out[vol_target_name(w)] = vol_target_exposure(r, target, have, w)
    out[BUY_AND_HOLD] = pd.Series(1.0, index=r.index)
    return out, target


def filter_backtest(
    closes: pd.DataFrame,
    multipliers: Mapping[str, pd.Series],
    *,
    first_test: pd.Timestamp,
    vol_windows_h: Sequence[int] = (24, 168),
    cost_bps: float = 10.0,
    block_h: int = 720,
    reps: int = 1000,
    seed: int = 0,
) -> FilterResult:
    """Each multiplier series against constant and vol-targeted exposure at one mean, BTC and alt basket."""
    rets = basket_returns(closes)
    oos = pd.Series(rets.index >= first_test, index=rets.index)
    rows, equity, exposures, gross, nets, targets = [], {}, {}, {}, {}, {}
    cost = cost_bps / 1e4
    for asset in rets.columns:
        r = rets[asset]
        have = oos & r.shift(-1).notna()
        rules, targets[asset] = exposures_at_one_mean(r, multipliers, have, vol_windows_h)
        for name, m in rules.items():
            held = m[have.to_numpy()]
            earned = (m.shift(1) * r)[oos.to_numpy()]  # the exposure at T earns hour T + 1
            charge = (cost * m.diff().abs().shift(1))[oos.to_numpy()].where(earned.notna())
            exposures[(asset, name)] = m[oos.to_numpy()]
            equity[(asset, name)] = (1.0 + earned.fillna(0.0)).cumprod()
            gross[(asset, name)], nets[(asset, name)] = earned, earned - charge.fillna(0.0)
            rows.append(
                {"asset": asset, "strategy": name, "period": "out of sample", **performance(earned, held)}
            )
            for year, part in earned.groupby(earned.index.year):
                rows.append(
                    {"asset": asset, "strategy": name, "period": str(year), **performance(part, held)}
                )
    baselines = (CONSTANT, *(vol_target_name(w) for w in vol_windows_h))
    return FilterResult(
        summary=pd.DataFrame(rows),
        net=net_table(gross, nets, cost_bps),
        paired=paired_table(gross, list(multipliers), baselines, block_h, reps, seed),
        equity=pd.DataFrame(equity),
        exposures=pd.DataFrame(exposures),
        first_test=first_test,
        vol_windows_h=tuple(vol_windows_h),
        target=targets,
        cost_bps=cost_bps,
        block_h=block_h,
        reps=reps,
        rules=tuple(multipliers),
    )
