"""Fitting the crash probability: one logistic fit, and the walk-forward refits.

Pure: frames in, :class:`~riskd.core.crashprob.CrashModel` and series out (``riskd calibrate`` reads
the store and writes the file). The label is riskd's one crash definition (:mod:`riskd.research.labels`);
the label of hour T is known at T + (horizon + 1) h, so a fit dated F uses only rows with
T + (horizon + 1) h ≤ F. The walk-forward refits on an expanding window at each period start and
predicts the period after it with the model fitted before it: that series is the out-of-sample
``crash_prob_24h``, what the daemon would have published had it been recalibrated every month.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from riskd.core.crashprob import CrashModel, Transform, predict, transformed
from riskd.research.labels import HOUR, CrashDefinition, label_known_at
from riskd.research.logit import fit_logit

V2_FEATURES: tuple[str, ...] = (
    "btc_rv_24h",
    "btc_rv_7d",
    "btc_rv_30d",
    "btc_drawdown_7d",
    "btc_ret_24h",
    "btc_downside_rv_24h",
)
"""The published model's inputs (crash_prob_24h v2): HAR-style realised volatility over a day, a week
and 30 days, the drawdown from the 7-day high, the 24 h return and the 24 h downside volatility."""
LOG_INPUTS: frozenset[str] = frozenset(
    {
        "btc_rv_24h",
        "btc_rv_7d",
        "btc_rv_30d",
        "btc_downside_rv_24h",
        "btc_rv5m_24h",
        "xs_ret_std_24h",
        "liq_notional_usd",
    }
)
"""Inputs the model reads in logs: volatilities and notionals, whose effect is multiplicative (a crash
is as much likelier from 1 % to 2 % volatility as from 2 % to 4 %). The rest enter as they are."""


def transform_of(name: str) -> Transform:
    """How the model reads a column: ``log`` for :data:`LOG_INPUTS`, else ``identity``."""
    return "log" if name in LOG_INPUTS else "identity"


@dataclass(frozen=True)
class CrashSpec:
    """What is predicted and from what: the feature columns and the crash definition."""

    features: tuple[str, ...] = V2_FEATURES
    definition: CrashDefinition = field(default_factory=CrashDefinition)

    @property
    def transforms(self) -> tuple[Transform, ...]:
        """One transform per feature (:func:`transform_of`)."""
        return tuple(transform_of(f) for f in self.features)

    @property
    def horizon_hours(self) -> int:
        """The crash definition's horizon."""
        return self.definition.horizon_h


@dataclass(frozen=True)
class CrashWalkForward:
    """The out-of-sample probability (NaN before the first fit) and the models, one per fit date."""

    prob: pd.Series
    models: tuple[CrashModel, ...]
    fit_dates: tuple[pd.Timestamp, ...]


def design(features: pd.DataFrame, spec: CrashSpec) -> np.ndarray:
    """The model's inputs as it reads them (transformed), hours × features, float64."""
    cols = [
        transformed(features[f].to_numpy(), t) for f, t in zip(spec.features, spec.transforms, strict=True)
    ]
    return np.column_stack(cols) if cols else np.zeros((len(features), 0))


def fit_crash_model(
    features: pd.DataFrame, labels: pd.Series, spec: CrashSpec, fitted_at: pd.Timestamp
) -> CrashModel:
    """A logistic regression of ``labels`` on the standardised, transformed ``spec.features`` (rows with
    any NaN dropped). ValueError when the rows are too few, a feature is constant, or the fit does not
    converge (e.g. perfect separation)."""
    rows = Rows.of(features, labels, spec)
    return rows.fit(len(rows.y), spec, fitted_at, None)[0]


