"""The crash probability: the model file, a planted probability recovered, a walk-forward that does not
look ahead, and ``riskd calibrate`` writing a file the daemon's loader reads."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from statsmodels.stats.proportion import proportion_confint

from riskd.cli import main
from riskd.config import load_settings
from riskd.contract.models import DataQuality
from riskd.contract.snapshot import to_snapshot
from riskd.core import FragilityParams, Panel, compute_fragility
from riskd.core.crashprob import CrashModel, predict
from riskd.errors import ConfigError
from riskd.research.calibrate import CrashSpec, fit_as_of, walk_forward_crash_prob
from riskd.research.labels import CrashDefinition, crash_labels, label_known_at
from riskd.sinks.metrics import LiveState, SnapshotCollector
from riskd.store.model_file import crash_model_path, load_crash_model, read_crash_model
from riskd.testing.sample import load_sample_store

A_TRUE, B_TRUE = -3.0, 8e4
"""Planted hazard: P(crash next hour) = 1 / (1 + exp(-(A + B · agg_funding))), funding per hour."""


def planted_panel(hours: int, seed: int) -> tuple[Panel, np.ndarray]:
    """Three symbols paying the same hourly funding x_t (an AR(1) around 1.25e-5/h); in hour t+1 BTC
    falls 8 % with probability logistic(A + B·x_t), else moves ~0.3 %. Returns the panel and x."""
    rng = np.random.default_rng(seed)
    x = np.empty(hours)
    x[0] = 1.25e-5
    for t in range(1, hours):
        x[t] = 1.25e-5 + 0.97 * (x[t - 1] - 1.25e-5) + rng.normal(0.0, 4e-6)
    hazard = 1.0 / (1.0 + np.exp(-(A_TRUE + B_TRUE * x)))
    crash = np.zeros(hours, dtype=bool)
    crash[1:] = rng.random(hours - 1) < hazard[:-1]
    ret = np.where(crash, -0.08, rng.normal(0.0, 0.003, hours))
    btc = 40_000.0 * np.exp(np.cumsum(np.log1p(ret)))
    close = np.column_stack([btc, btc / 15.0, btc / 400.0])
    volume = np.full((hours, 3), 100.0)
    idx = pd.date_range("2022-01-01", periods=hours, freq="h", tz="UTC", name="ts")
    rates = np.repeat(x[:, None], 3, axis=1)
    return Panel(idx, ("BTC", "ETH", "SOL"), close, volume, volume * close, {"binance": rates}), x


@pytest.fixture(scope="module")
def planted() -> tuple[pd.DataFrame, pd.Series, CrashModel]:
    """The core's frame over 30,000 planted hours, the 1 h crash labels, and the model fitted on them."""
    panel, _ = planted_panel(30_000, seed=5)
    frame = compute_fragility(panel)
    labels = crash_labels(panel.frame("close")["BTC"], CrashDefinition("drawdown", 1, -0.05))
    spec = CrashSpec(("agg_funding",), CrashDefinition("drawdown", 1, -0.05))
    model = fit_as_of(frame, labels, spec, panel.index[-1] + pd.Timedelta(hours=2))
    return frame, labels, model


def test_planted_logistic_coefficients_are_recovered_within_their_ci(
    planted: tuple[pd.DataFrame, pd.Series, CrashModel],
) -> None:
    """The fitted slope and intercept, back on the raw funding scale, are within 2.58 s.e. of the planted."""
    _, _, model = planted
    b = model.coefficients[0] / model.scales[0]
    a = model.intercept - model.coefficients[0] * model.means[0] / model.scales[0]
    se_b = model.std_errors[1] / model.scales[0]
    assert abs(b - B_TRUE) < 2.58 * se_b, (b, se_b)
    # the intercept's s.e. on the raw scale, from the fit's own (standardised) intercept s.e. and slope
    se_a = np.hypot(model.std_errors[0], se_b * model.means[0])
    assert abs(a - A_TRUE) < 2.58 * se_a, (a, se_a)


