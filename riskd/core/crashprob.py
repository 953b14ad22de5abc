"""A calibrated crash probability: a small logistic model over a handful of the core's columns.

``crash_prob_24h`` = P(a crash in the next ``horizon_hours``), the crash being riskd's one definition
(:mod:`riskd.research.labels`; by default BTC's lowest hourly close over the next 24 h at or below −5 %
of this hour's close), by a logistic regression fitted offline (:mod:`riskd.research.calibrate`,
``riskd calibrate``) on past-only inputs. Version 2 (the default model) reads BTC's realised volatility
over a day, a week and 30 days (HAR-style, in logs), the drawdown from the 7-day high, the 24 h return
and the 24 h downside volatility (docs/features.md says why each). The model is plain data (a frozen
dataclass, JSON in a versioned file), and :func:`predict` is elementwise arithmetic over its columns, so
the batch path and the live step give the same number for the same hour, bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

MODEL_SCHEMA_VERSION = 2
"""2: per-feature transforms and the crash kind (a schema-1 file reads as identity transforms and the
drawdown crash it was fitted on)."""
MODEL_KIND = "riskd.crash_prob.logit"
LOG_FLOOR = 1e-8
"""A log-transformed input below this (a flat market's zero volatility) is taken as this."""

Transform = Literal["identity", "log"]


@dataclass(frozen=True)
class CrashModel:
    """A fitted logistic crash model: ``p = 1 / (1 + exp(-(b0 + Σ b_i (f_i(x_i) - mean_i) / scale_i)))``.

    ``features`` name columns of the core's output (e.g. ``btc_rv_30d``); ``transforms`` say what
    ``f_i`` is (``log``: natural log, floored at :data:`LOG_FLOOR`; ``identity``); ``means``/``scales``
    standardise the transformed inputs as in the fit (so coefficients compare across features);
    ``std_errors`` are the fit's, intercept first. ``crash_kind``/``horizon_hours``/``threshold`` say
    what is predicted. ``train_start``/``train_end`` are the first and last hour (open time, UTC ISO)
    whose label was used; ``n_obs``/``n_crashes`` the in-sample counts.
    """

    features: tuple[str, ...]
    intercept: float
    coefficients: tuple[float, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    horizon_hours: int
    threshold: float
    train_start: str
    train_end: str
    fitted_at: str
    n_obs: int
    n_crashes: int
    std_errors: tuple[float, ...] = ()
    transforms: tuple[Transform, ...] = ()
    crash_kind: str = "drawdown"
    schema_version: int = MODEL_SCHEMA_VERSION

    def __post_init__(self) -> None:
        n = len(self.features)
        if not n or len(self.coefficients) != n or len(self.means) != n or len(self.scales) != n:
            raise ValueError("a crash model needs one coefficient, mean and scale per feature")
        if any(not s > 0 for s in self.scales):
            raise ValueError("crash model scales must be positive")
        if not self.transforms:
            object.__setattr__(self, "transforms", ("identity",) * n)
        if len(self.transforms) != n or any(t not in ("identity", "log") for t in self.transforms):
            raise ValueError("a crash model needs one transform (identity or log) per feature")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe data (the model file's content)."""
        return {"kind": MODEL_KIND, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CrashModel:
        """The model of :meth:`to_dict`'s output (schema 1 or 2); ValueError naming what is wrong otherwise."""
        if data.get("kind") != MODEL_KIND:
            raise ValueError(f"kind is {data.get('kind')!r}, expected {MODEL_KIND!r}")
        if data.get("schema_version") not in (1, MODEL_SCHEMA_VERSION):
            raise ValueError(
                f"schema_version {data.get('schema_version')!r}, expected 1 or {MODEL_SCHEMA_VERSION}"
            )
        fields = {k: v for k, v in data.items() if k != "kind"}
        fields["schema_version"] = MODEL_SCHEMA_VERSION  # a schema-1 file is a schema-2 model now
        for name in ("features", "coefficients", "means", "scales", "std_errors", "transforms"):
            if name in fields:
                fields[name] = tuple(fields[name])
        try:
            return cls(**fields)
        except TypeError as err:
            raise ValueError(str(err)) from None


def transformed(values: np.ndarray, transform: str) -> np.ndarray:
    """``values`` as the model reads them (float64; ``log``: natural log floored at :data:`LOG_FLOOR`)."""
    x = np.asarray(values, dtype=np.float64)
    if transform == "log":
        return np.log(np.maximum(x, LOG_FLOOR))  # np.maximum keeps NaN (no input: no probability)
    return x


def predict(model: CrashModel, features: Mapping[str, np.ndarray]) -> np.ndarray:
    """The model's probability for each row of ``features`` (column name → array); NaN where any input is.

    Terms are added in the model's feature order, one elementwise operation at a time, so one row and
    many rows give identical bits.
    """
    z: np.ndarray | None = None
    for name, coef, mean, scale, how in zip(
        model.features, model.coefficients, model.means, model.scales, model.transforms, strict=True
    ):
        term = coef * ((transformed(features[name], how) - mean) / scale)
        z = term if z is None else z + term
    assert z is not None  # __post_init__ requires at least one feature
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-(model.intercept + z)))