class Rows:
    """The usable rows (every input and the label present), with running sums of the inputs and their
    squares, so a fit on the first ``k`` rows (an expanding window) standardises without a pass over them.

    The fits run in one *working* standardisation, set by the first fit (its own rows' means and sds:
    past data for every later fit), so the rows are scaled once and each fit starts from the last one's
    coefficients in the same coordinates; the model is then re-expressed in its own window's
    standardisation (a linear change of variables: the same maximum likelihood).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, index: pd.DatetimeIndex) -> None:
        self.x, self.y, self.index = x, y, index
        zero = np.zeros((1, x.shape[1]))
        self.sums = np.concatenate([zero, np.cumsum(x, axis=0)])
        self.squares = np.concatenate([zero, np.cumsum(x * x, axis=0)])
        self.work: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (means, sds, scaled rows)

    @classmethod
    def of(cls, features: pd.DataFrame, labels: pd.Series, spec: CrashSpec) -> Rows:
        """The usable rows of ``features``/``labels``, in order."""
        x_all = design(features, spec)
        ok = np.isfinite(x_all).all(axis=1) & labels.notna().to_numpy()
        return cls(x_all[ok], labels.to_numpy(dtype=float)[ok], pd.DatetimeIndex(features.index[ok]))

    def moments(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Means and (population) sds of the inputs over the first ``k`` rows."""
        means = self.sums[k] / k
        return means, np.sqrt(np.maximum(self.squares[k] / k - means * means, 0.0))

    def fit(
        self, k: int, spec: CrashSpec, fitted_at: pd.Timestamp, start: np.ndarray | None
    ) -> tuple[CrashModel, np.ndarray]:
        """The model on the first ``k`` usable rows, and its coefficients in the working
        standardisation (the next fit's start)."""
        y = self.y[:k]
        n_crash = int(y.sum())
        if k < 10 * (len(spec.features) + 1) or n_crash < 5 or n_crash > k - 5:
            raise ValueError(f"too few rows or crashes to fit ({k} rows, {n_crash} crashes)")
        means, scales = self.moments(k)
        flat = ~(scales > 1e-9 * np.maximum(np.abs(means), 1.0))
        if flat.any():
            raise ValueError(
                f"constant feature(s): {[f for f, c in zip(spec.features, flat, strict=True) if c]}"
            )
        if self.work is None:
            self.work = (means, scales, np.column_stack([np.ones(len(self.y)), (self.x - means) / scales]))
        m0, s0, xw = self.work
        fit = fit_logit(xw[:k], y, start)
        # θ = A β: the intercept at this window's means, the slopes per this window's sd
        a = np.eye(len(fit.params))
        a[0, 1:] = (means - m0) / s0
        a[1:, 1:] = np.diag(scales / s0)
        theta, cov = a @ fit.params, a @ fit.cov @ a.T
        return self._model(spec, k, fitted_at, means, scales, theta, cov), fit.params

    def _model(
        self,
        spec: CrashSpec,
        k: int,
        fitted_at: pd.Timestamp,
        means: np.ndarray,
        scales: np.ndarray,
        theta: np.ndarray,
        cov: np.ndarray,
    ) -> CrashModel:
        d = spec.definition
        return CrashModel(
            features=tuple(spec.features),
            intercept=float(theta[0]),
            coefficients=tuple(float(v) for v in theta[1:]),
            means=tuple(float(v) for v in means),
            scales=tuple(float(v) for v in scales),
            horizon_hours=d.horizon_h,
            threshold=d.threshold,
            train_start=self.index[0].isoformat(),
            train_end=self.index[k - 1].isoformat(),
            fitted_at=pd.Timestamp(fitted_at).isoformat(),
            n_obs=k,
            n_crashes=int(self.y[:k].sum()),
            std_errors=tuple(float(v) for v in np.sqrt(np.clip(np.diag(cov), 0.0, None))),
            transforms=spec.transforms,
            crash_kind=d.kind,
        )


def fit_as_of(
    features: pd.DataFrame, labels: pd.Series, spec: CrashSpec, fit_date: pd.Timestamp
) -> CrashModel:
    """:func:`fit_crash_model` on exactly the rows whose label is known at ``fit_date``."""
    known = np.asarray(label_known_at(pd.DatetimeIndex(features.index), spec.horizon_hours) <= fit_date)
    return fit_crash_model(features[known], labels[known], spec, fit_date)


def refit_dates(index: pd.DatetimeIndex, refit: str) -> pd.DatetimeIndex:
    """The walk-forward's fit dates: every ``refit`` period start (``MS``/``QS``/``YS``) in the span."""
    if not len(index):
        return pd.DatetimeIndex([], tz=index.tz)
    return pd.date_range(index[0].ceil("D"), index[-1], freq=refit, tz=index.tz)


def walk_forward_crash_prob(
    features: pd.DataFrame,
    labels: pd.Series,
    spec: CrashSpec,
    *,
    refit: str = "MS",
    min_train_hours: int = 24 * 365,
    min_train_crashes: int = 50,
    first_fit: pd.Timestamp | None = None,
) -> CrashWalkForward:
    """Expanding-window refits at every ``refit`` period start (pandas frequency: ``MS`` monthly,
    ``QS`` quarterly, ``YS`` yearly), each predicting the rows up to the next refit; none before
    ``first_fit`` (the rows before it are only training: their probability is NaN).

    A fit dated F sees only rows with T + (horizon + 1) h ≤ F (:func:`label_known_at`), needs at least
    ``min_train_hours`` such rows with all features present and ``min_train_crashes`` crashes among
    them; until a fit succeeds the probability is NaN (a fit that fails keeps the previous model).
    ``features`` and ``labels`` share one hourly index; ``prob`` is on that index.
    """
    index = pd.DatetimeIndex(features.index)
    prob = pd.Series(np.nan, index=index, name="crash_prob_oos")
    dates = refit_dates(index, refit)
    if first_fit is not None:
        dates = dates[dates >= first_fit]
    rows = Rows.of(features, labels, spec)
    known_at = label_known_at(rows.index, spec.horizon_hours)
    crashes = np.r_[0.0, np.cumsum(rows.y)]
    models: list[CrashModel] = []
    fitted: list[pd.Timestamp] = []
    current: CrashModel | None = None
    raw: np.ndarray | None = None
    for i, fit_date in enumerate(dates):
        k = int(np.searchsorted(known_at, fit_date, side="right"))
        if k >= min_train_hours and crashes[k] >= min_train_crashes:
            try:
                current, raw = rows.fit(k, spec, fit_date, raw)
                models.append(current)
                fitted.append(fit_date)
            except ValueError:
                pass  # keep the previous model
        if current is None:
            continue
        stop = dates[i + 1] if i + 1 < len(dates) else index[-1] + HOUR
        part = np.flatnonzero((index >= fit_date) & (index < stop))
        cols = {name: features[name].to_numpy()[part] for name in spec.features}
        prob.iloc[part] = predict(current, cols)
    return CrashWalkForward(prob, tuple(models), tuple(fitted))
