"""The research's funding universe (previous closed day, 1 d bars where hours are missing) and CFI v2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskd.core import FragilityParams, Panel, build_panel, compute_fragility
from riskd.core.cfi import V2_COMPONENTS

RATES = {"BTC": 1e-5, "ETH": 2e-5, "NEW": 1e-4}
"""Each symbol pays its own constant funding, so agg_funding says who is in the universe."""
TOP2 = FragilityParams(universe={"funding_top_n": 2})


def three_symbols(hours: int = 24 * 4, surge_at: int = 24 + 10) -> dict[str, pd.DataFrame]:
    """BTC and ETH trade steadily; NEW trades little until ``surge_at``, then 100× more than BTC."""
    idx = pd.date_range("2024-03-01", periods=hours, freq="h", tz="UTC", name="ts")
    frames = {}
    for sym, qv in (("BTC", 1e6), ("ETH", 5e5), ("NEW", 1e3)):
        q = np.full(hours, qv)
        if sym == "NEW":
            q[surge_at:] = 1e8
        frames[sym] = pd.DataFrame({"close": 10.0, "volume": q / 10.0, "quote_volume": q}, index=idx)
    return frames


def funding_of(frames: dict[str, pd.DataFrame]) -> dict[str, dict[str, pd.DataFrame]]:
    idx = next(iter(frames.values())).index
    return {
        "binance": {
            s: pd.DataFrame({"rate_per_hour": RATES[s]}, index=idx - pd.Timedelta(minutes=1)) for s in frames
        }
    }


def universe_members(frame: pd.DataFrame) -> pd.Series:
    """Whether NEW is in the universe each hour (its rate lifts the aggregate far above ETH's)."""
    return frame["agg_funding"] > 3e-5


def test_a_volume_surge_enters_the_universe_only_the_next_day() -> None:
    """NEW's volume explodes at 10:00 on day 2: it ranks top from day 3 00:00, not one hour earlier."""
    frames = three_symbols()
    out = compute_fragility(build_panel(frames, funding_of(frames)), TOP2)
    inside = universe_members(out)
    day3 = pd.Timestamp("2024-03-03", tz="UTC")
    assert not inside[: day3 - pd.Timedelta(hours=1)].any()
    assert inside[day3:].all()
    assert out["agg_funding"].iloc[:24].isna().all()  # day 1 has no closed previous day
    day2 = out.loc["2024-03-02"]
    np.testing.assert_allclose(day2["agg_funding"], (1e6 * 1e-5 + 5e5 * 2e-5) / 1.5e6, rtol=1e-12)
    assert (out.loc["2024-03-02":, "funding_universe_n"] == 2).all()


def test_the_trailing_ranking_stays_available() -> None:
    """universe.rank_by = trailing ranks by the last 24 h, current hour included: NEW joins at 10:00."""
    frames = three_symbols()
    p = FragilityParams(universe={"funding_top_n": 2, "rank_by": "trailing"})
    inside = universe_members(compute_fragility(build_panel(frames, funding_of(frames)), p))
    assert inside.loc["2024-03-02 10:00":].all()
    assert not inside.loc[:"2024-03-02 09:00"].any()


def daily_bars(frames: dict[str, pd.DataFrame], qv: dict[str, float]) -> dict[str, pd.DataFrame]:
    days = pd.date_range("2024-03-01", periods=4, freq="D", tz="UTC", name="ts")
    return {
        s: pd.DataFrame({"close": 10.0, "volume": v / 10.0, "quote_volume": v}, index=days)
        for s, v in qv.items()
    }


def test_a_day_without_hourly_bars_ranks_by_its_1d_bar() -> None:
    """NEW's hourly quote volume is missing on day 2; its 1 d bar (huge) ranks it on day 3, and without
    1 d bars it is left out that day."""
    frames = three_symbols(surge_at=10_000)  # no surge in the hourly bars
    frames["NEW"].loc["2024-03-02", ["volume", "quote_volume"]] = np.nan
    with_1d = build_panel(frames, funding_of(frames), ohlcv_1d=daily_bars(frames, {"NEW": 1e12}))
    without = build_panel(frames, funding_of(frames))
    a, b = (universe_members(compute_fragility(p, TOP2)) for p in (with_1d, without))
    assert a.loc["2024-03-03"].all()
    assert not b.loc["2024-03-03"].any()
    assert not a.loc["2024-03-04"].any()  # day 3's hourly bars are back and small again


def test_the_1d_bar_is_the_previous_days_never_todays() -> None:
    """Panel.quote_volume_1d at any hour of day D is the bar opened at D − 1 day."""
    frames = three_symbols()
    bars = {"NEW": pd.DataFrame({"close": 1.0, "volume": [1.0, 2.0, 3.0, 4.0], "quote_volume": [1.0, 2.0, 3.0, 4.0]},
                                index=pd.date_range("2024-03-01", periods=4, freq="D", tz="UTC"))}  # fmt: skip # one frame per line
    panel = build_panel(frames, ohlcv_1d=bars)
    assert panel.quote_volume_1d is not None
    col = pd.Series(panel.quote_volume_1d[:, 2], index=panel.index)
    assert col.loc["2024-03-01"].isna().all()
    assert (col.loc["2024-03-02"] == 1.0).all()
    assert (col.loc["2024-03-04"] == 3.0).all()


def ranked_market(hours: int = 24 * 60, seed: int = 3) -> Panel:
    rng = np.random.default_rng(seed)
    n = 6
    vol = np.where(np.arange(hours) > hours // 2, 0.02, 0.004)[:, None]
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1.0, (hours, n)) * vol, axis=0))
    volume = rng.lognormal(3.0, 0.3, (hours, n))
    idx = pd.date_range("2024-01-01", periods=hours, freq="h", tz="UTC", name="ts")
    rates = rng.normal(1e-5, 1e-5, (hours, n))
    return Panel(idx, ("BTC", "A", "B", "C", "D", "E"), close, volume, volume * close, {"binance": rates})


