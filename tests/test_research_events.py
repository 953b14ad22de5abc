"""Event study: timestamp convention, alts vs BTC, ICs and hardest-hit quintiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from riskd.research import events


def _closes(values: dict[str, list[float]], start: str = "2021-05-01") -> pd.DataFrame:
    n = len(next(iter(values.values())))
    idx = pd.date_range(start, periods=n, freq="h", tz="UTC", name="ts")
    return pd.DataFrame(values, index=idx, dtype=float)


def test_forward_return_runs_from_event_close_to_close_h_hours_later():
    """Row T's forward return at h is close[T+h] / close[T] - 1 (rows are candle open times)."""
    closes = _closes({"BTC": [100, 110, 121, 133.1, 100]})
    fwd = events.forward_returns(closes, 2)["BTC"]
    assert fwd.iloc[0] == pytest.approx(121 / 100 - 1)
    assert fwd.iloc[2] == pytest.approx(100 / 121 - 1)
    assert fwd.iloc[3:].isna().all()


def test_missing_candle_makes_spanning_returns_nan_not_longer():
    """A gap in the hourly grid is NaN, never a 2 h move passed off as a 1 h return."""
    closes = _closes({"BTC": [100, 101, 102, 103]}).drop(index=pd.Timestamp("2021-05-01 02:00", tz="UTC"))
    assert np.isnan(events.forward_returns(closes, 1).loc["2021-05-01 01:00", "BTC"])
    assert np.isnan(events.past_returns(closes, 1).loc["2021-05-01 03:00", "BTC"])


def test_event_returns_rows_per_symbol_with_overshoot_and_horizons():
    """One row per (event, listed symbol): event_ret from close T-1 to T, ret_h from close T to T+h."""
    closes = _closes({"BTC": [100, 95, 96, 97], "ETH": [np.nan, 50, 45, 47]})
    obs = events.event_returns(closes, closes.index[[1, 2]], horizons=(1,))
    at1 = obs[obs["ts"] == closes.index[1]].set_index("symbol")
    assert list(at1.index) == ["BTC", "ETH"]
    assert at1.loc["BTC", "event_ret"] == pytest.approx(-0.05)
    assert np.isnan(at1.loc["ETH", "event_ret"])  # no close the hour before: listed at the event hour
    assert at1.loc["ETH", "ret_1h"] == pytest.approx(-0.1)


def test_unlisted_symbol_is_left_out_of_the_event():
    """A symbol without a close at the event hour contributes no observation."""
    closes = _closes({"BTC": [100, 95, 96], "SOL": [np.nan, np.nan, 10]})
    obs = events.event_returns(closes, closes.index[[1]], horizons=(1,))
    assert obs["symbol"].tolist() == ["BTC"]


def _planted_events(spread: float, n_events: int = 60, seed: int = 0) -> pd.DataFrame:
    """Alt-event observations where every alt beats its event's BTC by ``spread`` plus noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n_events):
        ts = pd.Timestamp("2021-01-01", tz="UTC") + pd.Timedelta(hours=100 * e)
        btc = rng.normal(0.0, 0.03)
        rows.append({"ts": ts, "symbol": "BTC", "event_ret": -0.04, "ret_24h": btc})
        for a in range(10):
            alt = btc + spread + rng.normal(0, 0.02)
            rows.append({"ts": ts, "symbol": f"A{a}", "event_ret": rng.normal(-0.05, 0.02), "ret_24h": alt})
    return pd.DataFrame(rows)


def test_spread_of_planted_outperformance_is_found_and_significant():
    """Alts planted 1% above BTC: the spread is ~1% and significant both pooled and per event."""
    row = events.alt_btc_spread(_planted_events(0.01), horizons=(24,)).iloc[0]
    assert row["n_events"] == 60
    assert row["n_obs"] == 600
    assert row["spread_mean"] == pytest.approx(0.01, abs=0.003)
    assert row["p_obs"] < 1e-6
    assert row["p_event"] < 1e-3


def test_no_planted_spread_is_not_significant_per_event():
    """Without a planted spread the per-event test does not reject."""
    row = events.alt_btc_spread(_planted_events(0.0, seed=3), horizons=(24,)).iloc[0]
    assert row["p_event"] > 0.05


def test_spearman_ic_equals_scipy_and_drops_missing_pairs():
    """Our IC is scipy's Spearman over complete pairs, to 1e-12."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=200), rng.normal(size=200)
    x[5] = np.nan
    ours = events.spearman_ic(x, y)
    ref = stats.spearmanr(np.delete(x, 5), np.delete(y, 5))
    assert ours["n"] == 199
    assert ours["ic"] == pytest.approx(ref.statistic, abs=1e-12)
    assert ours["p"] == pytest.approx(ref.pvalue, rel=1e-10)


