"""The filter's measures: performance of an hourly return series, gross and net of cost, and paired
differences between two rules over the same block-bootstrap resamples of days.

**Annual return** is compounded (CAGR: ``(Π(1 + r))^(8766 / hours) − 1``), so a losing year reads at most
−100 %; volatility and Sharpe come from hourly returns (mean x 8766 over sd x sqrt(8766), no risk-free
rate); **ES99** is the mean of the worst 1 % of UTC days (at least one day).

**Paired differences** (rule − baseline) of ES99 and Sharpe resample whole UTC days in blocks (stationary
bootstrap, mean block ``block_h`` hours), the same days for both rules, so what the two share (the market's
worst days) cancels. A resample that draws day ``u`` ``c_u`` times has ES99 = the mean of the ``k``
smallest of that multiset (the days sorted once, counts accumulated in that order) and Sharpe from the
count-weighted sums of hourly returns and their squares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from riskd.research.backtest import HOURS_PER_YEAR
from riskd.research.resample import BlockResamples, percentile_ci
from riskd.research.scoring import unit_counts

Key = tuple[str, str]
"""(asset, rule)."""


def performance(ret: pd.Series, exposure: pd.Series | None = None) -> dict[str, float]:
    """CAGR, annualised volatility, Sharpe, max drawdown, daily ES99 and worst day of hourly returns."""
    r = ret.dropna()
    keys = ("ann_return", "ann_vol", "sharpe", "max_drawdown", "es99_day", "worst_day")
    if len(r) < 2:
        return dict.fromkeys(keys, np.nan)
    growth = np.log1p(r.to_numpy())
    equity = np.exp(np.cumsum(growth))
    dd = equity / np.maximum(np.maximum.accumulate(equity), 1.0) - 1.0
    daily = (1.0 + r).groupby(r.index.floor("D")).prod() - 1.0
    k = max(int(np.ceil(0.01 * len(daily))), 1)
    mean, sd = float(r.mean() * HOURS_PER_YEAR), float(r.std() * np.sqrt(HOURS_PER_YEAR))
    out = {
        "ann_return": float(np.expm1(growth.sum() * HOURS_PER_YEAR / len(r))),
        "ann_vol": sd,
        "sharpe": mean / sd if sd > 0 else np.nan,
        "max_drawdown": float(dd.min()),
        "es99_day": float(np.sort(daily.to_numpy())[:k].mean()),
        "worst_day": float(daily.min()),
        "days": len(daily),
    }
    if exposure is not None:
        out = {"mean_exposure": float(exposure.reindex(r.index).mean()), **out}
    return out


def net_table(gross: Mapping[Key, pd.Series], net: Mapping[Key, pd.Series], cost_bps: float) -> pd.DataFrame:
    """Per (asset, rule): turnover (Σ |Δ exposure| per year), the cost per year it implies, and the
    CAGR, Sharpe and ES99 net of it (gross beside)."""
    rows = []
    for (asset, rule), g in gross.items():
        n = net[(asset, rule)]
        years = len(g.dropna()) / HOURS_PER_YEAR
        drag = float((g - n).sum() / years) if years else np.nan
        pg, pn = performance(g), performance(n)
        rows.append(
            {"asset": asset, "strategy": rule, "cost_bps": cost_bps}
            | {"turnover": drag / (cost_bps / 1e4) if cost_bps > 0 else np.nan, "cost": drag}
            | {"ann_return_gross": pg["ann_return"], "ann_return": pn["ann_return"]}
            | {"sharpe_gross": pg["sharpe"], "sharpe": pn["sharpe"], "es99_day": pn["es99_day"]}
        )
    return pd.DataFrame(rows)


def _day_sums(r: pd.Series, days: pd.DatetimeIndex) -> np.ndarray:
    """Per UTC day: compounded return, Σ r, Σ r², hours (missing hours count as flat, not as hours)."""
    by_day = r.groupby(r.index.floor("D"))
    daily = (1.0 + r.fillna(0.0)).groupby(r.index.floor("D")).prod() - 1.0
    cols = [daily, by_day.sum(), (r * r).groupby(r.index.floor("D")).sum(), by_day.count()]
    return np.column_stack([c.reindex(days).fillna(0.0).to_numpy(dtype=float) for c in cols])


def _es99_draws(daily: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """ES99 of each resample: the mean of its k smallest days (k = ⌈1 % of the days⌉)."""
    k = max(int(np.ceil(0.01 * counts.shape[1])), 1)
    order = np.argsort(daily, kind="stable")
    c = counts[:, order]
    before = np.cumsum(c, axis=1) - c
    take = np.clip(k - before, 0.0, c)
    return (take @ daily[order]) / k


def _sharpe_draws(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Annualised Sharpe of each resample from the count-weighted day sums (Σ r, Σ r², hours)."""
    s1, s2, n = counts @ sums[:, 1], counts @ sums[:, 2], counts @ sums[:, 3]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        sd = np.sqrt((s2 - n * mean * mean) / (n - 1.0))
        return mean / sd * np.sqrt(HOURS_PER_YEAR)


def paired_table(
    gross: Mapping[Key, pd.Series],
    rules: Sequence[str],
    baselines: Sequence[str],
    block_h: int,
    reps: int,
    seed: int,
) -> pd.DataFrame:
    """Per (asset, rule, baseline): ΔES99 and ΔSharpe (rule − baseline, gross) with 95% CIs."""
    rows = []
    for asset in dict.fromkeys(a for a, _ in gross):
        days = pd.DatetimeIndex(sorted(set(gross[(asset, baselines[0])].index.floor("D"))))
        if len(days) < 4:
            continue
        res = BlockResamples.draw(len(days), max(block_h / 24.0, 1.0), reps, seed, unit=1)
        counts = unit_counts(res)
        sums = {name: _day_sums(gross[(asset, name)], days) for name in (*rules, *baselines)}
        es = {name: _es99_draws(s[:, 0], counts) for name, s in sums.items()}
        sh = {name: _sharpe_draws(s, counts) for name, s in sums.items()}
        point = {name: performance(gross[(asset, name)]) for name in sums}
        for rule in rules:
            for base in baselines:
                d_es = point[rule]["es99_day"] - point[base]["es99_day"]
                d_sh = point[rule]["sharpe"] - point[base]["sharpe"]
                es_lo, es_hi = percentile_ci(es[rule] - es[base])
                sh_lo, sh_hi = percentile_ci(sh[rule] - sh[base])
                rows.append(
                    {"asset": asset, "strategy": rule, "baseline": base}
                    | {"d_es99": d_es, "d_es99_lo": float(es_lo), "d_es99_hi": float(es_hi)}
                    | {"d_sharpe": d_sh, "d_sharpe_lo": float(sh_lo), "d_sharpe_hi": float(sh_hi)}
                )
    return pd.DataFrame(rows)
