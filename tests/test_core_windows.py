"""Window arithmetic of the core: correct, and independent of how much history precedes a row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskd.core.windows import (
    expanding_rank_counts,
    lag,
    previous_mean,
    rolling_max,
    rolling_mean,
    rolling_sum_count,
    rolling_zscore,
    trailing_max,
    trailing_sum,
)

RNG = np.random.default_rng(3)
X = RNG.normal(size=(300, 3)) * 1e3


@pytest.mark.parametrize("w", [1, 2, 3, 7, 8, 24, 100, 168, 300])
def test_trailing_sum_matches_a_plain_sum(w: int) -> None:
    """Each output row is the sum of its w rows (to rounding)."""
    expected = np.array([X[i : i + w].sum(axis=0) for i in range(len(X) - w + 1)])
    np.testing.assert_allclose(trailing_sum(X, w), expected, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("w", [1, 5, 24, 37])
def test_trailing_max_matches_a_plain_max(w: int) -> None:
    """NaN-ignoring max over each window of w rows."""
    x = X.copy()
    x[::7, 0] = np.nan
    expected = np.array([np.fmax.reduce(x[i : i + w], axis=0) for i in range(len(x) - w + 1)])
    np.testing.assert_array_equal(trailing_max(x, w), expected)


@pytest.mark.parametrize("w", [3, 24, 168])
def test_window_results_do_not_depend_on_earlier_history(w: int) -> None:
    """The value at a row is bit-identical whether computed from the whole array or its last w rows."""
    full = rolling_zscore(X[:, 0], w, 2, 0.0)
    for end in (w, w + 1, 250, 299):
        tail = X[end - w : end, 0]
        assert rolling_zscore(tail, w, 2, 0.0)[-1] == full[end - 1]
        assert trailing_sum(X[end - w : end], w)[-1].tolist() == trailing_sum(X[:end], w)[-1].tolist()


def test_rolling_stats_match_pandas() -> None:
    """Trailing mean, previous mean, max and z-score agree with pandas' rolling versions."""
    s = pd.Series(RNG.normal(size=500))
    s[[10, 11, 50]] = np.nan
    roll = s.rolling(24, min_periods=12)
    np.testing.assert_allclose(rolling_mean(s.to_numpy(), 24, 12), roll.mean(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        previous_mean(s.to_numpy(), 24, 12), roll.mean().shift(1), rtol=1e-12, atol=1e-15
    )
    np.testing.assert_array_equal(rolling_max(s.to_numpy(), 24), s.rolling(24, min_periods=1).max())
    z = (s - roll.mean()) / roll.std()
    np.testing.assert_allclose(rolling_zscore(s.to_numpy(), 24, 12, 0.0), z.where(s.notna()), rtol=1e-9)


def test_zscore_floor_keeps_a_pinned_series_quiet() -> None:
    """A series stuck at one value (plus rounding noise) gives z ≈ 0, not noise / noise."""
    x = np.full(200, 1.25e-5) + RNG.normal(scale=1e-21, size=200)
    z = rolling_zscore(x, 168, 72, 5e-7)
    assert np.nanmax(np.abs(z)) < 1e-12


def test_sum_count_counts_only_valid_rows() -> None:
    """NaNs add nothing to the sum and are not counted; the front counts as missing."""
    s, n = rolling_sum_count(np.array([1.0, np.nan, 2.0, 4.0]), 2)
    np.testing.assert_array_equal(s, [1.0, 1.0, 2.0, 6.0])
    np.testing.assert_array_equal(n, [1.0, 1.0, 1.0, 2.0])


def test_lag_shifts_down_with_nan_in_front() -> None:
    """lag(x, k)[t] is x[t-k]."""
    np.testing.assert_array_equal(lag(np.arange(4.0), 2), [np.nan, np.nan, 0.0, 1.0])
    np.testing.assert_array_equal(lag(np.arange(2.0), 5), [np.nan, np.nan])


@pytest.mark.parametrize(("n", "ties"), [(0, True), (1, False), (2, True), (400, True), (777, False)])
def test_expanding_rank_counts_match_brute_force(n: int, ties: bool) -> None:
    """Below / equal / past counts of each value among the valid values before it (ties and holes too)."""
    x = RNG.integers(0, 20, n).astype(float) if ties else RNG.normal(size=n)
    x[RNG.random(n) < 0.05] = np.nan
    less, equal, past = expanding_rank_counts(x)
    for t in range(len(x)):
        prev = x[:t][~np.isnan(x[:t])]
        assert past[t] == len(prev)
        if np.isnan(x[t]):
            assert np.isnan(less[t])
            assert np.isnan(equal[t])
        else:
            assert less[t] == (prev < x[t]).sum()
            assert equal[t] == (prev == x[t]).sum()
