"""Crash signals as out-of-sample probabilities, so that any score can be scored like a forecast
(:mod:`riskd.research.evaluation` scores them on the same hours):

- **Probabilities.** A signal that already is a probability of the crash (named in ``probabilities``,
  e.g. the GARCH forecast or a calibrated ``crash_prob_24h``) is used as it is. Any other score is turned
  into one by a **walk-forward logistic calibration on its past rank**: at the start of each calendar
  month, the score's hours whose label was known by then (``T + horizon_h + 1 h`` before the month) give an
  empirical CDF, and a binomial GLM (:func:`riskd.research.logit.fit_logit`) of the crash on that rank, fitted over 50 rank bins;
  the month's hours get ``expit(a + b x rank)`` of their rank against that past CDF. The mapping is
  monotone, uses no future label, and makes Brier scores comparable across scores of any scale.
- **Climatology** (the reference of the Brier skill) is the past-only base rate: the crash share of
  every hour whose label was known at the start of the month.
- The **reliability diagram** bins each signal's probabilities into deciles and sets the mean forecast
  against the observed crash rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from riskd.research.logit import fit_logit

CLIMATOLOGY = "climatology"


def past_base_rate(crash: pd.Series, *, horizon_h: int = 24) -> pd.Series:
    """Per hour, the crash share of all hours whose label was known at the start of the hour's month
    (the label of hour T is known at T + horizon + 1 h, when candle T + horizon has closed)."""
    idx = pd.DatetimeIndex(crash.index)
    values = crash.to_numpy(dtype=float)
    month = _month_starts(idx)
    known = np.searchsorted((idx + pd.Timedelta(hours=horizon_h + 1)).asi8, month.asi8, side="right")
    have = ~np.isnan(values)
    hits = np.r_[0.0, np.cumsum(np.where(have, values, 0.0))][known]
    count = np.r_[0, np.cumsum(have)][known]
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.Series(np.where(count > 0, hits / count, np.nan), index=idx, name=CLIMATOLOGY)


def _month_starts(idx: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The first instant of each hour's calendar month, in the index's time zone."""
    return idx.floor("D") - pd.to_timedelta(idx.day - 1, unit="D")


def rank_calibrated(
    score: pd.Series,
    crash: pd.Series,
    *,
    first_test: pd.Timestamp,
    horizon_h: int = 24,
    min_train: int = 24 * 180,
) -> pd.Series:
    """The score as an out-of-sample crash probability (walk-forward logistic on the past rank, monthly)."""
    idx = pd.DatetimeIndex(score.index)
    x, y = score.to_numpy(dtype=float), crash.reindex(idx).to_numpy(dtype=float)
    out = np.full(len(idx), np.nan)
    month_start = _month_starts(idx).asi8
    known_at = (idx + pd.Timedelta(hours=horizon_h + 1)).asi8  # sorted: the training rows are a prefix
    usable = ~np.isnan(x) & ~np.isnan(y)
    firsts = np.flatnonzero(np.r_[True, month_start[1:] != month_start[:-1]])
    for a, b in zip(firsts, np.r_[firsts[1:], len(idx)], strict=True):
        if idx[a] < first_test:
            continue
        train = np.flatnonzero(usable[: int(np.searchsorted(known_at, month_start[a], side="right"))])
        if len(train) < min_train or y[train].sum() == 0:
            continue
        past = np.sort(x[train])
        lo, slope = _fit_rank_logistic(past, x[train], y[train])
        rows = a + np.flatnonzero(~np.isnan(x[a:b]))
        out[rows] = expit(lo + slope * np.searchsorted(past, x[rows], side="right") / len(past))
    return pd.Series(out, index=idx, name=score.name)


def _fit_rank_logistic(
    past_sorted: np.ndarray, x: np.ndarray, y: np.ndarray, bins: int = 50
) -> tuple[float, float]:
    """Binomial GLM of the crash on the rank, over ``bins`` equal-count rank bins (fast, and as good):
    :func:`riskd.research.logit.fit_logit` on the bins' crash shares weighted by their hours."""
    rank = np.searchsorted(past_sorted, x, side="right") / len(past_sorted)
    b = np.minimum((rank * bins).astype(int), bins - 1)
    n = np.bincount(b, minlength=bins).astype(float)
    hits = np.bincount(b, weights=y, minlength=bins)
    mid = np.bincount(b, weights=rank, minlength=bins)
    keep = n > 0
    design = np.column_stack([np.ones(int(keep.sum())), mid[keep] / n[keep]])
    try:
        fit = fit_logit(design, hits[keep] / n[keep], weights=n[keep])
    except ValueError:  # no crash in the past, or a separation: the base rate, flat in the rank
        share = float(hits.sum() / n.sum())
        return float(np.log(share / (1.0 - share))) if 0 < share < 1 else np.nan, 0.0
    return float(fit.params[0]), float(fit.params[1])


def reliability_bins(prob: np.ndarray, label: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Deciles of the forecast: mean forecast, observed crash rate and hours per bin."""
    if len(prob) == 0:
        return pd.DataFrame(columns=["bin", "mean_prob", "rate", "n"])
    q = pd.qcut(pd.Series(prob).rank(method="first"), bins, labels=False)
    frame = pd.DataFrame({"bin": q.to_numpy() + 1, "p": prob, "y": label})
    g = frame.groupby("bin")
    return pd.DataFrame({"mean_prob": g["p"].mean(), "rate": g["y"].mean(), "n": g["y"].size()}).reset_index()
