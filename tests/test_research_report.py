"""Findings verdicts, and a full validation rendered to report.md, PNGs and results.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from riskd.research.backtest import HOURS_PER_YEAR
from riskd.research.config import ValidationConfig, ValidationInputs
from riskd.research.findings import RESEARCH_FINDINGS, Finding, Measurement, findings_table, verdict
from riskd.research.parts import events_by_level
from riskd.research.report import write_report
from riskd.research.synthetic import synthetic_market
from riskd.research.validate import PARTS, run_validation

CI = Finding("x", "p", "a mean", 0.02, "pct", "ci")
P = Finding("x", "p", "a p-value", 0.03, "p", "pvalue")
COUNT = Finding("x", "p", "a count", 80, "count", "tolerance")


@pytest.mark.parametrize(
    ("finding", "ours", "expected"),
    [
        (CI, Measurement(0.015, 50, ci_lo=0.01, ci_hi=0.03), "reproduced"),
        (CI, Measurement(0.001, 50, ci_lo=-0.005, ci_hi=0.012), "differs"),
        (CI, Measurement(-0.001, 50, ci_lo=-0.03, ci_hi=0.03), "differs"),  # covers it, wrong sign
        (CI, Measurement(0.02, 5, ci_lo=0.0, ci_hi=0.04), "not testable"),  # too few
        (CI, Measurement(np.nan, 0), "not testable"),
        (CI, Measurement(0.021, 50), "reproduced"),  # no CI: tolerance rule
        (P, Measurement(0.001, 50), "reproduced"),
        (P, Measurement(0.2, 50), "differs"),
        (COUNT, Measurement(95, 95), "reproduced"),
        (COUNT, Measurement(120, 120), "differs"),
        (COUNT, Measurement(3, 3), "differs"),  # counts are compared even when small
    ],
)
def test_verdict_rule(finding, ours, expected):
    """Each rule of the findings docstring decides as documented."""
    assert verdict(finding, ours)[0] == expected


def test_untestable_finding_says_why():
    """A figure marked untestable is reported so, with its reason, whatever we measured."""
    f = next(f for f in RESEARCH_FINDINGS if f.untestable)
    v, reason = verdict(f, Measurement(30.0, 100))
    assert v == "not testable"
    assert reason == f.untestable


def test_findings_table_lists_every_research_figure_once():
    """Missing measurements still appear as rows, 'not testable'."""
    table = findings_table({"beta": Measurement(1.1, 80, "2021", 1.0, 1.2)})
    assert table["key"].tolist() == [f.key for f in RESEARCH_FINDINGS]
    assert table.set_index("key").loc["beta", "verdict"] == "reproduced"
    assert (table.set_index("key").drop(index="beta")["verdict"] == "not testable").all()


@pytest.fixture(scope="module")
def result():
    """A full validation over a small synthetic market (planted beta 1.16 and +1% alt alpha)."""
    m = synthetic_market(seed=5, years=3.2, alt_alpha=0.01, n_alts=8, start="2021-01-01")
    inputs = ValidationInputs(m.closes, m.features, {"volume_only": m.events, "loose": m.events}, m.crashing)
    cfg = ValidationConfig(bootstrap_reps=60, oos_years=(2022, 2023), oos_min_history_h=24 * 60)
    parts: list[str] = []
    return run_validation(inputs, cfg, progress=parts.append), parts


def test_validation_runs_every_part_and_finds_the_planted_beta(result):
    """Progress names each part; the beta row (gross returns) carries the planted 1.16 and a significant alpha."""
    res, parts = result
    assert parts == list(PARTS)
    assert "crash model" in parts
    base = res.beta.regression.set_index("model").loc["base"]
    assert base["beta"] == pytest.approx(1.16, abs=0.08)
    assert base["alpha_p"] < 0.01
    assert set(res.findings["verdict"]) <= {"reproduced", "differs", "not testable"}


def test_report_writes_markdown_figures_and_json(result, tmp_path: Path):
    """report.md starts with the findings table, every PNG is written, results.json is strict JSON."""
    res, _ = result
    paths = write_report(res, tmp_path / "rep")
    names = {p.name for p in paths}
    assert {"report.md", "results.json", "event_study.png", "crash_rates.png", "equity.png"} <= names
    assert all(p.stat().st_size > 1000 for p in paths if p.suffix == ".png")
    md = (tmp_path / "rep" / "report.md").read_text()
    assert md.index("## Findings") < md.index("## 1. Event study")
    for f in RESEARCH_FINDINGS:
        assert f.claim in md
    for section in ("## Component study", "## Signals out of sample"):
        assert section in md
    assert {"components.png", "reliability.png", "brier_skill.png"} <= names
    data = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert len(data["findings"]) == len(RESEARCH_FINDINGS)
    assert data["config"]["cost_bps"] == 30.0


def test_events_by_level_reads_the_core_episode_frame():
    """One DatetimeIndex of episode starts per level, sorted."""
    ts = pd.date_range("2021-05-19", periods=3, freq="h", tz="UTC")
    frame = pd.DataFrame({"level": ["loose", "volume_only", "loose"], "start": [ts[2], ts[1], ts[0]]})
    out = events_by_level(frame)
    assert list(out["loose"]) == [ts[0], ts[2]]
    assert list(out["volume_only"]) == [ts[1]]


def test_significant_p_value_with_the_opposite_sign_differs():
    """A p-value claim is not reproduced by an equally significant effect in the other direction."""
    assert verdict(P, Measurement(1e-9, 500), paired=(0.048, -0.05))[0] == "differs"
    assert verdict(P, Measurement(1e-9, 500), paired=(0.048, 0.03))[0] == "reproduced"


def test_per_hold_sharpe_basis_matches_the_research_alt_figures():
    """The research's alt contagion (n = 72, p = 0.029, 48 h hold) implies Sharpe ≈ 3.58 only per hold period."""
    t = stats.t.isf(0.029 / 2, 71)
    per_trade = t / np.sqrt(72)
    assert per_trade * np.sqrt(HOURS_PER_YEAR / 48) == pytest.approx(3.58, abs=0.1)
    assert per_trade * np.sqrt(72 / 5) < 1.5  # on the trades-per-year basis it is about 1


