"""Trade engine and trade statistics: non-overlap, costs, t/Sharpe against scipy, equity and drawdown."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from riskd.research import backtest, strategies

T0 = pd.Timestamp("2022-01-01", tz="UTC")


def _hours(*offsets: int) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([T0 + pd.Timedelta(hours=h) for h in offsets])


def _trades(returns, hold_h: int = 1, start: str = "2022-01-01") -> pd.DataFrame:
    idx = pd.date_range(start, periods=len(returns), freq="3D", tz="UTC")
    return backtest.make_trades(pd.Series(returns, index=idx, dtype=float), hold_h=hold_h, cost_bps=0.0)


def test_non_overlapping_waits_for_the_previous_exit():
    """With a 4 h hold, signals at +1/+3 h are skipped and one exactly at the exit hour is taken."""
    taken = backtest.non_overlapping(_hours(0, 1, 3, 4, 5, 9), 4)
    assert list(taken) == list(_hours(0, 4, 9))


@pytest.mark.parametrize(("legs", "net"), [(1, 0.007), (2, 0.004)])
def test_costs_are_round_trip_bps_per_leg(legs, net):
    """30 bps per round trip and leg: a 1% gross trade nets 0.7% long-only, 0.4% long/short."""
    t = backtest.make_trades(pd.Series([0.01], index=_hours(0)), hold_h=48, cost_bps=30, legs=legs)
    assert t["net"].iloc[0] == pytest.approx(net)
    assert t["exit_ts"].iloc[0] == T0 + pd.Timedelta(hours=48)


def test_trade_stats_t_and_p_equal_scipy_and_t_is_sharpe_times_root_n():
    """t and p are scipy's one-sample t-test; sharpe_trade x sqrt(n) equals that t to 1e-10."""
    r = pd.Series(np.random.default_rng(0).normal(0.004, 0.02, 57))
    s = backtest.trade_stats(r, years=2.0)
    ref = stats.ttest_1samp(r, 0.0)
    assert s["t"] == pytest.approx(ref.statistic, abs=1e-10)
    assert s["p"] == pytest.approx(ref.pvalue, abs=1e-10)
    assert s["sharpe_trade"] * np.sqrt(57) == pytest.approx(ref.statistic, abs=1e-10)
    assert s["sharpe_ann"] == pytest.approx(s["sharpe_trade"] * np.sqrt(57 / 2.0), abs=1e-12)


def test_grouped_sharpe_matches_scipy_per_group():
    """The vectorised per-group t-statistic equals scipy's ttest_1samp for every group, to 1e-10."""
    rng = np.random.default_rng(1)
    r = pd.Series(rng.normal(0.001, 0.02, 300))
    g = rng.integers(0, 7, 300)
    out = backtest.grouped_sharpe(r, g)
    for k, part in r.groupby(g):
        assert out.loc[k, "t"] == pytest.approx(stats.ttest_1samp(part, 0.0).statistic, abs=1e-10)
        assert out.loc[k, "n"] == len(part)


def test_compounded_equity_total_return_and_drawdown():
    """+10%, -50%, +20%: equity 1.1, 0.55, 0.66; total -34%; max drawdown -50% from the 1.1 peak."""
    t = _trades([0.10, -0.50, 0.20])
    eq = backtest.equity_curve(t)
    np.testing.assert_allclose(eq.to_numpy(), [1.0, 1.1, 0.55, 0.66])
    s = backtest.trade_stats(t["net"], years=1.0)
    assert s["total_return"] == pytest.approx(-0.34)
    assert s["max_drawdown"] == pytest.approx(-0.5)
    assert s["win_rate"] == pytest.approx(2 / 3)


def test_drawdown_counts_a_first_loss_from_the_starting_capital():
    """A first trade losing 20% is a 20% drawdown even though equity never rose."""
    assert backtest.drawdown(pd.Series([0.8, 0.9])).min() == pytest.approx(-0.2)


