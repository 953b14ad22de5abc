"""Pure minute-side core: the provisional detector and the hourly liquidation features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskd.core.intrahour import (
    IntrahourParams,
    first_firing,
    lead_minutes,
    minute_features,
    provisional_levels,
)
from riskd.core.liquidations import (
    LiquidationParams,
    aggregate_events,
    hourly_totals,
    liquidation_features,
)
from riskd.research.intrahour import replay

START = pd.Timestamp("2024-03-01", tz="UTC")
P = IntrahourParams(volume_baseline_minutes=120, volume_min_periods=30)


def calm_minutes(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """``n`` quiet minutes: BTC and four alts wandering ±0.05 %, steady volume and liquidations."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(START, periods=n, freq="1min", name="ts")
    paths = 100 * np.exp(np.cumsum(rng.normal(0, 0.0005, (n, 5)), axis=0))
    btc = pd.DataFrame({"close": paths[:, 0], "volume": rng.uniform(8, 12, n)}, index=idx)
    alts = pd.DataFrame(paths[:, 1:], index=idx, columns=["ETH", "SOL", "XRP", "DOGE"])
    liq = pd.Series(rng.uniform(1e5, 3e5, n), index=idx)
    return btc, alts, liq


def plant(btc: pd.DataFrame, alts: pd.DataFrame, liq: pd.Series, at: int, *, drop: float, volume: float,
          alts_fall: bool, liq_usd: float) -> None:  # fmt: skip
    """From minute ``at`` on, every minute falls by ``drop``; volume, alts and liquidations as told."""
    n = len(btc) - at
    factor = (1 + drop) ** np.arange(1, n + 1)
    btc.iloc[at:, 0] = btc.iloc[at - 1, 0] * factor
    btc.iloc[at:, 1] = volume
    if alts_fall:
        alts.iloc[at:] = alts.iloc[at - 1].to_numpy() * factor[:, None]
    liq.iloc[at:] = liq_usd


@pytest.mark.parametrize(
    ("drop", "volume", "alts_fall", "liq_usd", "level"),
    [
        (0.0, 10.0, False, 2e5, "none"),  # nothing happens
        (-0.006, 10.0, False, 2e5, "watch"),  # BTC falls alone, quietly
        (-0.006, 100.0, False, 2e5, "developing"),  # … on a volume surge
        (-0.006, 100.0, True, 2e5, "severe"),  # … with the alts
        (-0.006, 10.0, False, 5e6, "developing"),  # … with liquidations only
    ],
)
def test_level_combines_the_drop_with_its_confirmations(
    drop: float, volume: float, alts_fall: bool, liq_usd: float, level: str
) -> None:
    """Five minutes into a planted fall, the level is what the confirmations present make it."""
    btc, alts, liq = calm_minutes(300)
    plant(btc, alts, liq, 290, drop=drop, volume=volume, alts_fall=alts_fall, liq_usd=liq_usd)
    feats = minute_features(btc.iloc[:295], alts.iloc[:295], liq.iloc[:295], P)
    assert provisional_levels(feats, P).iloc[-1] == level


@pytest.mark.parametrize(("drop_from_high", "level"), [(None, "none"), (-0.02, "developing")])
def test_drawdown_from_the_high_reads_a_slow_fall(drop_from_high: float | None, level: str) -> None:
    """A fall of 0.08 % a minute for 30 minutes on volume stays under every fixed-lag return threshold;
    with ``drop_from_high`` set, its 2.4 % below the hour's high is a drop."""
    btc, alts, liq = calm_minutes(300)
    plant(btc, alts, liq, 270, drop=-0.0008, volume=100.0, alts_fall=False, liq_usd=2e5)
    p = P.model_copy(update={"drop_from_high": drop_from_high})
    feats = minute_features(btc, alts, liq, p)
    assert feats["btc_drawdown"].iloc[-1] == pytest.approx(-0.024, abs=0.003)
    assert feats["btc_ret_60m"].iloc[-1] > P.drop_60m
    assert provisional_levels(feats, p).iloc[-1] == level


