"""The GARCH(1,1) baseline: a quant's first forecast of a crash, refit walk-forward.

BTC's hourly log returns (in percent) get a zero-mean GARCH(1,1) with normal innovations (``arch``),
refit every ``refit_months`` on the hours before the refit date: all of them (expanding window) or the
last ``window_h`` (default two years: a fit costs ~0.3 s per year of hours, and the recent regime is
the one being forecast). Between refits the
parameters are fixed and the conditional variance is filtered forward hour by hour from the returns
known at each close, so the forecast at hour ``T`` uses returns up to ``T`` only.

The forecast becomes a probability of the crash definition (``riskd.research.tailrisk``) through the
sum of the next ``horizon_h`` hourly variance forecasts, ``V = sum_k E[sigma^2_{T+k}]`` (the closed form
``sigma_bar^2 + (alpha + beta)^(k-1) (sigma^2_{T+1} - sigma_bar^2)``), with the horizon's log return taken
as normal with mean 0 and variance ``V``:

- ``return``: ``P(r < log(1 + threshold)) = Phi(log(1 + threshold) / sqrt(V))``;
- ``drawdown``: the reflection principle for a driftless Brownian path, ``P(min < b) = 2 Phi(b / sqrt(V))``
  with ``b = log(1 + threshold)``, with the Broadie–Glasserman shift of the barrier by
  ``0.5826 sqrt(V / horizon_h)`` because the path is watched at hourly closes only (a discrete minimum
  misses some crossings).

Both are approximations (the normal understates the tails the GARCH filter does not absorb); the out-of-
sample table says how calibrated they are, and the walk-forward mapping of the forecast volatility is
evaluated beside them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from arch import arch_model
from scipy import stats
from scipy.signal import lfilter

BG_SHIFT = 0.5826
"""Broadie–Glasserman–Kou continuity correction: -zeta(1/2) / sqrt(2 pi)."""


@dataclass(frozen=True)
class GarchFit:
    """One fit: ``omega`` (percent^2 per hour), ``alpha``, ``beta``, the fit's last hour and its size."""

    omega: float
    alpha: float
    beta: float
    fitted_to: pd.Timestamp
    n: int

    @property
    def persistence(self) -> float:
        """``alpha + beta``."""
        return self.alpha + self.beta


@dataclass(frozen=True)
class GarchForecast:
    """The walk-forward result: per hour the forecast ``vol_h`` (std of the next ``horizon_h`` hours'
    log return, fraction) and ``prob`` (the crash probability), and the fits in order."""

    forecast: pd.DataFrame
    fits: tuple[GarchFit, ...]
    horizon_h: int


def fit_garch(returns_pct: np.ndarray, fitted_to: pd.Timestamp, start: GarchFit | None = None) -> GarchFit:
    """Zero-mean GARCH(1,1), normal innovations, on hourly log returns in percent (arch); ``start``: the
    previous refit, whose parameters start the optimiser (a quarter's new hours move them little)."""
    y = returns_pct[np.isfinite(returns_pct)]
    first = None if start is None else np.array([start.omega, start.alpha, start.beta])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; a poor fit shows in the OOS table
        res = arch_model(y, mean="Zero", vol="GARCH", p=1, q=1, dist="normal", rescale=False).fit(
            disp="off", show_warning=False, starting_values=first
        )
    p = res.params
    return GarchFit(float(p["omega"]), float(p["alpha[1]"]), float(p["beta[1]"]), fitted_to, len(y))


def filter_variance(returns_pct: np.ndarray, fit: GarchFit, start_var: float) -> np.ndarray:
    """``sigma^2_{t+1}`` after each hour's return (percent^2): the one-step variance forecast at each close.

    A missing return is taken as 0 (no news).
    """
    e2 = np.nan_to_num(returns_pct) ** 2
    # s[t] = omega + alpha e2[t] + beta s[t-1], with s[-1] = start_var
    zi = np.array([fit.beta * start_var])
    out, _ = lfilter([fit.alpha], [1.0, -fit.beta], e2, zi=zi)
    return out + fit.omega / (1.0 - fit.beta) * (1.0 - fit.beta ** np.arange(1, len(e2) + 1))