def test_signals_parquet_holds_every_scored_hour_and_what_was_published(result, tmp_path: Path):
    """signals.parquet: one row per out-of-sample hour, hour (UTC), crash (0/1), p_<signal> for every
    signal and baseline, p_climatology and p_published (the walk-forward crash_prob_24h)."""
    res, _ = result
    write_report(res, tmp_path / "rep")
    frame = pd.read_parquet(tmp_path / "rep" / "signals.parquet")
    probs = res.signals.probabilities
    assert len(frame) == len(probs) > 0
    assert list(frame.columns[:2]) == ["hour", "crash"]
    assert str(frame["hour"].dt.tz) == "UTC"
    assert set(frame["crash"].unique()) <= {0, 1}
    assert {f"p_{c}" for c in probs.columns if c != "crash"} | {"p_published"} == set(frame.columns[2:])
    np.testing.assert_array_equal(frame["p_published"], frame["p_crash_prob_24h"])
    brier = ((frame["p_btc_rv_24h"] - frame["crash"]) ** 2).mean()
    assert brier == pytest.approx(res.signals.table.set_index("signal").loc["btc_rv_24h", "brier"], abs=1e-12)


def test_the_signal_section_opens_with_the_computed_verdict(result, tmp_path: Path):
    """The line under the signals heading is the verdict, with the paired figures at both block lengths."""
    res, _ = result
    md = (write_report(res, tmp_path / "rep")[0]).read_text()
    section = md.split("## Signals out of sample", 1)[1].splitlines()
    assert section[1].startswith("riskd's published probability beats realised volatility alone: **")
    assert section[1] == res.signals.verdict.line()
    assert res.signals.verdict.answer in {"yes", "no", "not distinguishable", "not run"}


def test_results_json_writes_an_infinite_bound_as_inf_not_null():
    """NaN is null; an infinite CI end is the string "inf" (a one-sided bound, not a missing value)."""
    from riskd.research.report import to_jsonable

    data = to_jsonable({"lo": 1.5, "hi": np.inf, "neg": -np.inf, "nan": np.nan})
    assert data == {"lo": 1.5, "hi": "inf", "neg": "-inf", "nan": None}
    assert json.loads(json.dumps(data, allow_nan=False)) == data


