"""riskd's own liquidation record through the shared hourly core: live = batch, no look-ahead, and off
by default (tests of the figures alone are in test_core_minutes.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskd.contract.snapshot import snapshots_of
from riskd.core import FragilityParams, Panel, build_panel, compute_fragility, step
from riskd.core.liquidations import MINUTE_COLUMNS, hourly_market
from riskd.market import store_panel
from riskd.store import HistoryStore
from tests.test_core_paths import assert_same, rich_market

ON = FragilityParams(
    universe={"funding_top_n": 8},
    cfi_v2={"rank_min_history": 168},
    liquidations={"enabled": True, "window_hours": 72, "min_periods": 24, "min_coverage": 0.9},
)
OFF = ON.model_copy(update={"liquidations": ON.liquidations.model_copy(update={"enabled": False})})
HOURS = 600
RECORDING_STARTS = 200  # riskd started recording at hour 200: nothing before


def recorded_minutes(
    index: pd.DatetimeIndex, seed: int = 5, starts: int = RECORDING_STARTS
) -> dict[str, pd.DataFrame]:
    """Two venues' all-market minute rows from ``RECORDING_STARTS`` on, larger in the market's crash
    hours; Bybit's stream down for hours 300–305 (missing rows: a gap, never zeros)."""
    rng = np.random.default_rng(seed)
    minutes = pd.date_range(index[starts], index[-1] + pd.Timedelta("59min"), freq="1min", name="ts")
    out = {}
    for venue, scale in (("binance", 1.0), ("bybit", 0.4)):
        longs = rng.lognormal(9.0, 1.2, len(minutes)) * scale
        shorts = rng.lognormal(8.6, 1.2, len(minutes)) * scale
        crash = minutes.floor("h").isin(index[[i for i in (400, 401) if i < len(index)]])
        longs[crash] *= 30.0
        frame = pd.DataFrame(
            {
                "events": 3.0,
                "notional_usd": longs + shorts,
                "long_usd": longs,
                "short_usd": shorts,
                "max_usd": np.maximum(longs, shorts),
                "coverage": 1.0,
            },
            index=minutes,
        )[list(MINUTE_COLUMNS)]
        if venue == "bybit":
            hour = frame.index.floor("h")
            frame = frame[~hour.isin(index[300:306])]  # (none of it in a shorter index)
        out[venue] = frame
    return out


def with_liquidations(panel: Panel, minutes: dict[str, pd.DataFrame]) -> Panel:
    return replace(panel, liquidations=hourly_market(minutes, panel.index))


@pytest.fixture(scope="module")
def market() -> Panel:
    base = rich_market().rows(0, HOURS)
    return with_liquidations(base, recorded_minutes(base.index))


@pytest.fixture(scope="module")
def batch(market: Panel) -> pd.DataFrame:
    return compute_fragility(market, ON)


def test_hour_by_hour_equals_the_batch_run(market: Panel, batch: pd.DataFrame) -> None:
    """The live step over the same record, one hour at a time, gives every column of the batch run."""
    state, rows = None, []
    for i in range(HOURS):
        out, state = step(state, market.rows(i, i + 1), ON)
        rows.append(out)
    assert_same(batch, pd.concat(rows))


def test_figures_are_nan_before_recording_and_in_the_gap_with_coverage_reported(batch: pd.DataFrame) -> None:
    """No figure (NaN, never 0) before riskd recorded, nor in Bybit's gap (coverage 0.5 < 0.9); the
    coverage itself is always there; the crash hours stand out against their own past."""
    before = batch.iloc[:RECORDING_STARTS]
    assert before[["liq_notional_usd", "liq_imbalance", "liq_notional_z"]].isna().all().all()
    assert (before["liq_coverage"] == 0).all()
    gap = batch.iloc[300:306]
    assert (gap["liq_coverage"] == 0.5).all()
    assert gap["liq_notional_usd"].isna().all()
    assert (batch["liq_coverage"].iloc[RECORDING_STARTS:300] == 1.0).all()
    crash = batch.iloc[400]
    assert crash["liq_notional_z"] > 3.0
    assert crash["liq_imbalance"] > 0.8  # longs flushed
    assert batch["rank_liq_notional_usd"].iloc[400] > 0.99


