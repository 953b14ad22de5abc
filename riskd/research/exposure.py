"""The regime as bots use it: hold BTC, or the equal-weight alt basket, at exposure = ``risk_multiplier``.

The exposure set at the close of hour ``T`` earns the return of hour ``T + 1`` (no look-ahead): the
strategy's hourly return is ``m_T x r_{T+1}`` (gross: rebalancing costs are not charged, the report says
so). Each multiplier series (a mapping of names, so the regime under other tier signals can be set
beside it) is compared with two baselines at **the same mean exposure** over the evaluated hours:

- **constant** exposure equal to that mean;
- **volatility targeting**: exposure ``min(c / sigma_T, 1)`` with ``sigma_T`` the asset's realised
  volatility over the ``vol_window_h`` hours up to ``T``, and ``c`` solved (bisection) so the mean
  exposure matches. Matching the mean over the evaluated span uses that span's volatility level: one
  scalar, chosen for the comparison, not a forecast.

Measures over the out-of-sample span (from ``first_test``) and per calendar year: annualised return
(mean hourly x 8766), volatility, Sharpe (no risk-free rate), max drawdown of the compounded equity,
99% expected shortfall of daily (UTC) returns (mean of the worst 1% of days) and the worst day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskd.research.backtest import HOURS_PER_YEAR
from riskd.research.events import BTC

CONSTANT = "constant"
VOL_TARGET = "vol target"


@dataclass(frozen=True)
class FilterResult:
    """``summary``: one row per (asset, strategy, period): ``mean_exposure``, ``ann_return``, ``ann_vol``,
    ``sharpe``, ``max_drawdown``, ``es99_day``, ``worst_day``, ``days``. ``equity``: hourly compounded
    equity per (asset, strategy) over the out-of-sample span. ``exposures``: hourly exposure per
    (asset, strategy)."""

    summary: pd.DataFrame
    equity: pd.DataFrame
    exposures: pd.DataFrame
    first_test: pd.Timestamp
    vol_window_h: int


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


def performance(ret: pd.Series, exposure: pd.Series | None = None) -> dict[str, float]:
    """Annualised return and volatility, Sharpe, max drawdown, daily ES99 and worst day of hourly returns."""
    r = ret.dropna()
    if len(r) < 2:
        return dict.fromkeys(
            ("ann_return", "ann_vol", "sharpe", "max_drawdown", "es99_day", "worst_day"), np.nan
        )
    equity = (1.0 + r).cumprod()
    dd = equity / np.maximum(equity.cummax(), 1.0) - 1.0
    daily = (1.0 + r).groupby(r.index.floor("D")).prod() - 1.0
    k = max(int(np.ceil(0.01 * len(daily))), 1)
    ann_ret, ann_vol = float(r.mean() * HOURS_PER_YEAR), float(r.std() * np.sqrt(HOURS_PER_YEAR))
    out = {
        "ann_return": ann_ret,
        "ann_vol": ann_vol,
        "sharpe": ann_ret / ann_vol if ann_vol > 0 else np.nan,
        "max_drawdown": float(dd.min()),
        "es99_day": float(np.sort(daily.to_numpy())[:k].mean()),
        "worst_day": float(daily.min()),
        "days": len(daily),
    }
    if exposure is not None:
        out = {"mean_exposure": float(exposure.reindex(r.index).mean()), **out}
    return out


def filter_backtest(
    closes: pd.DataFrame,
    multipliers: Mapping[str, pd.Series],
    *,
    first_test: pd.Timestamp,
    vol_window_h: int = 168,
) -> FilterResult:
    """Each multiplier series against constant and vol-targeted exposure at its mean, BTC and alt basket.

    The baselines take the mean of the first multiplier series (the one riskd publishes), so every row
    of an asset shares one mean exposure when the series have equal means.
    """
    rets = basket_returns(closes)
    oos = pd.Series(rets.index >= first_test, index=rets.index)
    rows, equity, exposures = [], {}, {}
    names = list(multipliers)
    for asset in rets.columns:
        r = rets[asset]
        have = oos & r.shift(-1).notna()
        strategies = {n: multipliers[n].reindex(r.index).astype(float) for n in names}
        target = float(strategies[names[0]][have].mean()) if names else 1.0
        strategies[CONSTANT] = pd.Series(target, index=r.index)
        strategies[VOL_TARGET] = vol_target_exposure(r, target, have, vol_window_h)
        strategies["buy and hold"] = pd.Series(1.0, index=r.index)
        for name, m in strategies.items():
            earned = (m.shift(1) * r)[oos.to_numpy()]  # the exposure at T earns hour T + 1
            exposures[(asset, name)] = m[oos.to_numpy()]
            equity[(asset, name)] = (1.0 + earned.fillna(0.0)).cumprod()
            held = m[have.to_numpy()]
            rows.append(
                {"asset": asset, "strategy": name, "period": "out of sample", **performance(earned, held)}
            )
            for year, part in earned.groupby(earned.index.year):
                rows.append(
                    {"asset": asset, "strategy": name, "period": str(year), **performance(part, held)}
                )
    return FilterResult(
        summary=pd.DataFrame(rows),
        equity=pd.DataFrame(equity),
        exposures=pd.DataFrame(exposures),
        first_test=first_test,
        vol_window_h=vol_window_h,
    )
