"""The crash model's inputs in the core: live = batch with the v2 model, the longer live buffer, and no
look-ahead anywhere on the way to a walk-forward probability (5-minute realised volatility included)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskd.core import (
    FragilityParams,
    FragilityState,
    Panel,
    compute_fragility,
    compute_fragility_with_state,
    step,
)
from riskd.core.crashprob import CrashModel, predict
from riskd.core.timeseries import CRASH_INPUTS, MONTH_HOURS, stage2_lookback
from riskd.research.calibrate import V2_FEATURES, CrashSpec, fit_crash_model, walk_forward_crash_prob
from riskd.research.inputs import realised_vol_5m
from riskd.research.labels import CrashDefinition, crash_labels

SYMBOLS = ("BTC", "ETH", "SOL", "XRP")
PARAMS = FragilityParams(cfi_v2={"rank_min_history": 168})


def market(hours: int, seed: int, start: str = "2023-01-01") -> Panel:
    """Four symbols with volatility regimes and a few crashes, hourly funding on one venue."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=hours, freq="h", tz="UTC", name="ts")
    vol = 0.004 * np.exp(0.4 * np.sin(np.arange(hours) / 300.0))
    common = rng.standard_t(4, hours) * vol
    common[rng.choice(hours, max(hours // 250, 3), replace=False)] -= 0.06
    ret = common[:, None] * rng.uniform(0.8, 1.4, 4) + rng.normal(0.0, 0.003, (hours, 4))
    close = 100.0 * np.exp(np.cumsum(ret, axis=0))
    volume = rng.lognormal(3.0, 0.3, (hours, 4)) * (1.0 + 30.0 * np.abs(ret))
    funding = np.repeat((1.25e-5 + rng.normal(0.0, 5e-6, (hours // 8 + 1, 4))), 8, axis=0)[:hours]
    return Panel(idx, SYMBOLS, close, volume, volume * close, {"binance": funding})


def test_the_live_buffer_holds_a_month_of_hours() -> None:
    """The stage-1 buffer the live path keeps covers the 30-day window (720 returns: 721 closes)."""
    assert stage2_lookback(PARAMS) >= MONTH_HOURS + 2
    assert set(CRASH_INPUTS) <= set(compute_fragility(market(50, 0), PARAMS).columns)


def test_live_equals_batch_with_the_v2_model() -> None:
    """200 one-hour steps after a warm start (its state through JSON) match the batch path to 1e-12,
    the v2 inputs and crash_prob_24h included."""
    panel = market(1300, seed=4)
    frame = compute_fragility(panel, PARAMS)
    labels = crash_labels(panel.frame("close")["BTC"], CrashDefinition())
    model = fit_crash_model(frame.iloc[:1000], labels.iloc[:1000], CrashSpec(V2_FEATURES), frame.index[1000])
    batch = compute_fragility(panel, PARAMS, model)
    _, state = compute_fragility_with_state(panel.rows(0, 1100), PARAMS, model)
    state = FragilityState.from_dict(json.loads(json.dumps(state.to_dict())), PARAMS)
    rows = []
    for i in range(1100, 1300):
        row, state = step(state, panel.rows(i, i + 1), PARAMS, model)
        rows.append(row)
    live = pd.concat(rows)
    want = batch.iloc[1100:]
    assert live["crash_prob_24h"].notna().all()
    for col in want.columns:
        a, b = want[col].to_numpy(), live[col].to_numpy()
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=col)
        else:
            pd.testing.assert_series_equal(live[col], want[col], obj=col, check_freq=False)


def test_a_state_saved_before_the_longer_buffer_is_refused() -> None:
    """A version-2 state (the 338-hour buffer) is a ValueError: the daemon rebuilds it from the store."""
    _, state = compute_fragility_with_state(market(200, seed=1), PARAMS)
    old = {**state.to_dict(), "version": 2}
    with pytest.raises(ValueError, match="version"):
        FragilityState.from_dict(old, PARAMS)


def test_a_schema_1_model_file_still_reads() -> None:
    """A model file written before v2 (no transforms, no crash kind) reads as identity transforms on the
    drawdown crash it was fitted on, and predicts as before."""
    v1 = {
        "kind": "riskd.crash_prob.logit", "schema_version": 1, "features": ["rank_btc_rv_24h"],
        "intercept": -2.0, "coefficients": [0.5], "means": [0.5], "scales": [0.3], "horizon_hours": 24,
        "threshold": -0.05, "train_start": "2020-01-01T00:00:00+00:00", "train_end": "2022-01-01T00:00:00+00:00",
        "fitted_at": "2022-01-02T00:00:00+00:00", "n_obs": 100, "n_crashes": 10, "std_errors": [0.1, 0.05],
    }  # fmt: skip # a literal file, one line per group of keys
    model = CrashModel.from_dict(v1)
    assert model.transforms == ("identity",)
    assert model.crash_kind == "drawdown"
    x = np.array([0.2, 0.8])
    np.testing.assert_array_equal(
        predict(model, {"rank_btc_rv_24h": x}), 1 / (1 + np.exp(-(-2.0 + 0.5 * (x - 0.5) / 0.3)))
    )


def five_minute_bars(index: pd.DatetimeIndex, seed: int) -> pd.Series:
    """A 5-minute BTC close path over the same span (its own noise: only its timing matters here)."""
    rng = np.random.default_rng(seed)
    bars = pd.date_range(index[0], index[-1] + pd.Timedelta(minutes=55), freq="5min", tz="UTC")
    return pd.Series(100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, len(bars)))), index=bars)


def probabilities(panel: Panel, bars: pd.Series) -> tuple[pd.Series, list[tuple[pd.Timestamp, CrashModel]]]:
    """The whole road: the core's frame, the 5-minute realised volatility, the labels and the
    walk-forward of the v2 model with the offline input, refit every week."""
    frame = compute_fragility(panel, PARAMS)
    frame["btc_rv5m_24h"] = realised_vol_5m(bars).reindex(frame.index)
    labels = crash_labels(panel.frame("close")["BTC"], CrashDefinition())
    spec = CrashSpec((*V2_FEATURES, "btc_rv5m_24h"))
    wf = walk_forward_crash_prob(
        frame, labels, spec, refit="W-MON", min_train_hours=24 * 20, min_train_crashes=10
    )
    return wf.prob, list(zip(wf.fit_dates, wf.models, strict=True))


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), other=st.integers(0, 2**16), cut_day=st.integers(60, 80))
def test_perturbing_everything_after_a_fit_date_changes_no_earlier_probability(seed, other, cut_day) -> None:
    """Prices (from a 10 % gap down), volumes, funding and 5-minute bars replaced from a fit date on: every model fitted by then
    and every probability before it are the same bits (the v2 inputs, the 5-minute realised volatility,
    the labels' T + 25 h mask)."""
    hours = 24 * 90
    a, b = market(hours, seed), market(hours, other)
    cut = a.index[0] + pd.Timedelta(days=cut_day)
    cut = cut - pd.Timedelta(days=cut.day_of_week)  # a Monday: a fit date of the weekly refit
    later = a.index >= cut
    mixed = Panel(
        a.index, a.symbols, np.where(later[:, None], b.close * 0.9 * a.close[~later][-1] / b.close[later][0], a.close),
        np.where(later[:, None], b.volume, a.volume), np.where(later[:, None], b.quote_volume, a.quote_volume),
        {"binance": np.where(later[:, None], b.funding["binance"], a.funding["binance"])},
    )  # fmt: skip # the panel's fields in order, each replaced after the cut
    bars_a, bars_b = five_minute_bars(a.index, seed), five_minute_bars(a.index, other)
    bars_mixed = bars_a.where(bars_a.index < cut, bars_b)
    p1, m1 = probabilities(a, bars_a)
    p2, m2 = probabilities(mixed, bars_mixed)
    before = p1.index < cut
    assert p1[before].notna().sum() > 24 * 5
    np.testing.assert_array_equal(p1[before].to_numpy(), p2[before].to_numpy())
    fitted = [m for d, m in m1 if d <= cut]
    assert fitted
    assert fitted == [m for d, m in m2 if d <= cut]
