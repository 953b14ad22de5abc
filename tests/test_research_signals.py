"""The signal parts: component study, out-of-sample scores, the GARCH baseline, the filter, and how ratios read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from riskd.research import components, exposure, garch, mdtable, parts, regression, signals
from riskd.research.config import ValidationConfig
from riskd.research.evaluation import SignalEvaluation, evaluate_signals
from riskd.research.findings import Finding, Measurement, findings_table, fmt, fmt_ci, verdict
from riskd.research.resample import BlockResamples, percentile_ci
from riskd.research.scoring import auc
from riskd.research.synthetic import planted_tail_driver, synthetic_market

UTC = "UTC"


def _hours(n: int, start: str = "2020-01-01") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="h", tz=UTC, name="ts")


# ---- the bootstrap ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("hours", "unit"), [(5000, 24), (1001, 1), (30, 24)])
def test_block_sums_equal_sums_over_the_resampled_hours(hours: int, unit: int) -> None:
    """Each resample's block sums equal the plain sum over that resample's hour indices."""
    res = BlockResamples.draw(hours, 168, 50, seed=3, unit=unit)
    x = np.random.default_rng(1).normal(size=(hours, 3))
    sums = res.sums(x)
    for rep in range(res.reps):
        np.testing.assert_allclose(sums[rep], x[res.indices(rep)].sum(axis=0), rtol=0, atol=1e-9)


def test_percentile_ci_keeps_an_infinite_end() -> None:
    """A resample distribution with infinite draws gives a CI whose upper end is inf, not NaN."""
    lo, hi = percentile_ci(np.r_[np.linspace(1, 3, 90), np.full(10, np.inf)])
    assert np.isfinite(lo)
    assert hi == np.inf


# ---- component study ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted_study() -> tuple[components.ComponentStudy, float]:
    """The component study over a driver planted in level form (5x crash rate in its top quintile)."""
    m = planted_tail_driver(ratio=5.0, seed=4)
    fwd = pd.Series(np.random.default_rng(0).normal(size=len(m.crash)), index=m.crash.index)
    study = components.component_study(m.features, m.crash.to_frame("planted"), fwd, reps=200)
    return study, m.ratio


def test_component_study_finds_a_level_driver_with_a_ci_covering_the_planted_ratio(planted_study) -> None:
    """The level's in-sample Q5/Q1 is near 5 and its 95% CI covers 5."""
    study, ratio = planted_study
    row = study.row("driver", "planted", "in_sample")
    assert row["ratio"] == pytest.approx(ratio, rel=0.3)
    assert row["ci_lo"] <= ratio <= row["ci_hi"]
    assert row["max_q"] == 5


def test_component_study_shows_the_168h_z_form_weaker(planted_study) -> None:
    """The 168 h z-score of the same driver has a far smaller tail ratio, in and out of sample."""
    study, _ = planted_study
    for sample in components.SAMPLES:
        level, z = study.row("driver", "planted", sample), study.row("driver_z", "planted", sample)
        assert z["ratio"] < 0.6 * level["ratio"]
        assert z["ci_hi"] < level["ratio"]


def test_out_of_sample_quintiles_use_only_earlier_months() -> None:
    """Changing the scores of later months never changes an earlier month's out-of-sample quintile."""
    score = pd.Series(np.random.default_rng(2).normal(size=24 * 400), index=_hours(24 * 400))
    q = components.monthly_past_quintiles(score, min_history_h=24 * 60)
    altered = score.copy()
    altered.loc["2020-10-01":] += 50.0
    q2 = components.monthly_past_quintiles(altered, min_history_h=24 * 60)
    pd.testing.assert_series_equal(q.loc[:"2020-09-30"], q2.loc[:"2020-09-30"])
    assert q.loc[:"2020-02-28"].isna().all()
    assert q.loc["2020-04-01":].between(1, 5).all()


def test_zero_crashes_in_q1_give_an_infinite_ratio_and_a_bound() -> None:
    """A score whose bottom quintile never crashes: ratio inf, 0 Q1 crashes, a finite lower CI end."""
    n = 24 * 300
    rng = np.random.default_rng(5)
    score = pd.Series(rng.normal(size=n), index=_hours(n))
    q = components.quintiles_from_edges(score.to_numpy(), components.insample_edges(score))
    crash = pd.DataFrame(
        {"c": np.where(q >= 2, (rng.random(n) < 0.05).astype(float), 0.0)}, index=score.index
    )
    study = components.component_study(
        score.to_frame("s"), crash, crash["c"] * 0, reps=100, min_history_h=24 * 30
    )
    row = study.row("s", "c", "in_sample")
    assert row["q1_crashes"] == 0
    assert row["ratio"] == np.inf
    assert row["ci_hi"] == np.inf
    assert mdtable.ratio_cell(row["ratio"], row["ci_lo"], row["ci_hi"], row["q1_crashes"]).startswith(
        "0 crashes in Q1"
    )