def horizon_variance(next_var: np.ndarray, fit: GarchFit, horizon_h: int) -> np.ndarray:
    """Sum of the next ``horizon_h`` hourly variance forecasts from the one-step forecast ``next_var``."""
    pers = fit.persistence
    if pers >= 1.0 or fit.omega <= 0:
        return next_var * horizon_h
    long_run = fit.omega / (1.0 - pers)
    decay = (1.0 - pers**horizon_h) / (1.0 - pers)
    return long_run * horizon_h + (next_var - long_run) * decay


def crash_probability(vol_h: np.ndarray, kind: str, threshold: float, horizon_h: int) -> np.ndarray:
    """P(crash) from the horizon's log-return std ``vol_h`` (fraction) under the module's approximation."""
    b = np.log1p(threshold)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "return":
            return stats.norm.cdf(b / vol_h)
        if kind == "drawdown":
            shifted = b - BG_SHIFT * vol_h / np.sqrt(horizon_h)
            return np.minimum(2.0 * stats.norm.cdf(shifted / vol_h), 1.0)
    raise ValueError(f"no GARCH probability for the crash kind {kind!r}")


def walk_forward_garch(
    btc_close: pd.Series,
    *,
    first_test: pd.Timestamp,
    refit_months: int = 3,
    horizon_h: int = 24,
    kind: str = "return",
    threshold: float = -0.05,
    min_train_h: int = 24 * 180,
    window_h: int | None = 2 * 8766,
) -> GarchForecast:
    """Forecasts from ``first_test`` on, refit every ``refit_months`` on the earlier hours (the last
    ``window_h`` of them, or all when None).

    ``kind`` ``cascade`` has no closed form: ``prob`` is NaN and only ``vol_h`` is useful (mapped like
    any other score).
    """
    close = btc_close.astype(float)
    ret = 100.0 * np.log(close).diff()
    idx = close.index
    starts = pd.date_range(first_test, idx.max() + pd.Timedelta(hours=1), freq=f"{refit_months}MS", tz="UTC")
    if len(starts) == 0 or starts[0] != first_test:
        starts = pd.DatetimeIndex([first_test]).append(starts)
    var = np.full(len(idx), np.nan)
    fits: list[GarchFit] = []
    vals = ret.to_numpy()
    for a, b in zip(starts, [*starts[1:], idx.max() + pd.Timedelta(hours=1)], strict=True):
        train = vals[idx < a]
        train = train[-window_h:] if window_h else train
        if np.isfinite(train).sum() < min_train_h:
            continue
        fit = fit_garch(train, a - pd.Timedelta(hours=1), fits[-1] if fits else None)
        fits.append(fit)
        # filter from the start of the training data so the state at ``a`` is the fitted model's own
        upto = idx < b
        s = filter_variance(vals[upto][1:], fit, float(np.nanvar(train)))
        one_step = np.r_[np.nan, s]
        test = (idx >= a) & upto
        var[test] = horizon_variance(one_step[test[upto]], fit, horizon_h)
    vol_h = np.sqrt(var) / 100.0
    prob = (
        crash_probability(vol_h, kind, threshold, horizon_h)
        if kind != "cascade"
        else np.full(len(idx), np.nan)
    )
    frame = pd.DataFrame({"vol_h": vol_h, "prob": prob}, index=idx)
    return GarchForecast(frame, tuple(fits), horizon_h)


def simulate_garch(n: int, omega: float, alpha: float, beta: float, seed: int = 0) -> np.ndarray:
    """A GARCH(1,1) path of ``n`` returns (same units as ``omega``'s square root), normal innovations."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    out = np.empty(n)
    var = omega / (1.0 - alpha - beta)
    for t in range(n):
        out[t] = np.sqrt(var) * z[t]
        var = omega + alpha * out[t] ** 2 + beta * var
    return out