def test_a_quintile_without_hours_is_said_and_long_titles_wrap():
    """Q5/Q1 whose past-only edges leave Q1 empty says so; a chart title longer than the figure wraps."""
    from riskd.research.mdtable import ratio_cell
    from riskd.research.plots import _axes

    assert ratio_cell(np.nan, np.nan, np.nan, 0, q1_hours=0).startswith("no hours in Q1")
    _fig, ax = _axes("a very long title " * 12, (6.0, 4.0))
    assert max(len(line) for line in ax.get_title().splitlines()) <= 63


def test_every_bootstrap_takes_the_configured_seed():
    """The same seed gives the same CIs; another seed moves the CIs of every resampled part (events,
    tail risk, walk-forward Sharpe, components, signals, the filter)."""
    m = synthetic_market(seed=3, years=2.4, alt_alpha=0.01, n_alts=6, start="2021-01-01")
    mult = (1.0 - 0.5 * (m.features["cfi"] > 1.0)).rename("risk_multiplier")
    inputs = ValidationInputs(
        m.closes,
        m.features,
        {"volume_only": m.events, "loose": m.events},
        m.crashing,
        multipliers={"r": mult},
    )

    def cis(seed: int) -> list[float]:
        cfg = ValidationConfig(
            bootstrap_reps=40, component_reps=20, oos_years=(2022,), oos_min_history_h=24 * 60, seed=seed
        )
        res = run_validation(inputs, cfg)
        return [
            float(res.event_study.ic.set_index("ic_name").loc["overshoot", "ci_lo"]),
            float(
                res.tail.set_index(["crash", "sample", "bucket"]).loc[
                    ("drawdown", "in_sample", "Q5/Q1"), "ci_lo"
                ]
            ),
            float(res.strategies.fade_summary["oos_sharpe_ci_lo"]),
            float(res.components.ic["ci_lo"].iloc[0]),
            float(res.signals.table["bss_lo"].iloc[0]),
            float(res.exposure.paired["d_es99_lo"].iloc[0]),
        ]

    a, b, c = cis(0), cis(0), cis(9)
    assert a == b
    assert all(x != y for x, y in zip(a, c, strict=True)), (a, c)


def test_the_research_cfi_claims_are_scored_with_the_research_cfi():
    """With both CFIs in the features, Part 2 and the IC read cfi_v1 (the research's), not riskd's cfi."""
    from riskd.research.parts import research_cfi

    idx = pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC")
    feats = pd.DataFrame({"cfi": [1.0, 2.0, 3.0], "cfi_v1": [9.0, 8.0, 7.0]}, index=idx)
    inputs = ValidationInputs(pd.DataFrame({"BTC": [1.0, 1.0, 1.0]}, index=idx), feats, {})
    assert research_cfi(inputs, ValidationConfig()).tolist() == [9.0, 8.0, 7.0]


def test_a_span_that_ends_before_the_out_of_sample_start_is_reported_not_testable(tmp_path: Path):
    """A store that stops before ``validation.oos_start`` still gets a whole report: the parts that need
    out-of-sample hours say they are not testable instead of failing on empty tables (a traceback here
    once met ``riskd validate --to`` a date before 2021)."""
    m = synthetic_market(years=1.0, n_alts=4, start="2020-01-01")
    assert m.closes.index[-1] < pd.Timestamp("2021-01-01", tz="UTC")
    multiplier = (1.0 - 0.5 * (m.features["cfi"] > 1.0)).rename("risk_multiplier")
    inputs = ValidationInputs(
        m.closes, m.features, {"volume_only": m.events}, m.crashing, multipliers={"cfi tiers": multiplier}
    )
    result = run_validation(inputs, ValidationConfig(bootstrap_reps=50))
    assert result.exposure is None
    for table in result.strategies.per_year.values():
        assert table.empty
        assert "year" in table.columns
    write_report(result, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "Not testable on this span: no hour at or after the out-of-sample start 2021-01-01" in text
    assert json.loads((tmp_path / "results.json").read_text())