def test_unrecorded_liquidations_never_confirm() -> None:
    """A gap in the liquidation record (NaN minutes) leaves the surge unknown, not zero, and confirms nothing."""
    btc, alts, liq = calm_minutes(300)
    plant(btc, alts, liq, 290, drop=-0.006, volume=10.0, alts_fall=False, liq_usd=5e6)
    liq.iloc[288] = np.nan
    feats = minute_features(btc.iloc[:295], alts.iloc[:295], liq.iloc[:295], P)
    assert np.isnan(feats["liq_surge"].iloc[-1])
    assert provisional_levels(feats, P).iloc[-1] == "watch"


def test_first_firing_and_lead_time_per_hour() -> None:
    """The first firing minute of each hour, and how many minutes before the hour close it went out."""
    btc, alts, liq = calm_minutes(300)
    plant(btc, alts, liq, 280, drop=-0.006, volume=60.0, alts_fall=True, liq_usd=5e6)
    levels = provisional_levels(minute_features(btc, alts, liq, P), P)
    first = first_firing(levels, P)
    as_of = START + pd.Timedelta(hours=5)
    assert list(first.index) == [as_of]
    assert first.iloc[0] == START + pd.Timedelta(minutes=283)  # the 4th minute down: 5m return ≤ −2 %
    assert lead_minutes(first.iloc[0], as_of) == 300 - 284


@settings(max_examples=25, deadline=None)
@given(cut=st.integers(min_value=60, max_value=280), seed=st.integers(0, 50))
def test_detector_reads_no_future_minute(cut: int, seed: int) -> None:
    """Features and levels up to minute t are the same whether or not later minutes exist."""
    btc, alts, liq = calm_minutes(300, seed)
    plant(btc, alts, liq, 200, drop=-0.006, volume=60.0, alts_fall=True, liq_usd=5e6)
    full = minute_features(btc, alts, liq, P)
    part = minute_features(btc.iloc[:cut], alts.iloc[:cut], liq.iloc[:cut], P)
    pd.testing.assert_frame_equal(full.iloc[:cut], part, rtol=1e-12, atol=1e-12)
    assert (provisional_levels(full, P).iloc[:cut] == provisional_levels(part, P)).all()


def test_events_aggregate_by_side_with_count_and_largest() -> None:
    """Longs liquidated are sells; per minute and symbol: count, notional by side, largest single order."""
    ts = START + pd.to_timedelta([5, 20, 50, 70], unit="s")
    events = pd.DataFrame({"ts": ts, "symbol": ["BTC", "BTC", "ETH", "BTC"], "side": ["sell", "buy", "sell", "sell"],
                           "notional_usd": [100.0, 40.0, 7.0, 3.0]})  # fmt: skip
    out = aggregate_events(events)
    row = out.loc[(START, "BTC")]
    assert (row["events"], row["long_usd"], row["short_usd"], row["max_usd"]) == (2, 100.0, 40.0, 100.0)
    assert out.loc[(START + pd.Timedelta(minutes=1), "BTC"), "long_usd"] == 3.0


def test_hour_with_missing_minutes_is_partial() -> None:
    """An hour with 45 recorded minutes has coverage 0.75; its sums only hold what was recorded."""
    idx = pd.date_range(START, periods=45, freq="1min", name="ts")
    minutes = pd.DataFrame({"events": 1.0, "notional_usd": 10.0, "long_usd": 6.0, "short_usd": 4.0,
                            "max_usd": 10.0, "coverage": 1.0}, index=idx)  # fmt: skip
    hour = hourly_totals(minutes).iloc[0]
    assert hour["coverage"] == 0.75
    assert hour["notional_usd"] == 450.0


