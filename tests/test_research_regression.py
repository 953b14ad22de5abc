"""Beta decomposition on synthetic markets with planted beta and alpha."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from riskd.research import regression, strategies
from riskd.research.synthetic import synthetic_market


def _contagion(alt_alpha: float, seed: int) -> pd.DataFrame:
    m = synthetic_market(seed=seed, years=6, alt_alpha=alt_alpha)
    return strategies.alt_contagion(m.closes, m.events, cost_bps=0)


def test_planted_beta_116_without_alpha_is_recovered():
    """Alts planted at beta 1.16 to BTC and no alpha: beta within ±0.05, alpha not significant."""
    t = _contagion(0.0, seed=11)
    row = regression.beta_decomposition(t["net"], t["btc_ret"]).iloc[0]
    assert row["n"] > 100
    assert row["beta"] == pytest.approx(1.16, abs=0.05)
    assert row["alpha_p"] > 0.05
    assert row["alpha_p_hac"] > 0.05


def test_planted_alpha_of_one_percent_per_trade_is_significant():
    """A planted +1% per trade after each cascade: alpha ≈ 1% and significant, ordinary and HAC."""
    t = _contagion(0.01, seed=12)
    row = regression.beta_decomposition(t["net"], t["btc_ret"]).iloc[0]
    assert row["alpha"] == pytest.approx(0.01, abs=0.003)
    assert row["alpha_p"] < 0.001
    assert row["alpha_p_hac"] < 0.001
    assert row["beta"] == pytest.approx(1.16, abs=0.05)


def test_ols_matches_the_closed_form_and_hac_matches_statsmodels():
    """Beta is cov/var and alpha mean(y) - beta mean(x) to 1e-10; HAC p equals a direct statsmodels fit."""
    rng = np.random.default_rng(0)
    x = pd.Series(rng.normal(0, 0.05, 120))
    y = 0.002 + 1.3 * x + pd.Series(rng.normal(0, 0.02, 120))
    row = regression.beta_decomposition(y, x, hac_lags=3).iloc[0]
    beta = np.cov(x, y, ddof=1)[0, 1] / x.var(ddof=1)
    assert row["beta"] == pytest.approx(beta, abs=1e-10)
    assert row["alpha"] == pytest.approx(y.mean() - beta * x.mean(), abs=1e-10)
    ref = sm.OLS(y, sm.add_constant(x)).fit(cov_type="HAC", cov_kwds={"maxlags": 3})
    assert row["alpha_p_hac"] == pytest.approx(ref.pvalues.iloc[0], abs=1e-10)


def test_centred_control_keeps_alpha_at_the_typical_control_value():
    """With a centred control unrelated to y, the controlled alpha stays near the base alpha."""
    rng = np.random.default_rng(1)
    x = pd.Series(rng.normal(0, 0.05, 400))
    vol = pd.Series(rng.uniform(0.005, 0.02, 400))
    y = 0.01 + 1.16 * x + pd.Series(rng.normal(0, 0.02, 400))
    reg = regression.beta_decomposition(y, x, vol.to_frame("vol")).set_index("model")
    assert reg.loc["controlled", "alpha"] == pytest.approx(reg.loc["base", "alpha"], abs=0.002)
    raw = regression.beta_decomposition(y, x, vol.to_frame("vol"), center_controls=False).set_index("model")
    assert raw.loc["controlled", "vol"] == pytest.approx(reg.loc["controlled", "vol"], abs=1e-10)


def test_newey_west_lag_rule():
    """floor(4 (n/100)^(2/9)): 3 lags for 72 trades, 4 for 100."""
    assert regression.newey_west_lags(72) == 3
    assert regression.newey_west_lags(100) == 4


def test_conditional_split_partitions_the_trades():
    """BTC up vs not up: counts add up and each side's means are of its own trades."""
    btc = pd.Series([0.02, -0.01, 0.0, 0.05])
    alt = pd.Series([0.03, -0.02, -0.01, 0.06])
    split = regression.conditional_split(alt, btc).set_index("case")
    assert split.loc["btc_recovers", "n"] == 2
    assert split.loc["btc_keeps_falling", "n"] == 2
    assert split.loc["btc_recovers", "alt_mean"] == pytest.approx(0.045)
    assert split.loc["btc_keeps_falling", "alt_mean"] == pytest.approx(-0.015)


def test_pre_event_volatility_uses_hours_up_to_the_entry_close():
    """The control is the std of the last 24 hourly returns ending with the event hour."""
    m = synthetic_market(seed=2, years=0.2, n_alts=1)
    t = m.closes.index[100]
    vol = regression.pre_event_volatility(m.closes, pd.DatetimeIndex([t]))
    expected = m.closes["BTC"].pct_change().loc[:t].iloc[-24:].std()
    assert vol.iloc[0] == pytest.approx(expected, rel=1e-12)