def test_the_notional_enters_cfi_v2_by_its_weight(batch: pd.DataFrame) -> None:
    """cfi_v2 is the weighted mean of the v2 ranks and the liquidation rank (weight cfi_weight)."""
    from riskd.core.cfi import V2_COMPONENTS

    weights = {**ON.cfi_v2.weights.model_dump(), "liq_notional_usd": ON.liquidations.cfi_weight}
    ranks = batch[[f"rank_{n}" for n in V2_COMPONENTS] + ["rank_liq_notional_usd"]]
    ranks.columns = [*V2_COMPONENTS, "liq_notional_usd"]
    w = pd.Series(weights)[ranks.columns]
    present = ranks.notna()
    expect = (ranks.fillna(0.0) * w).sum(axis=1) / (present * w).sum(axis=1)
    rows = batch["cfi_v2_coverage"] >= ON.cfi_v2.min_weight_coverage
    np.testing.assert_allclose(batch.loc[rows, "cfi_v2"], expect[rows], rtol=1e-12)
    assert batch["rank_liq_notional_usd"].iloc[:RECORDING_STARTS].isna().all()


def test_disabled_publishes_exactly_what_it_did_before(market: Panel) -> None:
    """Off (the default): the record is ignored; every column equals a run without any record, and a
    saved state's fingerprint is unchanged."""
    with_record = compute_fragility(market, OFF)
    without = compute_fragility(replace(market, liquidations=None), OFF)
    assert_same(without, with_record)
    assert not any(c.startswith(("liq_", "rank_liq")) for c in with_record.columns)
    assert (
        OFF.fingerprint()
        == FragilityParams(universe={"funding_top_n": 8}, cfi_v2={"rank_min_history": 168}).fingerprint()
    )
    at = with_record.index[-1].to_pydatetime()
    assert not any(
        k.startswith("liq_") for k in snapshots_of(with_record.iloc[-2:], computed_at=at)[-1].features
    )
    on = snapshots_of(compute_fragility(market, ON).iloc[-2:], computed_at=at)[-1]
    assert on.features["liq_coverage"] == 1.0  # on: the figures are published with the hour
    assert on.components["rank_liq_notional_usd"] is not None


@settings(max_examples=12, deadline=None)
@given(t=st.integers(min_value=RECORDING_STARTS, max_value=HOURS - 2), factor=st.floats(0.0, 1000.0))
def test_future_liquidations_do_not_leak(market: Panel, batch: pd.DataFrame, t: int, factor: float) -> None:
    """Plant any liquidations after hour t: no output at or before t changes."""
    planted = market.liquidations.copy()
    planted[t + 1 :, :2] = planted[t + 1 :, :2] * factor + 1e9
    moved = compute_fragility(replace(market, liquidations=planted), ON)
    assert_same(batch.iloc[: t + 1], moved.iloc[: t + 1])


def test_the_store_record_reaches_the_batch_panel_as_the_live_cycle_reads_it(tmp_path) -> None:
    """Minutes in the store's ``liquidations`` dataset (symbol ALL) → store_panel's hourly record, the
    same rows hourly_market gives for the minutes of each hour read alone (the daemon's live read)."""
    from riskd.testing.synthetic import synthetic_market

    m = synthetic_market(["BTC", "ETH", "SOL"], "2024-03-01", hours=72, seed=1)
    store = HistoryStore(tmp_path)
    candles = {s: m.ohlcv["binance"][s] for s in ("BTC", "ETH", "SOL")}
    for sym, frame in candles.items():
        store.append("ohlcv", "binance", sym, frame)
    grid = pd.date_range("2024-03-01", periods=72, freq="h", tz="UTC", name="ts").as_unit("ns")
    minutes = recorded_minutes(grid, starts=24)  # recorded from day 2
    for venue, frame in minutes.items():
        store.append("liquidations", venue, "ALL", frame)
    end = pd.Timestamp("2024-03-03 23:00", tz="UTC")
    panel = store_panel(store, ON, ["BTC", "ETH", "SOL"], ["binance"], end)
    assert panel is not None
    assert panel.liquidations is not None
    for hour in (pd.Timestamp("2024-03-01 05:00", tz="UTC"), pd.Timestamp("2024-03-02 07:00", tz="UTC")):
        one = {v: f[(f.index >= hour) & (f.index < hour + pd.Timedelta("1h"))] for v, f in minutes.items()}
        row = build_panel(candles, liquidations=one, start=hour, end=hour).liquidations
        i = panel.index.get_loc(hour)
        np.testing.assert_array_equal(panel.liquidations[i], row[0])
    assert np.isnan(panel.liquidations[0, 0])
    assert panel.liquidations[0, 2] == 0.0
    assert panel.liquidations[panel.index.get_loc(pd.Timestamp("2024-03-02 07:00", tz="UTC")), 2] == 1.0