@pytest.fixture(scope="module")
def v2_frame() -> pd.DataFrame:
    return compute_fragility(ranked_market(), FragilityParams(cfi_v2={"rank_min_history": 168}))


def test_component_ranks_are_past_only_percentiles(v2_frame: pd.DataFrame) -> None:
    """rank_x at t is (#past below + ½ #past equal) / #past over x's valid values before t."""
    x = v2_frame["btc_rv_24h"].to_numpy()
    got = v2_frame["rank_btc_rv_24h"].to_numpy()
    for t in (400, 700, 1000, 1400):
        past = x[:t][~np.isnan(x[:t])]
        want = ((past < x[t]).sum() + 0.5 * (past == x[t]).sum()) / len(past)
        assert got[t] == pytest.approx(want, abs=1e-15)
    assert np.isnan(got[:100]).all()  # fewer than rank_min_history past values


def test_cfi_v2_is_the_weighted_mean_of_the_ranks_and_the_default_cfi(v2_frame: pd.DataFrame) -> None:
    """Default weights (rv, dispersion, funding: 1 each; the changes 0): cfi_v2 is their mean, in [0, 1],
    and the default cfi/cfi_pct are v2's."""
    ranks = v2_frame[["rank_btc_rv_24h", "rank_xs_ret_std_24h", "rank_agg_funding"]]
    ok = ranks.notna().all(axis=1)
    np.testing.assert_allclose(v2_frame.loc[ok, "cfi_v2"], ranks[ok].mean(axis=1), rtol=1e-12)
    assert v2_frame["cfi_v2"].between(0, 1).sum() == v2_frame["cfi_v2"].notna().sum() > 1000
    np.testing.assert_array_equal(v2_frame["cfi"].to_numpy(), v2_frame["cfi_v2"].to_numpy())
    np.testing.assert_array_equal(v2_frame["cfi_pct"].to_numpy(), v2_frame["cfi_v2_pct"].to_numpy())
    assert set(V2_COMPONENTS) >= {"btc_rv_24h", "xs_ret_std_24h", "agg_funding"}


def test_the_volatility_regime_lifts_cfi_v2_and_not_the_168h_z(v2_frame: pd.DataFrame) -> None:
    """A market 5× more volatile for its second month: v2 stays high (levels vs the whole past) while
    v1's volatility z-score falls back once the week forgets the calm."""
    late, calm = v2_frame.iloc[-24 * 14 :], v2_frame.iloc[24 * 16 : 24 * 30]
    assert late["rank_btc_rv_24h"].mean() > 0.75
    assert late["cfi_v2"].mean() > calm["cfi_v2"].mean() + 0.1
    assert late["btc_rv_24h_z"].abs().mean() < 1.5


def test_version_v1_puts_the_research_cfi_behind_cfi() -> None:
    """cfi.version = v1: cfi and cfi_pct are v1's; v2 is still reported beside it."""
    out = compute_fragility(ranked_market(24 * 20), FragilityParams(cfi={"version": "v1"}))
    np.testing.assert_array_equal(out["cfi"].to_numpy(), out["cfi_v1"].to_numpy())
    np.testing.assert_array_equal(out["cfi_pct"].to_numpy(), out["cfi_v1_pct"].to_numpy())
    assert "cfi_v2" in out.columns


def test_a_perp_with_only_daily_bars_and_funding_joins_the_universe() -> None:
    """NEW has funding and 1 d bars but no hourly candles: ranked by its 1 d bar, its funding counts."""
    frames = three_symbols()
    funding = funding_of(frames)
    del frames["NEW"]
    panel = build_panel(
        frames, funding, ohlcv_1d=daily_bars(frames, {"NEW": 1e12}), symbols=("BTC", "ETH", "NEW")
    )
    out = compute_fragility(panel, TOP2)
    assert universe_members(out).loc["2024-03-02":].all()
    assert (out.loc["2024-03-02":, "funding_universe_n"] == 2).all()
