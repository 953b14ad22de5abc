"""Seeded synthetic markets with planted truths, for tests and the benchmark.

BTC follows a random walk with rare planted cascade hours (a sharp drop on a volume spike). Each alt's
hourly return is ``beta x BTC's + idiosyncratic noise``, plus, if asked, a planted drift of
``alt_alpha`` spread over the ``alpha_hours`` after each cascade. So the true beta of any alt basket on
BTC is ``beta`` and its true alpha per trade is ``alt_alpha`` — the numbers the statistics must find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskd.research.backtest import non_overlapping


@dataclass(frozen=True)
class SyntheticMarket:
    """Frames shaped like the core's output: ``closes`` (hours x symbols), ``volume`` (BTC, base units),
    ``features`` (``btc_ret_1h``, ``btc_vol_ratio``, ``cfi``), ``events`` (cascade hours, 24 h cool-down),
    ``planted`` (the hours where a cascade was planted), ``crashing`` (hours x symbols: the symbol fell
    more than 2% in the hour while at least 3 symbols did, a stand-in for the multi-asset detector)."""

    closes: pd.DataFrame
    volume: pd.Series
    features: pd.DataFrame
    events: pd.DatetimeIndex
    planted: pd.DatetimeIndex
    crashing: pd.DataFrame


def synthetic_market(
    *,
    years: float = 6.0,
    n_alts: int = 15,
    beta: float = 1.16,
    cascades_per_year: float = 40.0,
    alt_alpha: float = 0.0,
    alpha_hours: int = 48,
    btc_vol: float = 0.006,
    idio_vol: float = 0.006,
    start: str = "2020-01-01",
    seed: int = 0,
) -> SyntheticMarket:
    """A market of BTC and ``n_alts`` alts over ``years`` of hours (returns are fractions per hour)."""
    rng = np.random.default_rng(seed)
    n = int(years * 365.25 * 24)
    index = pd.date_range(start, periods=n, freq="h", tz="UTC", name="ts")
    btc = rng.normal(0.0, btc_vol, n)
    volume = rng.lognormal(0.0, 0.3, n) * 1000.0
    planted = np.sort(rng.choice(np.arange(48, n - 96), size=int(cascades_per_year * years), replace=False))
    btc[planted] = rng.uniform(-0.06, -0.015, planted.size)
    btc[np.setdiff1d(np.arange(n), planted)] -= btc[planted].sum() / (n - planted.size)  # no net drift
    volume[planted] *= rng.uniform(1.5, 6.0, planted.size)
    alts = beta * btc[:, None] + rng.normal(0.0, idio_vol, (n, n_alts))
    if alt_alpha:
        drift = np.zeros(n)
        for p in planted:
            drift[p + 1 : p + 1 + alpha_hours] += alt_alpha / alpha_hours
        alts += drift[:, None]
    rets = np.column_stack([btc, alts])
    closes = pd.DataFrame(
        100.0 * np.exp(np.cumsum(np.log1p(rets), axis=0)),
        index=index,
        columns=["BTC", *[f"ALT{i:02d}" for i in range(n_alts)]],
    )
    vol = pd.Series(volume, index=index, name="volume")
    features = pd.DataFrame(
        {
            "btc_ret_1h": closes["BTC"].pct_change(),
            "btc_vol_ratio": vol / vol.shift(1).rolling(24).mean(),
            "cfi": ar1(rng, n, 0.995),
        },
        index=index,
    )
    hits = (features["btc_ret_1h"] < -0.03) & (features["btc_vol_ratio"] > 2.0)
    events = non_overlapping(index[hits.to_numpy()], 24).rename("ts")
    drops = closes.pct_change() < -0.02
    crashing = drops & (drops.sum(axis=1) >= 3).to_numpy()[:, None]
    return SyntheticMarket(closes, vol, features, events, index[planted], crashing)


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """A unit-variance AR(1) series with persistence ``phi`` (a stand-in fragility score)."""
    shocks = rng.normal(0.0, np.sqrt(1 - phi**2), n)
    out = np.empty(n)
    out[0] = shocks[0]
    for i in range(1, n):
        out[i] = phi * out[i - 1] + shocks[i]
    return out


@dataclass(frozen=True)
class PlantedTailDriver:
    """A tail-risk driver planted in **level** form: ``features`` holds ``driver`` (the level, a slow
    AR(1)) and ``driver_z`` (its 168 h z-score, the form the CFI's components take); ``crash`` is 1.0
    in an hour with probability ``base x ratio`` when the level is in its top (whole-sample) quintile,
    ``base`` otherwise, so the true Q5/Q1 crash-rate ratio of the level is ``ratio``."""

    features: pd.DataFrame
    crash: pd.Series
    ratio: float


def planted_tail_driver(
    *,
    years: float = 6.0,
    ratio: float = 5.0,
    base: float = 0.01,
    phi: float = 0.9995,
    z_window_h: int = 168,
    start: str = "2020-01-01",
    seed: int = 0,
) -> PlantedTailDriver:
    """Hourly driver level, its rolling z-score and crash labels with the planted Q5/Q1 ``ratio``."""
    rng = np.random.default_rng(seed)
    n = int(years * 365.25 * 24)
    index = pd.date_range(start, periods=n, freq="h", tz="UTC", name="ts")
    level = pd.Series(ar1(rng, n, phi), index=index)
    roll = level.rolling(z_window_h, min_periods=z_window_h)
    z = (level - roll.mean()) / roll.std()
    top = level > level.quantile(0.8)
    crash = pd.Series((rng.random(n) < np.where(top, base * ratio, base)).astype(float), index=index)
    return PlantedTailDriver(pd.DataFrame({"driver": level, "driver_z": z}), crash.rename("crash"), ratio)
