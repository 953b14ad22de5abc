"""Beta decomposition: is a strategy's return alpha, or the alts' higher beta to BTC?

Jensen's regression of the alt-basket trade return on BTC's return over the same trade (statsmodels
OLS), with ordinary and heteroskedasticity-and-autocorrelation-consistent (Newey–West) standard errors.
Trades do not overlap, so the autocorrelation HAC guards against is that of consecutive events in one
stress episode; the default lag count is the Newey–West rule ``floor(4 (n/100)^(2/9))``.

A control (e.g. BTC's realised volatility before the event) is centred on its sample mean by default,
so the intercept stays "alpha at the typical control value". Uncentred, the intercept becomes alpha at
zero volatility, an extrapolation outside the data; pass ``center_controls=False`` for that version.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from riskd.research.events import BTC, hourly_grid


def newey_west_lags(n: int) -> int:
    """Newey–West (1994) rule-of-thumb lag count for ``n`` observations."""
    return int(np.floor(4 * (n / 100) ** (2 / 9))) if n > 0 else 0


def beta_decomposition(
    y: pd.Series,
    x: pd.Series,
    controls: pd.DataFrame | None = None,
    *,
    hac_lags: int | None = None,
    center_controls: bool = True,
) -> pd.DataFrame:
    """OLS of ``y`` (the strategy's per-trade return) on ``x`` (BTC's return over the same trade).

    One row per model: ``base`` (``y ~ 1 + x``) and, if ``controls`` is given, ``controlled``
    (``y ~ 1 + x + controls``). Columns: ``n``, ``alpha`` (fraction per trade), ``alpha_se``,
    ``alpha_p`` (ordinary), ``alpha_ci_lo``/``alpha_ci_hi`` (ordinary 95%), ``alpha_se_hac``, ``alpha_p_hac``,
    the same for ``beta``, ``r2``,
    ``hac_lags``, and ``<control>``/``<control>_p_hac`` for each control's coefficient.
    """
    data = pd.concat({"y": y, "x": x}, axis=1)
    specs: list[tuple[str, list[str]]] = [("base", [])]
    if controls is not None:
        ctrl = controls.reindex(data.index)
        if center_controls:
            ctrl = ctrl - ctrl.mean()
        data = pd.concat([data, ctrl], axis=1)
        specs.append(("controlled", list(ctrl.columns)))
    data = data.dropna()
    rows = []
    for name, extra in specs:
        rows.append({"model": name, **_fit(data["y"], data[["x", *extra]], hac_lags)})
    return pd.DataFrame(rows)


def _fit(y: pd.Series, regressors: pd.DataFrame, hac_lags: int | None) -> dict[str, float]:
    n = len(y)
    lags = newey_west_lags(n) if hac_lags is None else hac_lags
    if n < regressors.shape[1] + 2:
        return {"n": n, "hac_lags": lags, "alpha": np.nan, "beta": np.nan, "r2": np.nan}
    X = sm.add_constant(regressors, has_constant="add")
    ols = sm.OLS(y, X).fit()
    hac = sm.OLS(y, X).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    ci = ols.conf_int(0.05)
    out = {
        "n": n,
        "alpha": ols.params["const"],
        "alpha_se": ols.bse["const"],
        "alpha_p": ols.pvalues["const"],
        "alpha_ci_lo": ci.loc["const", 0],
        "alpha_ci_hi": ci.loc["const", 1],
        "alpha_se_hac": hac.bse["const"],
        "alpha_p_hac": hac.pvalues["const"],
        "beta": ols.params["x"],
        "beta_se": ols.bse["x"],
        "beta_p": ols.pvalues["x"],
        "beta_ci_lo": ci.loc["x", 0],
        "beta_ci_hi": ci.loc["x", 1],
        "beta_p_hac": hac.pvalues["x"],
        "r2": ols.rsquared,
        "hac_lags": lags,
    }
    for col in regressors.columns.drop("x"):
        out[col] = ols.params[col]
        out[f"{col}_p_hac"] = hac.pvalues[col]
    return out


def pre_event_volatility(
    closes: pd.DataFrame, entries: pd.Index, hours: int = 24, *, symbol: str = BTC
) -> pd.Series:
    """Standard deviation of ``symbol``'s hourly returns over the ``hours`` hours up to each entry close
    (fraction per hour; includes the event hour itself, which is known at the entry)."""
    close = hourly_grid(closes[[symbol]])[symbol]
    vol = close.pct_change(fill_method=None).rolling(hours, min_periods=hours // 2).std()
    return vol.reindex(pd.DatetimeIndex(entries)).rename(f"{symbol.lower()}_vol_{hours}h")


def conditional_split(alt: pd.Series, btc: pd.Series) -> pd.DataFrame:
    """The strategy's trades split by what BTC did over them: ``btc_recovers`` (BTC return > 0) and
    ``btc_keeps_falling`` (≤ 0). Columns: ``n``, ``alt_mean``, ``btc_mean`` (fractions), ``alt_win_rate``,
    ``alt_t``, ``alt_p``, ``alt_ci_lo``/``alt_ci_hi`` (one-sample t-test of the alt mean against zero)."""
    frame = pd.concat({"alt": alt, "btc": btc}, axis=1).dropna()
    rows = []
    for name, mask in (("btc_recovers", frame["btc"] > 0), ("btc_keeps_falling", frame["btc"] <= 0)):
        part = frame[mask]
        t, p = (np.nan, np.nan)
        lo, hi = (np.nan, np.nan)
        if len(part) > 1 and part["alt"].std() > 0:
            res = stats.ttest_1samp(part["alt"], 0.0)
            t, p = float(res.statistic), float(res.pvalue)
            lo, hi = res.confidence_interval(0.95)
        rows.append(
            {
                "case": name,
                "n": len(part),
                "alt_mean": part["alt"].mean(),
                "btc_mean": part["btc"].mean(),
                "alt_win_rate": (part["alt"] > 0).mean() if len(part) else np.nan,
                "alt_t": t,
                "alt_p": p,
                "alt_ci_lo": float(lo),
                "alt_ci_hi": float(hi),
            }
        )
    return pd.DataFrame(rows)


def alpha_net_of_cost(regression: pd.DataFrame, cost: float) -> pd.DataFrame:
    """The cost per trade on its own line beside each model's gross alpha, and alpha net of it.

    The regression is of gross returns (costs are a constant per trade, so they only shift the
    intercept: fitting net returns would fold the cost into "alpha"). Net alpha = gross alpha - cost,
    its CI the gross one shifted, its p-value a HAC z-test of gross alpha = cost. Columns: ``model``,
    ``alpha_gross``, ``cost``, ``alpha_net``, ``alpha_net_ci_lo``/``alpha_net_ci_hi``, ``alpha_net_p_hac``.
    """
    rows = []
    for r in regression.itertuples(index=False):
        alpha = getattr(r, "alpha", np.nan)
        se = getattr(r, "alpha_se_hac", np.nan)
        net = alpha - cost
        z = net / se if se and np.isfinite(se) and se > 0 else np.nan
        rows.append(
            {
                "model": r.model,
                "alpha_gross": alpha,
                "cost": cost,
                "alpha_net": net,
                "alpha_net_ci_lo": getattr(r, "alpha_ci_lo", np.nan) - cost,
                "alpha_net_ci_hi": getattr(r, "alpha_ci_hi", np.nan) - cost,
                "alpha_net_p_hac": float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan,
            }
        )
    return pd.DataFrame(rows)