def test_planted_probability_is_reliable_within_each_bins_ci(
    planted: tuple[pd.DataFrame, pd.Series, CrashModel],
) -> None:
    """Binned by the core's crash_prob_24h, the observed crash rate is inside the bin's 99 % Wilson CI
    around the mean predicted probability's range, and the model spans the planted range of hazards."""
    _, labels, model = planted
    panel, _ = planted_panel(30_000, seed=5)
    prob = compute_fragility(panel, crash_model=model)["crash_prob_24h"]
    ok = prob.notna() & labels.notna()
    bins = pd.qcut(prob[ok], 8, labels=False)
    checked = 0
    for _, grp in prob[ok].groupby(bins):
        y = labels[grp.index]
        lo, hi = proportion_confint(int(y.sum()), len(y), alpha=0.01, method="wilson")
        assert lo <= grp.mean() <= hi, (grp.mean(), lo, hi)
        checked += 1
    assert checked == 8
    assert prob[ok].max() / prob[ok].min() > 3  # the planted hazard varies; so must the prediction


def test_predict_is_elementwise_one_row_or_many(planted: tuple[pd.DataFrame, pd.Series, CrashModel]) -> None:
    """predict over a frame equals predict row by row, bit for bit (the live step's one-row call)."""
    frame, _, model = planted
    cols = {"agg_funding": frame["agg_funding"].to_numpy()[:500]}
    whole = predict(model, cols)
    one = np.array([predict(model, {"agg_funding": cols["agg_funding"][i : i + 1]})[0] for i in range(500)])
    np.testing.assert_array_equal(whole, one)


def test_model_round_trips_through_json_and_rejects_bad_files(
    planted: tuple[pd.DataFrame, pd.Series, CrashModel], tmp_path: Path
) -> None:
    """to_dict → JSON → from_dict is the same model; a wrong kind, schema or shape is a ValueError."""
    _, _, model = planted
    assert CrashModel.from_dict(json.loads(json.dumps(model.to_dict()))) == model
    bad = {"kind": "kind is", "schema_version": "schema_version", "coefficients": "one coefficient"}
    for field, value in (("kind", "other"), ("schema_version", 99), ("coefficients", [1.0, 2.0])):
        with pytest.raises(ValueError, match=bad[field]):
            CrashModel.from_dict({**model.to_dict(), field: value})


def test_labels_use_the_next_hours_lowest_close_and_are_unknown_at_the_end() -> None:
    """Hour t is a crash when a close of t+1 … t+h is ≥ 5 % below close t; the last h hours are NaN."""
    idx = pd.date_range("2024-01-01", periods=6, freq="h", tz="UTC")
    close = pd.Series([100.0, 99.0, 96.0, 94.0, 100.0, 101.0], index=idx)
    got = crash_labels(close, CrashDefinition("drawdown", 2, -0.05))
    # row 0: 94 at t+3 is −6 % but outside the 2 h horizon; row 1: 94 vs 99 is −5.05 %
    np.testing.assert_array_equal(got.to_numpy(), [0.0, 1.0, 0.0, 0.0, np.nan, np.nan])
    assert label_known_at(idx, 2)[0] == idx[0] + pd.Timedelta(hours=3)


