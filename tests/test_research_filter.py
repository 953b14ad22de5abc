"""The regime as an exposure filter: the regime replayed under any tier signal, the nested choice that
sees only the past, every rule at one mean exposure, the cost of changing exposure, paired differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskd.core import FragilityParams, Panel, compute_fragility
from riskd.research import exposure, filterstats, tiers

PARAMS = FragilityParams(cfi_v2={"rank_min_history": 168}, cfi={"percentile_min_history": 168})


def _panel(hours: int = 24 * 60, seed: int = 2) -> Panel:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2023-01-01", periods=hours, freq="h", tz="UTC", name="ts")
    common = rng.standard_t(4, hours) * 0.005
    common[rng.choice(hours, 12, replace=False)] -= 0.04
    ret = common[:, None] * rng.uniform(0.8, 1.4, 5) + rng.normal(0.0, 0.004, (hours, 5))
    close = 100.0 * np.exp(np.cumsum(ret, axis=0))
    volume = rng.lognormal(3.0, 0.3, (hours, 5)) * (1.0 + 30.0 * np.abs(ret))
    funding = 1.25e-5 + 2e-5 * np.sin(np.arange(hours) / 50.0)[:, None] + rng.normal(0, 4e-6, (hours, 5))
    return Panel(
        idx, ("BTC", "ETH", "SOL", "XRP", "DOGE"), close, volume, volume * close, {"binance": funding}
    )


@pytest.mark.parametrize("signal", ["cfi_v2", "btc_rv", "cfi_v1"])
def test_the_replayed_regime_is_the_cores_own(signal: str) -> None:
    """Replaying the core's regime machine over the frame with another tier signal gives exactly the
    risk_multiplier the core computes when configured with that signal."""
    panel = _panel()
    p = PARAMS.model_copy(update={"regime": PARAMS.regime.model_copy(update={"signal": signal})})
    frame = compute_fragility(panel, p)
    base = compute_fragility(panel, PARAMS)  # the frame the validation has: configured on cfi_v2
    column = {"cfi_v2": "cfi_v2_pct", "btc_rv": "rank_btc_rv_24h", "cfi_v1": "cfi_v1_pct"}[signal]
    got = tiers.regime_multiplier(base, base[column].to_numpy(), signal, PARAMS)
    np.testing.assert_array_equal(got.to_numpy(), frame["risk_multiplier"].to_numpy())
    assert frame["regime"].nunique() >= 3


def test_the_nested_choice_uses_only_labels_known_at_each_month_start() -> None:
    """Changing every probability and label from a month on changes no choice made at or before it."""
    idx = pd.date_range("2023-01-01", periods=24 * 200, freq="h", tz="UTC")
    rng = np.random.default_rng(0)
    crash = pd.Series((rng.random(len(idx)) < 0.05).astype(float), index=idx)
    probs = pd.DataFrame({"cfi_v2": 0.05 + 0.0 * crash, "btc_rv_24h": 0.02 + 0.5 * crash, "crash": crash})
    variants = {tiers.regime_name(t): pd.Series(v, index=idx) for t, v in (("cfi_v2", 0.9), ("btc_rv", 0.4))}
    a = tiers.choose_tiers(variants, probs, default="cfi_v2", horizon_h=24, min_history_h=24 * 30)
    later = probs.index >= "2023-05-01"
    other = probs.copy()
    other.loc[later, "btc_rv_24h"] = 0.9
    other.loc[later, "crash"] = 0.0
    b = tiers.choose_tiers(variants, other, default="cfi_v2", horizon_h=24, min_history_h=24 * 30)
    early = a.months["month"] <= pd.Timestamp("2023-05-01", tz="UTC")
    pd.testing.assert_frame_equal(a.months[early], b.months[early])
    assert a.months["chosen"].iloc[0] == "cfi_v2"  # too little history: the configured signal
    assert a.months["chosen"].iloc[-1] == "btc_rv"  # the sharper forecast, once there is a past
    assert (a.multiplier.loc["2023-06-01":"2023-06-30"] == 0.4).all()


@pytest.fixture(scope="module")
def result() -> tuple[exposure.FilterResult, pd.DataFrame]:
    """Two regime-like multipliers with different means, over a year of a random market."""
    panel = _panel(24 * 365, seed=5)
    closes = pd.DataFrame(panel.close, index=panel.index, columns=list(panel.symbols))
    rng = np.random.default_rng(1)
    high = pd.Series(np.where(rng.random(len(closes)) < 0.1, 0.5, 1.0), index=closes.index)
    low = pd.Series(np.where(rng.random(len(closes)) < 0.3, 0.25, 1.0), index=closes.index)
    fr = exposure.filter_backtest(
        closes, {"high": high, "low": low}, first_test=closes.index[24 * 30], cost_bps=10.0, reps=200
    )
    return fr, closes


def test_every_rule_runs_at_the_same_mean_exposure(result) -> None:
    """The regime variants, constant and both volatility targets share one mean exposure out of sample:
    the lowest of the variants' own means."""
    fr, _ = result
    s = fr.summary[fr.summary["period"] == "out of sample"].set_index(["asset", "strategy"])
    for asset in ("BTC", "alt basket"):
        target = fr.target[asset]
        for rule in ("high", "low", exposure.CONSTANT, "vol target 24 h", "vol target 168 h"):
            assert s.loc[(asset, rule), "mean_exposure"] == pytest.approx(target, abs=1e-6)
    assert fr.target["BTC"] < 0.85  # the low multiplier's mean, not the high one's


def test_net_of_cost_charges_each_change_of_exposure(result) -> None:
    """Cost per year = bps x Σ|Δ exposure| per year; a constant exposure pays nothing; net < gross."""
    fr, _ = result
    net = fr.net.set_index(["asset", "strategy"])
    assert net.loc[("BTC", exposure.CONSTANT), "cost"] == 0.0
    row = net.loc[("BTC", "low")]
    assert row["cost"] == pytest.approx(row["turnover"] * 10.0 / 1e4)
    m = fr.exposures[("BTC", "low")]
    hand = m.diff().abs().iloc[1:-1].sum() / (len(m.dropna()) / 8766.0)
    assert row["turnover"] == pytest.approx(hand, rel=0.01)
    assert row["ann_return"] < row["ann_return_gross"]


def test_a_rule_against_itself_differs_by_nothing(result) -> None:
    """The paired difference of a baseline with itself is exactly zero, CI included."""
    fr, closes = result
    gross = {("BTC", n): closes["BTC"].pct_change().iloc[24 * 30 :] * 0.5 for n in ("a", "b")}
    p = filterstats.paired_table(gross, ["a"], ["b"], 720, 100, 0)
    assert (
        p[["d_es99", "d_es99_lo", "d_es99_hi", "d_sharpe", "d_sharpe_lo", "d_sharpe_hi"]].abs().max().max()
        == 0.0
    )
    assert len(fr.paired) == 2 * 2 * 3  # assets x rules x baselines (constant, two vol targets)


def test_annual_return_is_compounded_and_never_below_minus_100_percent() -> None:
    """An hour-by-hour loss that sums to −400 % a year compounds to a loss above −100 %."""
    idx = pd.date_range("2024-01-01", periods=24 * 30, freq="h", tz="UTC")
    perf = filterstats.performance(pd.Series(-0.0005, index=idx))
    assert -1.0 < perf["ann_return"] < 0.0
    assert perf["ann_return"] == pytest.approx((1 - 0.0005) ** 8766 - 1, rel=1e-9)
