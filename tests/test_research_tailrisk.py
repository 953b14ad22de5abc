"""CFI tail risk: crash definitions, past-only quintiles, and the Q5/Q1 ratio with its bootstrap CI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskd.research import tailrisk
from riskd.research.synthetic import ar1


def _series(values, start: str = "2021-01-01") -> pd.Series:
    idx = pd.date_range(start, periods=len(values), freq="h", tz="UTC", name="ts")
    return pd.Series(values, index=idx, dtype=float)


def test_expanding_quintiles_ignore_the_future():
    """Changing later scores never changes an earlier hour's out-of-sample quintile."""
    rng = np.random.default_rng(0)
    score = _series(rng.normal(size=2000))
    q = tailrisk.expanding_quintiles(score, min_history_h=100)
    altered = score.copy()
    altered.iloc[1500:] += 100.0
    q2 = tailrisk.expanding_quintiles(altered, min_history_h=100)
    pd.testing.assert_series_equal(q.iloc[:1500], q2.iloc[:1500])
    assert q.iloc[:100].isna().all()
    assert q.iloc[100:].between(1, 5).all()


def test_expanding_quintile_uses_strictly_earlier_cutoffs():
    """An hour above every earlier score is Q5 and below every earlier score is Q1."""
    score = _series([*range(200), 1000.0, -1000.0])
    q = tailrisk.expanding_quintiles(score, min_history_h=50)
    assert q.iloc[-2] == 5
    assert q.iloc[-1] == 1


def _planted(ratio: float, base: float = 0.02, years: float = 5, seed: int = 1):
    rng = np.random.default_rng(seed)
    n = int(years * 8766)
    score = _series(ar1(rng, n, 0.99))
    q = tailrisk.insample_quintiles(score)
    crash = pd.Series((rng.random(n) < np.where(q == 5, ratio * base, base)).astype(float), index=score.index)
    return score, crash


def test_planted_five_fold_crash_rate_is_recovered_with_a_ci_covering_five():
    """A CFI whose top quintile crashes 5x as often: ratio near 5, the 95% CI covers 5, in and out of sample."""
    score, crash = _planted(5.0)
    table = tailrisk.tail_risk(score, crash, reps=400, min_history_h=24 * 90).set_index(["sample", "bucket"])
    for sample in ("in_sample", "out_of_sample"):
        row = table.loc[(sample, "Q5/Q1")]
        assert row["value"] == pytest.approx(5.0, rel=0.2)
        assert row["ci_lo"] < 5.0 < row["ci_hi"]
        assert row["ci_lo"] > 2.0  # and it is clearly above no effect


def test_no_planted_effect_gives_a_ci_covering_one():
    """Crashes independent of the score: the ratio's CI covers 1."""
    score, crash = _planted(1.0, seed=2)
    row = tailrisk.crash_rate_table(tailrisk.insample_quintiles(score), crash, reps=400).loc["Q5/Q1"]
    assert row["ci_lo"] < 1.0 < row["ci_hi"]


def test_crash_rates_count_hours_and_crashes_per_quintile():
    """Rates are crashes over hours of each quintile; Q5/Q1's counts are the two quintiles together."""
    idx = pd.date_range("2021-01-01", periods=10, freq="h", tz="UTC")
    q = pd.Series([1, 1, 2, 3, 4, 5, 5, 5, 5, 1], index=idx, dtype=float)
    c = pd.Series([1, 0, 0, 0, 0, 1, 1, 0, 0, 0], index=idx, dtype=float)
    t = tailrisk.crash_rate_table(q, c, reps=0)
    assert t.loc["Q1", "value"] == pytest.approx(1 / 3)
    assert t.loc["Q5", "value"] == pytest.approx(0.5)
    assert t.loc["Q5/Q1", "value"] == pytest.approx(1.5)
    assert t.loc["Q5/Q1", "n"] == 7


def test_zero_crashes_in_q1_gives_an_infinite_ratio():
    """A top quintile with crashes over a bottom one without is an infinite ratio, not an error."""
    idx = pd.date_range("2021-01-01", periods=5, freq="h", tz="UTC")
    q = pd.Series([1, 2, 3, 4, 5], index=idx, dtype=float)
    c = pd.Series([0, 0, 0, 0, 1], index=idx, dtype=float)
    assert tailrisk.crash_rate_table(q, c, reps=0).loc["Q5/Q1", "value"] == np.inf