def random_history(seed: int, hours: int = 24 * 150) -> tuple[pd.DataFrame, pd.Series]:
    """Two features and a BTC close whose crashes follow the first feature: a walk-forward's input."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2023-01-01", periods=hours, freq="h", tz="UTC", name="ts")
    f1 = pd.Series(rng.normal(size=hours), index=idx).rolling(12, min_periods=1).mean() * np.sqrt(12.0)
    f2 = rng.normal(size=hours)
    hazard = 1.0 / (1.0 + np.exp(-(-4.0 + 1.5 * f1.to_numpy())))
    ret = np.where(rng.random(hours) < np.roll(hazard, 1), -0.06, rng.normal(0.0, 0.002, hours))
    close = pd.Series(100.0 * np.exp(np.cumsum(np.log1p(ret))), index=idx)
    return pd.DataFrame({"f1": f1.to_numpy(), "f2": f2}, index=idx), close


WF = {"refit": "MS", "min_train_hours": 24 * 30, "min_train_crashes": 10}


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), noise=st.integers(0, 2**32 - 1), month=st.integers(2, 4))
def test_walk_forward_does_not_look_ahead(seed: int, noise: int, month: int) -> None:
    """Everything from a fit date on replaced (features and prices): every model fitted at or before that
    date, and every probability before it, is unchanged."""
    features, close = random_history(seed)
    other_f, other_c = random_history(noise)
    cut = pd.Timestamp("2023-01-01", tz="UTC") + pd.DateOffset(months=month)
    later = features.index >= cut
    features2 = features.copy()
    features2.loc[later] = other_f.loc[later].to_numpy()
    close2 = close.where(~later, other_c * close[~later].iloc[-1] / other_c.iloc[0])
    spec = CrashSpec(("f1", "f2"), CrashDefinition("drawdown", 24, -0.05))
    a = walk_forward_crash_prob(features, crash_labels(close, spec.definition), spec, **WF)
    b = walk_forward_crash_prob(features2, crash_labels(close2, spec.definition), spec, **WF)
    before_a = [m for m, d in zip(a.models, a.fit_dates, strict=True) if d <= cut]
    before_b = [m for m, d in zip(b.models, b.fit_dates, strict=True) if d <= cut]
    assert before_a
    assert before_a == before_b
    np.testing.assert_array_equal(a.prob[~later].to_numpy(), b.prob[~later].to_numpy())


def test_walk_forward_predicts_each_month_with_the_model_fitted_before_it() -> None:
    """The out-of-sample series in a month is predict(model fitted at that month's start, features)."""
    features, close = random_history(3)
    spec = CrashSpec(("f1", "f2"), CrashDefinition("drawdown", 24, -0.05))
    wf = walk_forward_crash_prob(features, crash_labels(close, spec.definition), spec, **WF)
    assert len(wf.models) >= 3
    for model, date in zip(wf.models, wf.fit_dates, strict=True):
        assert pd.Timestamp(model.train_end) + pd.Timedelta(hours=25) <= date
        rows = features.loc[date : date + pd.offsets.MonthBegin(1) - pd.Timedelta(hours=1)]
        want = predict(model, {c: rows[c].to_numpy() for c in spec.features})
        np.testing.assert_array_equal(wf.prob.loc[rows.index].to_numpy(), want)
    assert wf.prob.loc[: wf.fit_dates[0] - pd.Timedelta(hours=1)].isna().all()
    assert wf.models[-1].coefficients[0] > 0  # the planted sign


# ---- riskd calibrate and the loader ----------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the bundled May 2021 sample, imported by the real importer."""
    root = tmp_path_factory.mktemp("calibrate")
    load_sample_store(root / "store")
    return root


SHORT_RANKS = {"RISKD_FRAGILITY__CFI_V2__RANK_MIN_HISTORY": "168"}
"""The sample has ~1,250 hours: components are ranked from their first week on."""


def test_calibrate_writes_a_model_the_loader_reads(
    sample_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``riskd calibrate`` exits 0 and writes a JSON model; load_crash_model reads it and the core uses it."""
    monkeypatch.setenv("RISKD_DATA_DIR", str(sample_dir))
    for k, v in SHORT_RANKS.items():
        monkeypatch.setenv(k, v)
    assert main(["calibrate"]) == 0
    out = capsys.readouterr().out
    assert "crash model (schema 2, crash = drawdown ≤ -5.0% in 24 h) written to" in out
    settings = load_settings()
    path = crash_model_path(settings)
    assert path == sample_dir / "models" / "crash_prob_24h.json"
    data = json.loads(path.read_text())
    assert data["schema_version"] == 2
    assert data["features"] == list(settings.model.crash_features)
    assert data["crash_kind"] == settings.validation.crash_kind
    assert data["transforms"][:3] == ["log", "log", "log"]  # the volatilities
    assert data["n_crashes"] > 0
    assert data["n_obs"] > data["n_crashes"]
    model = load_crash_model(settings)
    assert model is not None
    assert model.n_obs == data["n_obs"]


def test_calibrate_out_and_a_span(sample_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--out writes elsewhere; --from restricts the labelled hours fitted."""
    monkeypatch.setenv("RISKD_DATA_DIR", str(sample_dir))
    for k, v in SHORT_RANKS.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "m.json"
    assert main(["calibrate", "--from", "2021-05-10", "--out", str(out)]) == 0
    model = read_crash_model(out, load_settings().fragility)
    assert pd.Timestamp(model.train_start) >= pd.Timestamp("2021-05-10", tz="UTC")


def test_calibrate_bad_feature_setting_exits_2(
    sample_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown model feature is a one-line error naming the setting, exit 2."""
    monkeypatch.setenv("RISKD_DATA_DIR", str(sample_dir))
    monkeypatch.setenv("RISKD_MODEL__CRASH_FEATURES", '["no_such_column"]')
    assert main(["calibrate"]) == 2
    err = capsys.readouterr().err
    assert "model.crash_features" in err
    assert len(err.strip().splitlines()) == 1


def test_missing_model_file_gives_null_probability(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """No model file: the loader logs once and returns None; the core's column is NaN, the snapshot null."""
    settings = load_settings(data_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="riskd.calibrate"):
        assert load_crash_model(settings) is None
    assert sum("no crash model" in r.getMessage() for r in caplog.records) == 1
    panel, _ = planted_panel(200, seed=1)
    frame = compute_fragility(panel, FragilityParams())
    assert frame["crash_prob_24h"].isna().all()
    row = frame.iloc[-1].to_dict()
    snap = to_snapshot(frame.index[-1], row, computed_at=pd.Timestamp.now(tz="UTC").to_pydatetime(),
                       quality=DataQuality(status="ok", coverage=1.0), live=True)  # fmt: skip # the keyword arguments on two lines
    assert snap.crash_prob_24h is None
    assert json.loads(snap.to_json())["crash_prob_24h"] is None


def test_a_broken_model_file_is_a_config_error(tmp_path: Path) -> None:
    """A model file that is not a model names the file and the setting (exit 2 in the CLI)."""
    settings = load_settings(data_dir=tmp_path)
    path = crash_model_path(settings)
    path.parent.mkdir(parents=True)
    path.write_text('{"kind": "riskd.crash_prob.logit", "schema_version": 2}')
    with pytest.raises(ConfigError, match=r"model\.crash_prob_path"):
        load_crash_model(settings)


def test_metrics_publish_the_probability_and_nan_without_a_model(
    planted: tuple[pd.DataFrame, pd.Series, CrashModel],
) -> None:
    """riskd_crash_probability_ratio is the snapshot's crash_prob_24h, and NaN (no value) while it is null."""
    _, _, model = planted
    panel, _ = planted_panel(400, seed=2)
    row = compute_fragility(panel, crash_model=model).iloc[-1]
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    quality = DataQuality(status="ok", coverage=1.0)
    snap = to_snapshot(row.name, row.to_dict(), computed_at=now, quality=quality, live=True)
    assert snap.crash_prob_24h == pytest.approx(float(row["crash_prob_24h"]))
    registry = CollectorRegistry()
    state = LiveState(snapshot=snap)
    registry.register(SnapshotCollector(state))
    assert registry.get_sample_value("riskd_crash_probability_ratio") == pytest.approx(snap.crash_prob_24h)
    state.snapshot = snap.model_copy(update={"crash_prob_24h": None})
    assert math.isnan(registry.get_sample_value("riskd_crash_probability_ratio"))