def test_overshoot_ic_finds_planted_rank_relation():
    """Alts that fell more recover more (planted): the IC is clearly positive."""
    obs = _planted_events(0.0)
    alts = obs["symbol"] != "BTC"
    obs.loc[alts, "ret_24h"] = -obs.loc[alts, "event_ret"] + np.random.default_rng(2).normal(
        0, 0.02, alts.sum()
    )
    ic = events.overshoot_ic(obs)
    assert ic["ic"] > 0.5
    assert ic["p"] < 1e-10
    assert ic["n"] == 600


def test_score_ic_reports_a_thinned_p_value_for_overlapping_windows():
    """The non-overlapping test uses every 24th hour and is never more significant than the dense one
    on a persistent score."""
    rng = np.random.default_rng(4)
    n = 24 * 200
    closes = _closes({"BTC": 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))})
    score = closes["BTC"].pct_change(24)  # persistent, mildly related to the future by nothing
    out = events.score_ic(score, closes, 24)
    assert out["n_nonoverlap"] == pytest.approx(out["n"] / 24, abs=2)
    assert np.isfinite(out["p_nonoverlap"])


def test_hardest_hit_quintile_is_ranked_within_each_event():
    """Within an event of 10 alts, the two that fell most are quintile 5 and the two that fell least 1."""
    obs = _planted_events(0.0, n_events=1)
    q = events.overshoot_quintile(obs)
    alts = obs[obs["symbol"] != "BTC"]
    order = alts["event_ret"].sort_values().index
    assert (q[order[:2]] == 5).all()
    assert (q[order[-2:]] == 1).all()
    assert q[obs["symbol"] == "BTC"].isna().all()


def test_hardest_hit_quintile_table_has_planted_winner():
    """When the hardest hit recover by a planted 5%, Q5's mean is ~5% and significant, Q1's is not."""
    obs = _planted_events(0.0, n_events=80).rename(columns={"ret_24h": "ret_48h"})
    q = events.overshoot_quintile(obs)
    obs["ret_48h"] = np.random.default_rng(5).normal(0, 0.03, len(obs)) + np.where(q == 5, 0.05, 0.0)
    table = events.hardest_hit_quintiles(obs, 48).set_index("quintile")
    assert table.loc[5, "mean"] == pytest.approx(0.05, abs=0.01)
    assert table.loc[5, "p"] < 1e-6
    assert table.loc[1, "p"] > 0.001
    assert table["n"].sum() == 800


def test_ic_ci_clustered_is_wider_than_iid_when_events_share_shocks():
    """Resampling whole events widens the IC's CI when the alts of an event move together."""
    rng = np.random.default_rng(6)
    clusters = np.repeat(np.arange(40), 15)
    shock = rng.normal(0, 1, 40)[clusters]
    x, y = shock + rng.normal(0, 0.3, 600), shock + rng.normal(0, 1, 600)
    lo_c, hi_c = events.ic_ci(x, y, clusters=clusters, reps=300)
    lo_i, hi_i = events.ic_ci(x, y, reps=300)
    assert hi_c - lo_c > 1.3 * (hi_i - lo_i)