# ---- how ratios and CIs read --------------------------------------------------------------------------


def test_an_infinite_ci_end_reads_as_a_bound_and_still_decides_the_verdict() -> None:
    """[2.0, inf] prints "≥ 2.00x", and a research value above 2 is inside it: reproduced."""
    f = Finding("k", "tail risk", "claim", 5.13, "ratio", "ci")
    m = Measurement(np.inf, 1000, ci_lo=2.0, ci_hi=np.inf)
    assert fmt_ci(2.0, np.inf, "ratio") == "≥ 2.00x"
    assert fmt(np.inf, "ratio") == "0 crashes in Q1"
    assert verdict(f, m)[0] == "reproduced"
    assert verdict(f, Measurement(np.inf, 1000, ci_lo=6.0, ci_hi=np.inf))[0] == "differs"


def test_findings_table_never_prints_inf_for_a_zero_q1() -> None:
    """The findings row of a zero-Q1 ratio says so, with a "≥" CI, and no "inf"."""
    table = findings_table({"cfi_ratio_return": Measurement(np.inf, 500, ci_lo=1.5, ci_hi=np.inf)})
    row = table.set_index("key").loc["cfi_ratio_return"]
    assert row["ours"] == "0 crashes in Q1"
    assert row["ci"] == "≥ 1.50x"
    printed = row[["research", "ours", "ci", "verdict", "reason", "note"]]
    assert "inf" not in " ".join(map(str, printed.to_numpy())).lower()


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ((3.0, 1.5, np.inf, 4), "3.00x (CI ≥ 1.50x)"),
        ((np.inf, 2.0, np.inf, 0), "0 crashes in Q1 (CI ≥ 2.00x)"),
        ((np.inf, np.inf, np.inf, 0), "0 crashes in Q1"),
        ((2.5, 1.2, 4.0, 9), "2.50x [1.20, 4.00]"),
    ],
)
def test_ratio_cells(args, text) -> None:
    """Ratios read as a value with [lo, hi], "≥ lo" for an infinite end, "0 crashes in Q1" for a zero Q1."""
    assert mdtable.ratio_cell(*args) == text


# ---- out-of-sample metrics ----------------------------------------------------------------------------


def test_auc_equals_scipy_mann_whitney() -> None:
    """AUC equals U / (n1 n0) from scipy's Mann-Whitney test, ties included, to 1e-10."""
    rng = np.random.default_rng(0)
    label = (rng.random(3000) < 0.1).astype(float)
    prob = np.round(rng.random(3000) + 0.3 * label, 2)  # rounded: many ties
    u = stats.mannwhitneyu(prob[label == 1], prob[label == 0]).statistic
    assert auc(prob, label) == pytest.approx(u / ((label == 1).sum() * (label == 0).sum()), abs=1e-10)


@pytest.fixture(scope="module")
def evaluation() -> tuple[SignalEvaluation, pd.DataFrame, pd.Series]:
    """Two scores over 3 years of hours: one carrying the crash risk, one pure noise."""
    n = 24 * 365 * 3
    rng = np.random.default_rng(7)
    idx = _hours(n)
    good = pd.Series(np.convolve(rng.normal(size=n), np.ones(48) / 48, mode="same"), index=idx)
    crash = pd.Series(
        (rng.random(n) < 0.03 * np.exp(2 * good.to_numpy() / good.std())).astype(float), index=idx
    )
    scores = pd.DataFrame({"good": good, "noise": rng.normal(size=n)}, index=idx)
    ev = evaluate_signals(scores, crash, first_test=pd.Timestamp("2021-01-01", tz=UTC), reps=100)
    return ev, scores, crash


def test_brier_and_skill_equal_their_definitions(evaluation) -> None:
    """Brier = mean squared error and skill = 1 - Brier/Brier(climatology), recomputed by hand to 1e-10."""
    ev, _, _ = evaluation
    p = ev.probabilities
    for row in ev.table.itertuples():
        brier = float(((p[row.signal] - p["crash"]) ** 2).mean())
        clim = float(((p[signals.CLIMATOLOGY] - p["crash"]) ** 2).mean())
        assert row.brier == pytest.approx(brier, abs=1e-10)
        assert row.bss == pytest.approx(1 - brier / clim, abs=1e-10)
        label = p["crash"].to_numpy()
        u = stats.mannwhitneyu(p[row.signal][label == 1], p[row.signal][label == 0]).statistic
        if row.signal != signals.CLIMATOLOGY:
            assert row.auc == pytest.approx(u / ((label == 1).sum() * (label == 0).sum()), abs=1e-10)


