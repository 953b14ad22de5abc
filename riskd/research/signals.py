"""Out-of-sample evaluation of crash signals against the obvious baselines, walk-forward.

Any named hourly signal is scored on the same out-of-sample hours (from ``first_test``, hours where every
signal has a forecast and the crash label is known):

- **Probabilities.** A signal that already is a probability of the crash (named in ``probabilities``,
  e.g. the GARCH forecast or a calibrated ``crash_prob_24h``) is used as it is. Any other score is turned
  into one by a **walk-forward logistic calibration on its past rank**: at the start of each calendar
  month, the score's hours whose label was known by then (``T + horizon_h`` before the month) give an
  empirical CDF, and a binomial GLM (statsmodels) of the crash on that rank, fitted over 50 rank bins;
  the month's hours get ``expit(a + b x rank)`` of their rank against that past CDF. The mapping is
  monotone, uses no future label, and makes Brier scores comparable across scores of any scale.
- **Climatology** (the reference of the Brier skill) is the past-only base rate: the crash share of
  every hour whose label was known at the start of the month.
- **AUC** is the Mann–Whitney statistic of the probability (ties count one half); **Brier** the mean
  squared error; **Brier skill** ``1 - Brier / Brier(climatology)`` with a stationary block-bootstrap CI
  (:mod:`riskd.research.resample`); **Q5/Q1** the crash rate in the top over the bottom quintile of the
  raw score against past-only monthly edges (:func:`riskd.research.components.monthly_past_quintiles`).
- The **reliability diagram** bins each signal's probabilities into deciles and sets the mean forecast
  against the observed crash rate.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from scipy.special import expit

from riskd.research.components import monthly_past_quintiles, quintile_sums, tail_from_sums
from riskd.research.resample import BlockResamples, percentile_ci

CLIMATOLOGY = "climatology"


@dataclass(frozen=True)
class SignalEvaluation:
    """The out-of-sample table (one row per signal), the reliability bins, the hourly probabilities.

    ``table``: ``signal``, ``how`` (``probability`` as given / ``mapped``: walk-forward logistic on the
    past rank / ``base rate``), ``n``, ``crashes``, ``auc``, ``brier``, ``brier_clim``, ``bss`` with
    ``bss_lo``/``bss_hi``, ``ratio`` (Q5/Q1) with ``ci_lo``/``ci_hi``, ``q1_crashes``, ``q5_crashes``.
    ``reliability``: ``signal``, ``bin``, ``mean_prob``, ``rate``, ``n``. ``probabilities``: hours x
    (signals, ``climatology``, ``crash``) over the evaluated hours.
    """

    table: pd.DataFrame
    reliability: pd.DataFrame
    probabilities: pd.DataFrame
    crash: str
    reps: int
    block_h: int

    @property
    def span(self) -> str:
        """First and last evaluated hour."""
        idx = self.probabilities.index
        return f"{idx.min():%Y-%m-%d} – {idx.max():%Y-%m-%d}" if len(idx) else "no hours"


def auc(prob: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve: P(a crash hour's forecast > a calm hour's), ties one half."""
    pos = label > 0.5
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return np.nan
    ranks = stats.rankdata(prob)
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def past_base_rate(crash: pd.Series, *, horizon_h: int = 24) -> pd.Series:
    """Per hour, the crash share of all hours whose label was known at the start of the hour's month
    (the label of hour T is known at T + horizon + 1 h, when candle T + horizon has closed)."""
    idx = pd.DatetimeIndex(crash.index)
    month = idx.to_period("M") if idx.tz is None else idx.tz_localize(None).to_period("M")
    out = pd.Series(np.nan, index=idx, name=CLIMATOLOGY)
    values = crash.to_numpy(dtype=float)
    for m in pd.unique(month):
        first = m.start_time.tz_localize(idx.tz)
        known = (idx + pd.Timedelta(hours=horizon_h + 1) <= first) & ~np.isnan(values)
        if known.any():
            out[month == m] = values[known].mean()
    return out


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
    month_start = idx.floor("D") - pd.to_timedelta(idx.day - 1, unit="D")
    for first in pd.unique(month_start[idx >= first_test]):
        train = (idx + pd.Timedelta(hours=horizon_h + 1) <= first) & ~np.isnan(x) & ~np.isnan(y)
        if train.sum() < min_train or y[train].sum() == 0:
            continue
        past = np.sort(x[train])
        a, b = _fit_rank_logistic(past, x[train], y[train])
        rows = (month_start == first) & ~np.isnan(x)
        rank = np.searchsorted(past, x[rows], side="right") / len(past)
        out[rows] = expit(a + b * rank)
    return pd.Series(out, index=idx, name=score.name)


