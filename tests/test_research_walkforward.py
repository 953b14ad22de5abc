"""Walk-forward: windows, no look-ahead in the choice, and the grid's train/OOS gap vs a fixed rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskd.research import backtest, strategies, walkforward
from riskd.research.synthetic import synthetic_market


def test_rolling_windows_are_back_to_back_and_trained_just_before():
    """3-month test windows follow each other; each trains on the 3 months before it; the last is cut."""
    w = walkforward.rolling_windows("2021-01-15", "2022-02-10")
    assert w["test_start"].iloc[0] == pd.Timestamp("2021-04-01", tz="UTC")
    assert (w["train_end"] == w["test_start"]).all()
    assert (w["test_start"].iloc[1:].to_numpy() == w["test_end"].iloc[:-1].to_numpy()).all()
    assert w["test_end"].iloc[-1] == pd.Timestamp("2022-02-10", tz="UTC")


def test_annual_windows_train_on_everything_before_the_year():
    """Each calendar year is tested after training from the data start to its 1 January."""
    w = walkforward.annual_windows([2021, 2022], train_start="2020-01-01")
    assert w["train_end"].tolist() == w["test_start"].tolist()
    assert (w["train_start"] == pd.Timestamp("2020-01-01", tz="UTC")).all()


def _trades(entries: list[str], nets: list[float], hold_h: int = 24) -> pd.DataFrame:
    idx = pd.DatetimeIndex([pd.Timestamp(e, tz="UTC") for e in entries])
    return backtest.make_trades(pd.Series(nets, index=idx), hold_h=hold_h, cost_bps=0.0)


def test_choice_never_uses_a_trade_that_exits_after_the_train_window():
    """A train trade still open at the window's end is invisible to the choice, however good it is."""
    windows = walkforward.annual_windows([2022], train_start="2021-01-01")
    late = _trades(["2021-03-01", "2021-06-01", "2021-12-31 12:00"], [0.05, 0.051, 0.052])
    steady = _trades(["2021-03-02", "2021-06-02", "2021-09-02", "2022-03-01"], [0.02, 0.021, 0.022, -0.1])
    wf = walkforward.walk_forward({"late": late, "steady": steady}, windows, min_train_trades=3)
    # counting its open trade, "late" would have 3 trades and the best Sharpe; without it, too few
    assert wf.windows.loc[0, "chosen"] == "steady"
    assert wf.windows.loc[0, "train_n"] == 3
    assert wf.oos["net"].tolist() == [-0.1]


def test_fixed_rule_trades_every_window_even_without_a_train_record():
    """A single candidate is a fixed rule: it trades each window, even the first with no history."""
    windows = walkforward.annual_windows([2021, 2022], train_start="2021-01-01")
    t = _trades(["2021-02-01", "2022-02-01"], [0.01, -0.02])
    wf = walkforward.walk_forward({"rule": t}, windows)
    assert wf.oos["net"].tolist() == [0.01, -0.02]
    assert wf.windows["test_n"].tolist() == [1, 1]


def test_overlapping_oos_trades_across_windows_are_dropped():
    """When the chosen set changes, a new trade that would overlap the open one is skipped."""
    windows = walkforward.annual_windows([2021, 2022], train_start="2021-01-01")
    a = _trades(["2021-12-31 20:00"], [0.01], hold_h=24)
    wf = walkforward.walk_forward({"a": pd.concat([a, _trades(["2022-01-01 02:00"], [0.02])])}, windows)
    assert len(wf.oos) == 1


def _gaps(seed: int) -> tuple[float, float]:
    m = synthetic_market(seed=seed, years=4)
    cands = strategies.btc_fade_candidates(m.closes, m.features, cost_bps=0)
    w = walkforward.rolling_windows(m.closes.index[0], m.closes.index[-1])
    fixed = strategies.FadeParams(-0.03, 2.0, 24, False)
    grid = walkforward.walk_forward(cands, w).summary()["gap"]
    rule = walkforward.walk_forward({fixed: cands[fixed]}, w).summary()["gap"]
    return grid, rule


def test_grid_search_shows_a_train_oos_gap_a_fixed_rule_does_not():
    """No edge is planted: choosing among 72 sets on 3 months inflates the train Sharpe (gap > 1.5 on
    average), while the zero-parameter rule's train and OOS Sharpe agree (|gap| < 0.75)."""
    grid, rule = zip(*(_gaps(s) for s in range(5)), strict=True)
    assert np.mean(grid) > 1.5
    assert abs(np.mean(rule)) < 0.75
    assert np.mean(grid) - abs(np.mean(rule)) > 1.0


def test_summary_annualises_over_the_test_time():
    """The OOS Sharpe is per-trade Sharpe x sqrt(trades / years of test windows)."""
    windows = walkforward.annual_windows([2021, 2022], train_start="2021-01-01")
    t = _trades(["2021-02-01", "2021-05-01", "2022-02-01", "2022-06-01"], [0.01, -0.005, 0.02, 0.004])
    s = walkforward.walk_forward({"rule": t}, windows).summary()
    years = 730 / 365.25
    assert s["oos_sharpe_ann"] == pytest.approx(s["oos_sharpe_trade"] * np.sqrt(4 / years))