def test_per_year_splits_by_entry_year_and_annualises_partial_years():
    """Two years of trades give two rows; a half-covered year annualises over half a year."""
    t = _trades([0.01, -0.005, 0.02, 0.01], start="2022-12-25")
    py = backtest.per_year(t, start="2022-07-02", end="2024-01-01")
    assert py["year"].tolist() == [2022, 2023]
    assert py.loc[0, "years"] == pytest.approx(0.5, abs=0.01)
    assert py["n"].sum() == 4


def test_sharpe_ci_covers_the_estimate():
    """The bootstrap CI of the annualised Sharpe brackets the point estimate."""
    r = pd.Series(np.random.default_rng(2).normal(0.01, 0.03, 80))
    lo, hi = backtest.sharpe_ci(r, years=4.0, reps=300)
    est = backtest.trade_stats(r, years=4.0)["sharpe_ann"]
    assert lo < est < hi


def _market(n: int = 200) -> pd.DataFrame:
    idx = pd.date_range("2022-01-01", periods=n, freq="h", tz="UTC", name="ts")
    rng = np.random.default_rng(3)
    cols = {s: 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))) for s in ["BTC", "A", "B", "C", "D", "E"]}
    return pd.DataFrame(cols, index=idx)


def test_alt_basket_is_equal_weight_of_listed_alts_and_reports_btc():
    """The contagion basket averages the alts' returns over the hold; a missing alt is left out."""
    closes = _market()
    closes.loc[:, "E"] = np.nan
    entry = closes.index[[10]]
    t = strategies.alt_contagion(closes, entry, hold_h=48, cost_bps=0)
    fwd = closes.iloc[58] / closes.iloc[10] - 1
    assert t["gross"].iloc[0] == pytest.approx(fwd[["A", "B", "C", "D"]].mean())
    assert t["btc_ret"].iloc[0] == pytest.approx(fwd["BTC"])
    assert t["n_long"].iloc[0] == 4


def test_cross_sectional_longs_the_hardest_hit_and_shorts_the_least_hit():
    """With 5 alts and a quintile per side, long the alt that fell most in the event hour, short the least."""
    closes = _market()
    t0 = closes.index[20]
    closes.loc[t0:, "C"] *= 0.9  # C falls 10% in the event hour
    closes.loc[t0:, "A"] *= 1.05  # A rises
    t = strategies.cross_sectional(closes, pd.DatetimeIndex([t0]), hold_h=4, cost_bps=0)
    fwd = closes.iloc[24] / closes.iloc[20] - 1
    assert t["long_ret"].iloc[0] == pytest.approx(fwd["C"])
    assert t["short_ret"].iloc[0] == pytest.approx(fwd["A"])
    assert t["cost"].iloc[0] == 0


def test_multi_asset_hold_buys_only_the_flagged_assets():
    """The seed strategy's basket is the assets flagged in the crash hour, held 1 h."""
    closes = _market()
    flags = pd.DataFrame(False, index=closes.index, columns=closes.columns)
    flags.loc[closes.index[30], ["A", "B", "C"]] = True
    t = strategies.multi_asset_hold(closes, flags, hold_h=1, cost_bps=0)
    fwd = closes.iloc[31] / closes.iloc[30] - 1
    assert len(t) == 1
    assert t["gross"].iloc[0] == pytest.approx(fwd[["A", "B", "C"]].mean())


def test_fade_grid_has_72_combinations():
    """4 return x 3 volume x 3 hold x 2 CFI-filter settings."""
    grid = strategies.fade_grid()
    assert len(grid) == 72
    assert len(set(grid)) == 72


def test_multi_asset_hold_with_only_the_hour_flag_buys_every_listed_asset():
    """Given the detector's hour flag alone, the seed strategy buys all assets with prices."""
    closes = _market()
    fired = pd.Series(False, index=closes.index)
    fired.iloc[30] = True
    t = strategies.multi_asset_hold(closes, fired, hold_h=2, cost_bps=0)
    fwd = closes.iloc[32] / closes.iloc[30] - 1
    assert t["gross"].iloc[0] == pytest.approx(fwd.mean())
    assert t["n_long"].iloc[0] == closes.shape[1]