def test_the_informative_score_has_skill_and_noise_has_none(evaluation) -> None:
    """The planted score's Brier skill CI is above 0; the noise score's CI covers 0."""
    t = evaluation[0].table.set_index("signal")
    assert t.loc["good", "bss_lo"] > 0
    assert t.loc["good", "auc"] > 0.6
    assert t.loc["noise", "bss_lo"] <= 0 <= t.loc["noise", "bss_hi"]


def test_mapping_and_climatology_use_no_future_label(evaluation) -> None:
    """Changing every label from July 2022 on leaves every probability before July 2022 unchanged."""
    _, scores, crash = evaluation
    first = pd.Timestamp("2021-01-01", tz=UTC)
    cut = "2022-06-30"
    altered = crash.copy()
    altered.loc["2022-07-01":] = 1.0 - altered.loc["2022-07-01":]
    a = signals.rank_calibrated(scores["good"], crash, first_test=first)
    b = signals.rank_calibrated(scores["good"], altered, first_test=first)
    pd.testing.assert_series_equal(a.loc[:cut], b.loc[:cut])
    pd.testing.assert_series_equal(
        signals.past_base_rate(crash).loc[:cut], signals.past_base_rate(altered).loc[:cut]
    )


# ---- GARCH --------------------------------------------------------------------------------------------


def test_garch_fit_recovers_the_planted_parameters() -> None:
    """On a simulated GARCH(1,1) path of 30,000 hours the fit is near omega 0.02, alpha 0.08, beta 0.9."""
    x = garch.simulate_garch(30_000, 0.02, 0.08, 0.9, seed=2)
    fit = garch.fit_garch(x, pd.Timestamp("2024-01-01", tz=UTC))
    assert fit.alpha == pytest.approx(0.08, abs=0.02)
    assert fit.beta == pytest.approx(0.90, abs=0.03)
    assert fit.omega == pytest.approx(0.02, rel=0.5)


def test_garch_filter_and_horizon_variance_follow_the_recursion() -> None:
    """The filtered one-step variance and the 24 h sum equal the GARCH recursion iterated by hand."""
    fit = garch.GarchFit(0.02, 0.1, 0.85, pd.Timestamp("2024-01-01", tz=UTC), 0)
    x = garch.simulate_garch(200, 0.02, 0.1, 0.85, seed=1)
    s = garch.filter_variance(x, fit, start_var=0.5)
    var, manual = 0.5, []
    for e in x:
        var = fit.omega + fit.alpha * e * e + fit.beta * var
        manual.append(var)
    np.testing.assert_allclose(s, manual, rtol=1e-10)
    v, total = s[-1], 0.0
    for _ in range(24):
        total += v
        v = fit.omega + fit.persistence * v
    assert garch.horizon_variance(s[-1:], fit, 24)[0] == pytest.approx(total, rel=1e-10)


def test_garch_walk_forward_uses_only_earlier_returns() -> None:
    """A forecast at hour T does not change when returns after T change."""
    n = 24 * 500
    close = pd.Series(
        100 * np.exp(np.cumsum(garch.simulate_garch(n, 0.02, 0.08, 0.9, 3) / 100)), index=_hours(n)
    )
    first = pd.Timestamp("2020-09-01", tz=UTC)
    a = garch.walk_forward_garch(close, first_test=first, min_train_h=24 * 100).forecast
    changed = close.copy()
    changed.loc["2020-12-15":] *= 0.5
    b = garch.walk_forward_garch(changed, first_test=first, min_train_h=24 * 100).forecast
    pd.testing.assert_frame_equal(a.loc[:"2020-12-14 23:00"], b.loc[:"2020-12-14 23:00"])
    assert a.loc["2020-09-01":"2020-12-14", "prob"].between(0, 1).all()


# ---- the filter ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted_filter() -> tuple[exposure.FilterResult, pd.DataFrame]:
    """A synthetic market whose multiplier is planted at 0.2 in the 6 hours before each cascade."""
    m = synthetic_market(years=3.0, n_alts=5, cascades_per_year=60, seed=1)
    mult = pd.Series(1.0, index=m.closes.index)
    for t in m.planted:
        mult.loc[t - pd.Timedelta(hours=6) : t - pd.Timedelta(hours=1)] = 0.2
    fr = exposure.filter_backtest(
        m.closes, {"planted": mult}, first_test=m.closes.index[0] + pd.Timedelta(days=30)
    )
    return fr, m.closes