def hourly_liq(n: int, seed: int, start_hour: int = 0) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Hours × (long USD, short USD, coverage) of the market, unrecorded (NaN, coverage 0) before
    ``start_hour``."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(START, periods=n, freq="1h", name="ts")
    hours = np.column_stack(
        [rng.lognormal(12, 1, n), rng.lognormal(11.5, 1, n), rng.choice([1.0, 1.0, 1.0, 0.5], n)]
    )
    hours[:start_hour, :2] = np.nan
    hours[:start_hour, 2] = 0.0
    return hours, idx


def test_features_are_nan_before_recording_began() -> None:
    """Hours before riskd recorded anything have NaN figures and zero coverage, never zeros."""
    hours, idx = hourly_liq(400, 1, start_hour=100)
    out = liquidation_features(hours, idx, LiquidationParams(min_coverage=0.75))
    assert out.iloc[:100][["liq_notional_usd", "liq_imbalance", "liq_notional_z"]].isna().all().all()
    assert (out["liq_coverage"].iloc[:100] == 0).all()
    assert out.loc[hours[:, 2] == 0.5, "liq_notional_usd"].isna().all()  # below min_coverage: no figure
    assert out["liq_notional_z"].iloc[100 + 72 + 30 :].notna().mean() > 0.6


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 100), cut=st.integers(min_value=50, max_value=399))
def test_liquidation_features_live_equals_batch(seed: int, cut: int) -> None:
    """Hour t computed from the hours up to t (live) equals the batch run over all hours, to 1e-12."""
    hours, idx = hourly_liq(400, seed, start_hour=20)
    p = LiquidationParams(min_coverage=0.5)
    batch = liquidation_features(hours, idx, p)
    live = liquidation_features(hours[:cut], idx[:cut], p)
    pd.testing.assert_series_equal(batch.iloc[cut - 1], live.iloc[-1], rtol=1e-12, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 100), t=st.integers(min_value=30, max_value=350))
def test_liquidation_features_read_no_future_hour(seed: int, t: int) -> None:
    """Changing hours after t changes no feature at or before t."""
    hours, idx = hourly_liq(400, seed)
    p = LiquidationParams(min_coverage=0.5)
    base = liquidation_features(hours, idx, p)
    moved_hours = hours.copy()
    moved_hours[t + 1 :, 0] *= 50
    moved = liquidation_features(moved_hours, idx, p)
    pd.testing.assert_frame_equal(base.iloc[: t + 1], moved.iloc[: t + 1])


def test_replay_scores_a_planted_crash_hour_and_counts_false_alarms() -> None:
    """On 5-minute bars with one planted crash hour, the replay times riskd's warning from the onset
    and counts no false alarm."""
    btc, alts, _ = calm_minutes(12 * 24 * 4)
    idx = pd.date_range(START, periods=len(btc), freq="5min", name="ts")
    btc.index = alts.index = idx
    at = 12 * 24 * 3 + 12 * 10 + 4  # 10:20 on the fourth day
    plant(btc, alts, pd.Series(0.0, index=idx), at, drop=-0.01, volume=100.0, alts_fall=True, liq_usd=0.0)
    btc.iloc[at + 8 :, 1] = 10.0
    btc.iloc[at + 8 :, 0] = btc.iloc[at + 7, 0]
    alts.iloc[at + 8 :] = alts.iloc[at + 7].to_numpy()
    rep = replay(btc, alts, IntrahourParams(), 5)
    day = START + pd.Timedelta(days=3)
    assert list(rep.cascades["first_as_of"]) == [day + pd.Timedelta(hours=11)]
    assert rep.cascades["onset_at"].iloc[0] == day + pd.Timedelta(
        hours=10, minutes=20
    )  # the 10:15 bar's close
    assert rep.cascades["trough_at"].iloc[0] == day + pd.Timedelta(hours=11)
    riskd = rep.scores["riskd"]
    assert riskd.events["latency_min"].iloc[0] == 20  # the 10:35 bar closes 4 % down on 15 minutes
    assert len(riskd.false_hours) == 0
