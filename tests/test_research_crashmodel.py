"""crash_prob_24h v2 on synthetic markets with a planted crash probability: recovered, calibrated, better
than a 24 h-volatility model where the planted state says it should be and not where it should not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from riskd.research.config import ValidationConfig, ValidationInputs
from riskd.research.crashmarket import crash_market
from riskd.research.evaluation import SignalEvaluation, Verdict, evaluate_signals
from riskd.research.labels import CrashDefinition, crash_labels
from riskd.research.logit import fit_logit
from riskd.research.modelstudy import ModelStudy, model_part
from riskd.research.resample import BlockResamples, percentile_ci
from riskd.research.scoring import AucParts, Interval, Resampling, auc

RV_MODEL = "btc_rv_24h_logit"


def _scored(driver: str, seed: int = 0) -> tuple[ModelStudy, SignalEvaluation, pd.Series]:
    """Six years of the market, the published model walk-forward (first year trains), and both it and
    the 24 h-volatility-only logistic scored out of sample against each other."""
    m = crash_market(driver=driver, seed=seed)
    closes = m.close.to_frame("BTC")
    first = closes.index[0] + pd.Timedelta(days=400)
    cfg = ValidationConfig(oos_start=f"{first:%Y-%m-%d}", bootstrap_reps=300)
    inputs = ValidationInputs(closes, pd.DataFrame(index=closes.index), {})
    study = model_part(inputs, cfg, contributions=False)
    scores = pd.DataFrame({"crash_prob_24h": study.prob, RV_MODEL: study.rv_only})
    y = crash_labels(m.close, CrashDefinition())
    ev = evaluate_signals(
        scores, y, first_test=first, probabilities=list(scores), reps=300, reference=RV_MODEL
    )
    true_24h = 1.0 - np.exp(np.log1p(-m.hazard).rolling(24).sum().shift(-24))
    return study, ev, true_24h


@pytest.fixture(scope="module")
def planted() -> tuple[ModelStudy, SignalEvaluation, pd.Series]:
    """The market whose crashes follow the 30-day volatility level and the 7-day drawdown."""
    return _scored("month_vol_drawdown")


def test_the_model_beats_a_24h_vol_model_with_a_paired_ci_above_zero(planted) -> None:
    """Verdict yes: ΔBSS over the 24 h-volatility logistic has its CI above zero at 7- and 30-day blocks."""
    _, ev, _ = planted
    assert ev.verdict.answer == "yes", ev.verdict.line()
    assert [b for b, _ in ev.verdict.paired] == [168, 720]
    assert all(iv.lo > 0 for _, iv in ev.verdict.paired)


def test_the_model_recovers_the_planted_state(planted) -> None:
    """The last fit loads on the 30-day volatility (up) and the drawdown (deeper: more crashes), each
    beyond 3 s.e., and the out-of-sample probability ranks hours like the planted 24 h probability."""
    study, ev, true_24h = planted
    m = study.last
    assert m is not None
    coef = dict(zip(m.features, zip(m.coefficients, m.std_errors[1:], strict=True), strict=True))
    assert coef["btc_rv_30d"][0] > 3 * coef["btc_rv_30d"][1]
    assert coef["btc_drawdown_7d"][0] < -3 * coef["btc_drawdown_7d"][1]
    p = ev.probabilities["crash_prob_24h"]
    assert p.corr(true_24h.reindex(p.index), method="spearman") > 0.6


def test_reliability_is_inside_every_bins_ci(planted) -> None:
    """Binned by decile of the out-of-sample probability, each bin's mean forecast lies inside the 99%
    block-bootstrap CI of its observed crash rate (neighbouring labels overlap: blocks of a week)."""
    _, ev, _ = planted
    p, y = ev.probabilities["crash_prob_24h"].to_numpy(), ev.probabilities["crash"].to_numpy()
    q = pd.qcut(pd.Series(p).rank(method="first"), 10, labels=False).to_numpy()
    x = np.column_stack([(q == k) * y for k in range(10)] + [(q == k) * 1.0 for k in range(10)])
    s = BlockResamples.draw(len(p), 168, 400, seed=1).sums(x)
    lo, hi = percentile_ci(s[:, :10] / s[:, 10:], 0.99)
    mean = np.array([p[q == k].mean() for k in range(10)])
    assert ((lo <= mean) & (mean <= hi)).all(), (mean, lo, hi)


def test_where_only_24h_vol_matters_the_verdict_is_not_distinguishable() -> None:
    """A market whose crash probability reads the last day's volatility alone: the published model and
    the 24 h-volatility model tie (the paired CI straddles zero)."""
    _, ev, _ = _scored("day_vol")
    assert ev.verdict.answer == "not distinguishable", ev.verdict.line()


@pytest.mark.parametrize(
    ("intervals", "answer"),
    [
        ([(0.02, 0.01, 0.03), (0.02, 0.001, 0.04)], "yes"),
        ([(0.02, 0.01, 0.03), (0.02, -0.001, 0.04)], "not distinguishable"),
        ([(-0.02, -0.03, -0.01), (-0.02, -0.04, -0.001)], "no"),
        ([(0.02, np.nan, np.nan)], "not run"),
    ],
)
def test_the_verdict_rule(intervals, answer) -> None:
    """yes: every block's CI above zero; no: every one below; else not distinguishable; no CI: not run."""
    paired = [(168 * (i + 1), Interval(*iv)) for i, iv in enumerate(intervals)]
    v = Verdict.decide("crash_prob_24h", "btc_rv_24h", paired)
    assert v.answer == answer
    assert f"**{answer}**" in v.line()


def test_auc_of_every_resample_equals_the_auc_of_its_hours() -> None:
    """The matrix form of the resampled AUC equals the AUC recomputed over each resample's hours, ties
    included (rounded forecasts), to 1e-12."""
    rng = np.random.default_rng(3)
    n = 24 * 200
    y = np.zeros(n)
    for s in rng.integers(0, n - 30, 25):
        y[s : s + 12] = 1.0
    p = np.round(rng.random(n) + 0.4 * y, 2)
    parts = AucParts.of(p, y)
    assert parts.point() == pytest.approx(auc(p, y), abs=1e-12)
    r = Resampling.draw(n, 168, 20, seed=5)
    assert r is not None
    draws = parts.draws(r.counts)
    for rep in range(20):
        idx = r.res.indices(rep)
        assert draws[rep] == pytest.approx(auc(p[idx], y[idx]), abs=1e-12)


def test_newton_logit_matches_statsmodels() -> None:
    """The numpy Newton fit gives statsmodels' Logit coefficients and standard errors to 1e-6, and a
    warm start lands on the same optimum."""
    rng = np.random.default_rng(0)
    x = np.column_stack([np.ones(20_000), rng.normal(size=(20_000, 3))])
    y = (rng.random(20_000) < 1 / (1 + np.exp(-(x @ [-2.5, 0.8, -0.4, 0.0])))).astype(float)
    ref = sm.Logit(y, x).fit(disp=0, method="newton")
    ours = fit_logit(x, y)
    np.testing.assert_allclose(ours.params, ref.params, atol=1e-6)
    np.testing.assert_allclose(ours.std_errors, ref.bse, rtol=1e-6)
    np.testing.assert_allclose(fit_logit(x, y, ours.params + 0.05).params, ref.params, atol=1e-6)
