"""A synthetic BTC whose crashes follow a planted probability, for the crash model's acceptance tests.

The *background* market has hourly log returns ``mu_t + sigma_t z_t``: a slowly moving volatility (log
sigma an AR(1) with a memory of about three weeks) and a slowly moving drift (an AR(1) with a memory of
about five days, so the market trends and the drawdown from the week's high wanders), both small enough
that a 5 % drawdown within a day seldom happens by itself. On top, a *crash* starts at hour ``t + 1`` with
the planted probability ``h_t``, a function of the background's state at the close of ``t`` (the core's
own functions over the background closes):

- ``driver="month_vol_drawdown"``: ``logit h = a + b (log rv_30d − log rv̄) + c · drawdown_7d`` — the
  30-day volatility level and the drawdown from the week's high matter; the last day's volatility only
  through them;
- ``driver="day_vol"``: ``logit h = a + b (log rv_24h − log rv̄)`` over the *observed* closes — only the
  last day's volatility, as a 24 h-volatility model reads it.

For ``month_vol_drawdown`` a crash is a fall of about 5.8 % over two hours, given back over the next day,
and the hazard reads the background, not the crashes: a crash-fed hazard (a crash raising the volatility
and the drawdown the next hazard reads) runs away into a crash every hour. The observed closes
(background plus crashes) are what the model sees, so its inputs measure the planted state with the
crashes' noise in them, as real inputs would. For ``day_vol`` the hazard reads the observed closes, so
nothing but their 24 h volatility carries information; its crash is a slide of 6 % over a day (hourly
falls small enough that a slide does not set off the next), given back over the day after. Either way
every hour just before a crash is a drawdown crash (riskd's default definition).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskd.core.timeseries import drawdown, realised_vol
from riskd.research.labels import HOUR

CRASH_PATH = (-0.03, -0.03)
"""Log returns of the two crash hours (about −5.8 % in all)."""
REBOUND_H = 24
"""Hours over which a crash is given back, evenly."""


@dataclass(frozen=True)
class CrashMarket:
    """BTC's hourly ``close`` and the planted per-hour crash-start probability ``hazard`` (hour t: the
    probability that a crash starts at t + 1, known at the close of t)."""

    close: pd.Series
    hazard: pd.Series
    driver: str


def crash_market(
    *,
    driver: str = "month_vol_drawdown",
    years: float = 6.0,
    seed: int = 0,
    start: str = "2019-01-01",
    base: float = -6.5,
    slope: float = 2.0,
    drawdown_slope: float = -25.0,
    hourly_vol: float = 0.002,
    drift_sd: float = 0.0003,
) -> CrashMarket:
    """The market of the module docstring over ``years`` of hours."""
    rng = np.random.default_rng(seed)
    n = int(years * 8766)
    log_sigma = np.log(hourly_vol) + _slow_ar1(rng, n, memory_h=24 * 20, sd=0.35)
    background = _slow_ar1(rng, n, memory_h=24 * 5, sd=drift_sd) + np.exp(log_sigma) * rng.standard_normal(n)
    background[0] = 0.0
    bg_close = 30_000.0 * np.exp(np.cumsum(background))
    with np.errstate(invalid="ignore", divide="ignore"):
        lrv30 = np.log(realised_vol(bg_close, 720)) - np.log(hourly_vol * np.sqrt(720))
        eta = base + slope * lrv30 + drawdown_slope * drawdown(bg_close, 168)
    if driver == "day_vol":
        return _day_vol_market(background, base, slope, hourly_vol, rng, start)
    hazard = np.nan_to_num(1.0 / (1.0 + np.exp(-eta)), nan=1.0 / (1.0 + np.exp(-base)))
    shocks = np.zeros(n)
    busy_until = -1
    for t in np.flatnonzero(rng.random(n) < hazard).tolist():
        if t + 1 <= busy_until or t + len(CRASH_PATH) + REBOUND_H >= n:
            continue  # one crash at a time
        k = t + 1 + len(CRASH_PATH)
        shocks[t + 1 : k] = CRASH_PATH
        shocks[k : k + REBOUND_H] = -sum(CRASH_PATH) / REBOUND_H
        busy_until = k + REBOUND_H - 1
    idx = pd.date_range(start, periods=n, freq=HOUR, tz="UTC", name="ts")
    close = 30_000.0 * np.exp(np.cumsum(background + shocks))
    return CrashMarket(pd.Series(close, index=idx, name="BTC"), pd.Series(hazard, index=idx), driver)


SLIDE_H = 24
"""Hours of the ``day_vol`` market's slide (6 % in all)."""


def _day_vol_market(
    background: np.ndarray, base: float, slope: float, hourly_vol: float, rng: np.random.Generator, start: str
) -> CrashMarket:
    """The ``day_vol`` market: hour by hour, the hazard from the observed last 24 log returns."""
    n = len(background)
    ret, hazard = background.copy(), np.zeros(n)
    ref = np.log(hourly_vol * np.sqrt(24))
    busy_until, window = -1, 0.0  # running sum of the last 24 squared returns
    for t in range(1, n):
        window += ret[t] * ret[t] - (ret[t - 24] * ret[t - 24] if t >= 24 else 0.0)
        rv24 = np.sqrt(max(window, 1e-18) * 24.0 / min(t, 24))
        hazard[t] = 1.0 / (1.0 + np.exp(-(base + slope * (np.log(rv24) - ref))))
        if t >= busy_until and t + 2 * SLIDE_H < n and rng.random() < hazard[t]:
            ret[t + 1 : t + 1 + SLIDE_H] += -0.06 / SLIDE_H
            ret[t + 1 + SLIDE_H : t + 1 + 2 * SLIDE_H] += 0.06 / SLIDE_H
            busy_until = t + 2 * SLIDE_H
    idx = pd.date_range(start, periods=n, freq=HOUR, tz="UTC", name="ts")
    close = 30_000.0 * np.exp(np.cumsum(ret))
    return CrashMarket(pd.Series(close, index=idx, name="BTC"), pd.Series(hazard, index=idx), "day_vol")


def _slow_ar1(rng: np.random.Generator, n: int, *, memory_h: int, sd: float) -> np.ndarray:
    """A zero-mean AR(1) with stationary sd ``sd`` and an e-folding memory of ``memory_h`` steps."""
    phi = 1.0 - 1.0 / memory_h
    eps = rng.standard_normal(n) * sd * np.sqrt(1.0 - phi * phi)
    out = np.empty(n)
    out[0] = rng.standard_normal() * sd
    for t in range(1, n):
        out[t] = phi * out[t - 1] + eps[t]
    return out
