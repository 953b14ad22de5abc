"""Fitting the crash probability: labels, one logistic fit, and the walk-forward refits.

Pure: frames in, :class:`~riskd.core.crashprob.CrashModel` and series out (``riskd calibrate`` reads
the store and writes the file). The label of hour T is "BTC's lowest hourly close over the next
``horizon_hours`` is at or below ``threshold`` from T's close"; it is known once the candle T + horizon
has closed, at T + (horizon + 1) h, so a fit dated F uses only rows with T + (horizon + 1) h ≤ F.
The walk-forward refits on an expanding window at each period start and predicts the period after it
with the model fitted before it: that series is the out-of-sample ``crash_prob_24h``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from numpy.lib.stride_tricks import sliding_window_view

from riskd.core.crashprob import CrashModel, predict

HOUR = pd.Timedelta(hours=1)


@dataclass(frozen=True)
class CrashSpec:
    """What is predicted and from what: the feature columns, the horizon (hours) and the threshold."""

    features: tuple[str, ...]
    horizon_hours: int = 24
    threshold: float = -0.05


@dataclass(frozen=True)
class CrashWalkForward:
    """The out-of-sample probability (NaN before the first fit) and the models, one per fit date."""

    prob: pd.Series
    models: tuple[CrashModel, ...]
    fit_dates: tuple[pd.Timestamp, ...]


def crash_labels(close: pd.Series, horizon_hours: int, threshold: float) -> pd.Series:
    """1.0 where the lowest close of the next ``horizon_hours`` hours is ≤ (1 + threshold) × this
    close, else 0.0; NaN where this close is missing, the window runs past the data, or it has no close.

    Hourly closes, not lows: an intrahour wick that recovers within the hour does not count.
    """
    c = close.to_numpy(dtype=np.float64)
    n, h = len(c), horizon_hours
    future = np.full(n, np.nan)
    if n > h:
        windows = sliding_window_view(c[1:], h)  # row t: closes t+1 … t+h
        with warnings.catch_warnings():  # an all-NaN window is a NaN label, on purpose
            warnings.simplefilter("ignore", RuntimeWarning)
            future[: n - h] = np.nanmin(windows, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        hit = (future / c - 1.0 <= threshold).astype(np.float64)
    return pd.Series(np.where(np.isnan(future) | np.isnan(c), np.nan, hit), index=close.index, name="crash")


def label_known_at(index: pd.DatetimeIndex, horizon_hours: int) -> pd.DatetimeIndex:
    """When each row's label is known: the close of candle T + horizon, i.e. T + (horizon + 1) h."""
    return index + (horizon_hours + 1) * HOUR


def fit_crash_model(
    features: pd.DataFrame, labels: pd.Series, spec: CrashSpec, fitted_at: pd.Timestamp
) -> CrashModel:
    """A logistic regression of ``labels`` on the standardised ``spec.features`` (rows with any NaN
    dropped). ValueError when the rows are too few, a feature is constant, or the fit does not converge
    (e.g. perfect separation)."""
    x = features.loc[:, list(spec.features)].astype(np.float64)
    ok = x.notna().all(axis=1) & labels.notna()
    x, y = x[ok], labels[ok].astype(np.float64)
    n_crash = int(y.sum())
    if len(y) < 10 * (len(spec.features) + 1) or n_crash < 5 or n_crash > len(y) - 5:
        raise ValueError(f"too few rows or crashes to fit ({len(y)} rows, {n_crash} crashes)")
    means, scales = x.mean(), x.std(ddof=0)
    if not (scales > 0).all():
        raise ValueError(f"constant feature(s): {list(scales.index[~(scales > 0)])}")
    z = sm.add_constant((x - means) / scales, has_constant="add")
    try:
        res = sm.Logit(y.to_numpy(), z.to_numpy()).fit(disp=0, method="newton", maxiter=100)
    except (np.linalg.LinAlgError, ValueError) as err:  # statsmodels' separation errors are ValueErrors
        raise ValueError(f"logistic fit failed: {err}") from None
    if not res.mle_retvals.get("converged", False):
        raise ValueError("logistic fit did not converge")
    params, bse = np.asarray(res.params, dtype=float), np.asarray(res.bse, dtype=float)
    return CrashModel(
        features=tuple(spec.features),
        intercept=float(params[0]),
        coefficients=tuple(float(v) for v in params[1:]),
        means=tuple(float(v) for v in means),
        scales=tuple(float(v) for v in scales),
        horizon_hours=spec.horizon_hours,
        threshold=spec.threshold,
        train_start=x.index[0].isoformat(),
        train_end=x.index[-1].isoformat(),
        fitted_at=pd.Timestamp(fitted_at).isoformat(),
        n_obs=len(y),
        n_crashes=n_crash,
        std_errors=tuple(float(v) for v in bse),
    )


def fit_as_of(
    features: pd.DataFrame, labels: pd.Series, spec: CrashSpec, fit_date: pd.Timestamp
) -> CrashModel:
    """:func:`fit_crash_model` on exactly the rows whose label is known at ``fit_date``."""
    known = label_known_at(pd.DatetimeIndex(features.index), spec.horizon_hours) <= fit_date
    return fit_crash_model(features[known], labels[known], spec, fit_date)


def walk_forward_crash_prob(
    features: pd.DataFrame,
    labels: pd.Series,
    spec: CrashSpec,
    *,
    refit: str = "MS",
    min_train_hours: int = 24 * 365,
    min_train_crashes: int = 50,
) -> CrashWalkForward:
    """Expanding-window refits at every ``refit`` period start (pandas frequency: ``MS`` monthly,
    ``QS`` quarterly, ``YS`` yearly), each predicting the rows up to the next refit.

    A fit dated F sees only rows with T + (horizon + 1) h ≤ F (:func:`label_known_at`), needs at least
    ``min_train_hours`` such rows with all features present and ``min_train_crashes`` crashes among
    them; until a fit succeeds the probability is NaN (a fit that fails keeps the previous model).
    ``features`` and ``labels`` share one hourly index; ``prob`` is on that index.
    """
    index = pd.DatetimeIndex(features.index)
    prob = pd.Series(np.nan, index=index, name="crash_prob_oos")
    if not len(index):
        return CrashWalkForward(prob, (), ())
    dates = pd.date_range(index[0].ceil("D"), index[-1], freq=refit, tz=index.tz)
    known_at = label_known_at(index, spec.horizon_hours)
    usable = features.loc[:, list(spec.features)].notna().all(axis=1).to_numpy() & labels.notna().to_numpy()
    y = labels.fillna(0.0).to_numpy()
    models: list[CrashModel] = []
    fitted: list[pd.Timestamp] = []
    current: CrashModel | None = None
    for i, fit_date in enumerate(dates):
        known = (known_at <= fit_date) & usable
        if known.sum() >= min_train_hours and y[known].sum() >= min_train_crashes:
            try:
                current = fit_as_of(features, labels, spec, fit_date)
                models.append(current)
                fitted.append(fit_date)
            except ValueError:
                pass  # keep the previous model
        if current is None:
            continue
        stop = dates[i + 1] if i + 1 < len(dates) else index[-1] + HOUR
        rows = (index >= fit_date) & (index < stop)
        cols = {name: features[name].to_numpy()[rows] for name in spec.features}
        prob.iloc[np.flatnonzero(rows)] = predict(current, cols)
    return CrashWalkForward(prob, tuple(models), tuple(fitted))
