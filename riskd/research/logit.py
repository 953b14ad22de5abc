"""The logistic regression of the crash model: maximum likelihood by Newton–Raphson, in numpy.

Why not ``statsmodels.Logit`` (which it matches to 1e-8, tests/test_crash_inputs.py): the walk-forward
refits every month, for the published model and for each input left out in turn to measure its
contribution, about 400 fits per report; statsmodels' per-fit overhead makes one fit over 50,000 hours
cost ~0.25 s on the shared machine against ~0.03 s here, and a warm start from last month's
coefficients halves that again. The arithmetic is the textbook one: gradient ``Xᵀ(y − p)``, Hessian
``Xᵀ W X`` with ``W = p(1 − p)``, standard errors from the inverse Hessian at the optimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LogitFit:
    """Coefficients (intercept first when ``x`` carries a constant column), their standard errors, and
    how the optimiser ended."""

    params: np.ndarray
    cov: np.ndarray
    iterations: int

    @property
    def std_errors(self) -> np.ndarray:
        """Square roots of the covariance's diagonal."""
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))


def _loglik(x: np.ndarray, y: np.ndarray, b: np.ndarray, w: np.ndarray | None) -> float:
    eta = x @ b
    terms = y * eta - np.logaddexp(0.0, eta)
    return float(np.sum(terms if w is None else w * terms))


def fit_logit(
    x: np.ndarray,
    y: np.ndarray,
    start: np.ndarray | None = None,
    *,
    weights: np.ndarray | None = None,
    max_iter: int = 50,
    tol: float = 1e-7,
) -> LogitFit:
    """Maximum-likelihood logistic coefficients of ``y`` (0/1, or a share of ``weights`` trials: the
    binomial GLM of grouped data) on the columns of ``x``.

    Newton steps until the largest coefficient change is below ``tol``; a long step (any coefficient
    moving by more than 0.5, far from the optimum) is halved while it lowers the likelihood. ValueError
    when the Hessian is singular, the fit does not converge in ``max_iter`` steps, or the coefficients
    run off (perfect separation: the likelihood has no maximum).
    """
    b = np.zeros(x.shape[1]) if start is None else np.asarray(start, dtype=float).copy()
    for i in range(1, max_iter + 1):
        p = 1.0 / (1.0 + np.exp(-(x @ b)))
        var, resid = (
            (p * (1.0 - p), y - p) if weights is None else (weights * p * (1.0 - p), weights * (y - p))
        )
        hess = (x.T * var) @ x
        try:
            step = np.linalg.solve(hess, x.T @ resid)
        except np.linalg.LinAlgError as err:
            raise ValueError(f"logistic fit failed: {err}") from None
        if np.max(np.abs(step)) > 0.5:
            ll = _loglik(x, y, b, weights)
            for _ in range(30):
                if _loglik(x, y, b + step, weights) >= ll - 1e-12 * abs(ll):
                    break
                step = step / 2.0
        b = b + step
        if np.max(np.abs(b)) > 50.0:
            raise ValueError("logistic fit failed: coefficients diverge (perfect separation)")
        if np.max(np.abs(step)) < tol:
            return LogitFit(b, np.linalg.inv(hess), i)  # the Hessian of the last point: its step was < tol
    raise ValueError("logistic fit did not converge")