def _fit_rank_logistic(
    past_sorted: np.ndarray, x: np.ndarray, y: np.ndarray, bins: int = 50
) -> tuple[float, float]:
    """Binomial GLM of the crash on the rank, over ``bins`` equal-count rank bins (fast, and as good)."""
    rank = np.searchsorted(past_sorted, x, side="right") / len(past_sorted)
    b = np.minimum((rank * bins).astype(int), bins - 1)
    n = np.bincount(b, minlength=bins)
    hits = np.bincount(b, weights=y, minlength=bins)
    mid = np.bincount(b, weights=rank, minlength=bins)
    keep = n > 0
    X = sm.add_constant(mid[keep] / n[keep])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.GLM(
            np.column_stack([hits[keep], n[keep] - hits[keep]]), X, family=sm.families.Binomial()
        ).fit()
    return float(fit.params[0]), float(fit.params[1])


def reliability_bins(prob: np.ndarray, label: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Deciles of the forecast: mean forecast, observed crash rate and hours per bin."""
    if len(prob) == 0:
        return pd.DataFrame(columns=["bin", "mean_prob", "rate", "n"])
    q = pd.qcut(pd.Series(prob).rank(method="first"), bins, labels=False)
    frame = pd.DataFrame({"bin": q.to_numpy() + 1, "p": prob, "y": label})
    g = frame.groupby("bin")
    return pd.DataFrame({"mean_prob": g["p"].mean(), "rate": g["y"].mean(), "n": g["y"].size()}).reset_index()


def evaluate_signals(
    scores: pd.DataFrame,
    crash: pd.Series,
    *,
    first_test: pd.Timestamp,
    probabilities: Sequence[str] = (),
    crash_text: str = "",
    horizon_h: int = 24,
    block_h: int = 168,
    reps: int = 200,
    seed: int = 0,
    min_history_h: int = 24 * 180,
) -> SignalEvaluation:
    """Score every column of ``scores`` out of sample against ``crash`` (1/0/NaN hourly labels)."""
    crash = crash.reindex(scores.index)
    probs = {
        name: scores[name].astype(float)
        if name in probabilities
        else rank_calibrated(
            scores[name], crash, first_test=first_test, horizon_h=horizon_h, min_train=min_history_h
        )
        for name in scores.columns
    }
    frame = pd.DataFrame(probs)
    frame[CLIMATOLOGY] = past_base_rate(crash, horizon_h=horizon_h)
    frame["crash"] = crash
    frame = frame[frame.index >= first_test].dropna()
    if frame.empty:  # a history shorter than the training needs: nothing is out of sample
        table = pd.DataFrame({"signal": [*scores.columns, CLIMATOLOGY], "n": 0})
        return SignalEvaluation(
            table.assign(how="", bss=np.nan), pd.DataFrame(), frame, crash_text, reps, block_h
        )
    y = frame["crash"].to_numpy()
    res = BlockResamples.draw(len(frame), block_h, reps, seed) if len(frame) >= 2 * block_h and reps else None
    clim_err = (frame[CLIMATOLOGY].to_numpy() - y) ** 2
    rows, rel = [], []
    for name in [*scores.columns, CLIMATOLOGY]:
        p = frame[name].to_numpy()
        err = (p - y) ** 2
        raw = scores[name].reindex(frame.index) if name in scores else frame[name]
        q = (
            monthly_past_quintiles(scores[name], min_history_h).reindex(frame.index)
            if name in scores
            else None
        )
        sums = np.column_stack([err, clim_err])
        parts = [sums] if q is None else [sums, quintile_sums(q.to_numpy(), y[:, None])]
        x = np.hstack(parts)
        boot = res.sums(x) if res is not None else None
        bss_lo: float = np.nan
        bss_hi: float = np.nan
        if boot is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                ci = percentile_ci(1.0 - boot[:, 0] / boot[:, 1])
                bss_lo, bss_hi = float(ci[0]), float(ci[1])
        tail = {}
        if q is not None:
            t = tail_from_sums(
                q, frame[["crash"]], x[:, 2:].sum(axis=0), None if boot is None else boot[:, 2:], 0.95
            )[0]
            tail = {k: t[k] for k in ("ratio", "ci_lo", "ci_hi", "q1_crashes", "q5_crashes")}
        brier, brier_clim = float(err.mean()), float(clim_err.mean())
        how = "base rate" if name == CLIMATOLOGY else "probability" if name in probabilities else "mapped"
        rows.append(
            {
                "signal": name,
                "how": how,
                "n": len(y),
                "crashes": int(y.sum()),
                "auc": auc(p, y) if name != CLIMATOLOGY else auc(raw.to_numpy(), y),
                "brier": brier,
                "brier_clim": brier_clim,
                "bss": 1.0 - brier / brier_clim if brier_clim > 0 else np.nan,
                "bss_lo": float(bss_lo),
                "bss_hi": float(bss_hi),
                **tail,
            }
        )
        if name != CLIMATOLOGY:
            rel.append(reliability_bins(p, y).assign(signal=name))
    reliability = pd.concat(rel, ignore_index=True) if rel else pd.DataFrame()
    return SignalEvaluation(pd.DataFrame(rows), reliability, frame, crash_text, reps, block_h)