def test_a_multiplier_that_cuts_before_crashes_improves_tail_and_drawdown(planted_filter) -> None:
    """The planted multiplier beats constant exposure at the same mean on ES99 and max drawdown."""
    s = planted_filter[0].summary.set_index(["asset", "strategy", "period"])
    for asset in ("BTC", "alt basket"):
        planted, const = (
            s.loc[(asset, "planted", "out of sample")],
            s.loc[(asset, exposure.CONSTANT, "out of sample")],
        )
        assert planted["es99_day"] > const["es99_day"]
        assert planted["max_drawdown"] > const["max_drawdown"]


def test_baselines_share_the_mean_exposure(planted_filter) -> None:
    """Constant and vol-targeted exposure have the multiplier's mean exposure over the span."""
    s = planted_filter[0].summary.set_index(["asset", "strategy", "period"])
    for asset in ("BTC", "alt basket"):
        target = s.loc[(asset, "planted", "out of sample"), "mean_exposure"]
        for name in (exposure.CONSTANT, exposure.vol_target_name(24), exposure.vol_target_name(168)):
            assert s.loc[(asset, name, "out of sample"), "mean_exposure"] == pytest.approx(target, abs=1e-6)


def test_exposure_earns_the_next_hour_only() -> None:
    """A multiplier of 0 at the crash hour itself does not avoid that hour's drop (no look-ahead)."""
    idx = _hours(24 * 40)
    btc = pd.Series(100.0, index=idx)
    btc.iloc[500:] = 80.0  # a -20% hour at index 500
    closes = pd.DataFrame({"BTC": btc, "ALT": btc})
    at_crash = pd.Series(1.0, index=idx)
    at_crash.iloc[500] = 0.0
    before = pd.Series(1.0, index=idx)
    before.iloc[499] = 0.0
    fr = exposure.filter_backtest(closes, {"at": at_crash, "before": before}, first_test=idx[0])
    s = fr.summary.set_index(["asset", "strategy", "period"])
    assert s.loc[("BTC", "at", "out of sample"), "worst_day"] == pytest.approx(-0.2)
    assert s.loc[("BTC", "before", "out of sample"), "worst_day"] == pytest.approx(0.0)


# ---- gross vs net ------------------------------------------------------------------------------------


def test_beta_part_regresses_gross_returns_and_states_the_cost_apart() -> None:
    """The regression is of gross trade returns; alpha net = gross alpha - the cost per trade."""
    m = synthetic_market(years=3.0, n_alts=6, alt_alpha=0.01, seed=2)
    cfg = ValidationConfig(cost_bps=30.0)
    from riskd.research import strategies

    trades = strategies.alt_contagion(m.closes, m.events, hold_h=48, cost_bps=30.0)
    beta = parts.beta_part(trades, m.closes, cfg)
    ref = regression.beta_decomposition(trades["gross"], trades["btc_ret"])
    assert beta.regression.iloc[0]["alpha"] == pytest.approx(ref.iloc[0]["alpha"], abs=1e-12)
    cost = beta.cost.set_index("model").loc["base"]
    assert cost["cost"] == pytest.approx(0.003)
    assert cost["alpha_net"] == pytest.approx(cost["alpha_gross"] - 0.003, abs=1e-12)


def test_the_label_known_one_hour_after_the_month_start_is_not_used(evaluation) -> None:
    """The label of hour T is known at T + 25 h: flipping the label of the hour 24 h before a month start
    (known one hour into the month) changes no probability of that month."""
    _, scores, crash = evaluation
    first = pd.Timestamp("2021-01-01", tz=UTC)
    month = pd.Timestamp("2022-03-01", tz=UTC)
    altered = crash.copy()
    altered.loc[month - pd.Timedelta(hours=24)] = 1.0 - altered.loc[month - pd.Timedelta(hours=24)]
    inside = slice(month, month + pd.Timedelta(days=27))
    a = signals.rank_calibrated(scores["good"], crash, first_test=first)
    b = signals.rank_calibrated(scores["good"], altered, first_test=first)
    pd.testing.assert_series_equal(a.loc[inside], b.loc[inside])
    pd.testing.assert_series_equal(
        signals.past_base_rate(crash).loc[inside], signals.past_base_rate(altered).loc[inside]
    )
