"""Two paths, one answer: the live step, hour by hour, equals the batch path over the same history."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from riskd.core import (
    FragilityParams,
    FragilityState,
    Panel,
    compute_fragility,
    compute_fragility_with_state,
    step,
)
from riskd.core.crashprob import CrashModel

N_HOURS = 2000
SYMBOLS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "ADA", "AVAX", "LINK", "DOT", "LTC", "UNI")
PARAMS = FragilityParams(  # 12 symbols: the top-N ranking is exercised; CFI v2 ranked from week 1
    universe={"funding_top_n": 8}, cfi_v2={"rank_min_history": 168}
)


def rich_market(seed: int = 11) -> Panel:
    """Twelve symbols with what real data throws at the core: late listings, holes, a venue with gaps,
    open interest from hour 500 on half the symbols, spot stand-ins, funding regimes and crashes."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2023-01-01", periods=N_HOURS, freq="h", tz="UTC", name="ts")
    n = len(SYMBOLS)
    market = rng.standard_t(4, N_HOURS) * 0.004
    crashes = [400, 401, 900, 1310, 1700]
    market[crashes] = [-0.03, -0.02, -0.045, -0.035, -0.05]
    ret = market[:, None] * rng.uniform(0.8, 1.5, n) + rng.standard_t(4, (N_HOURS, n)) * 0.005
    close = 50.0 * np.exp(np.cumsum(ret, axis=0))
    volume = rng.lognormal(3.0, 0.3, (N_HOURS, n)) * (1.0 + 40.0 * np.abs(ret))
    volume[crashes] *= 4.0
    qv = volume * close
    qv[rng.random((N_HOURS, n)) < 0.01] = np.nan  # some hours lack the reported quote volume
    swing = 1.25e-5 + 2e-5 * np.sin(np.arange(N_HOURS) / 90.0)
    binance = np.repeat(swing[::8, None] + rng.normal(0.0, 5e-6, (N_HOURS // 8, n)), 8, axis=0)
    bybit = binance + rng.normal(0.0, 3e-6, (N_HOURS, n))
    bybit[:, 7:] = np.nan
    bybit[1200:1260] = np.nan  # the venue goes dark for 60 h
    oi = np.full((N_HOURS, n), np.nan)
    oi[500:, :6] = 1e6 * np.exp(np.cumsum(rng.normal(0.0, 0.01, (N_HOURS - 500, 6)), axis=0))
    for arr in (close, volume, qv, binance, bybit):
        arr[:300, 10] = np.nan  # UNI listed late
        arr[1000:1003, 4] = np.nan  # DOGE missing three hours
    close[1500, :] = np.nan  # an hour with no prices at all
    stand_in = np.zeros((N_HOURS, n), dtype=bool)
    stand_in[:200, 9] = True  # DOT priced from spot before its perp listed
    return Panel(idx, SYMBOLS, close, volume, qv, {"binance": binance, "bybit": bybit}, oi, stand_in)


def assert_same(batch: pd.DataFrame, live: pd.DataFrame) -> None:
    """Every column equal: floats to 1e-12 (NaN where NaN), the rest exactly."""
    assert list(batch.columns) == list(live.columns)
    assert batch.index.equals(live.index)
    assert batch.index.dtype == live.index.dtype
    for col in batch.columns:
        a, b = batch[col].to_numpy(), live[col].to_numpy()
        if a.dtype.kind == "f":
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=col)
        else:
            assert (batch[col].fillna("-").astype(str) == live[col].fillna("-").astype(str)).all(), col


@pytest.fixture(scope="module")
def market() -> Panel:
    return rich_market()


@pytest.fixture(scope="module")
def batch(market: Panel) -> pd.DataFrame:
    return compute_fragility(market, PARAMS)


def test_the_market_exercises_the_interesting_paths(batch: pd.DataFrame) -> None:
    """The planted market reaches cascades, the multi-asset detector and several regimes."""
    assert (batch["cascade_level"] > 0).sum() >= 3
    assert batch["multi_asset"].any()
    assert batch["regime"].nunique() >= 4
    assert batch["cfi_pct"].notna().sum() > 1500


def test_live_hour_by_hour_equals_batch_over_2000_hours(market: Panel, batch: pd.DataFrame) -> None:
    """2,000 one-hour steps (the state saved to JSON and restored every 500 hours) match the batch."""
    state: FragilityState | None = None
    rows = []
    for i in range(N_HOURS):
        if state is not None and i % 500 == 0:
            state = FragilityState.from_dict(json.loads(json.dumps(state.to_dict())), PARAMS)
        row, state = step(state, market.rows(i, i + 1), PARAMS)
        rows.append(row)
    live = pd.concat(rows)
    assert_same(batch, live)
    for col in ("cfi", "agg_funding_z", "risk_multiplier"):  # not just close: identical
        np.testing.assert_array_equal(live[col].to_numpy(), batch[col].to_numpy())


def test_a_batch_warm_start_continues_like_the_batch(market: Panel, batch: pd.DataFrame) -> None:
    """The state left by a batch over the first 1,200 hours carries on exactly as the full batch."""
    _, state = compute_fragility_with_state(market.rows(0, 1200), PARAMS)
    live, _ = step(state, market.rows(1200, N_HOURS), PARAMS)
    assert_same(batch.iloc[1200:], live)


def test_skipped_hours_are_fed_as_no_data(market: Panel) -> None:
    """Hours missing between two steps come back as rows, equal to a batch where they are empty."""
    _, state = compute_fragility_with_state(market.rows(0, 600), PARAMS)
    live, _ = step(state, market.rows(603, 605), PARAMS)
    assert list(live.index) == list(market.index[600:605])
    holed = market.rows(0, 605)
    empty = Panel(
        holed.index,
        holed.symbols,
        _blank(holed.close),
        _blank(holed.volume),
        _blank(holed.quote_volume),
        {v: _blank(a) for v, a in holed.funding.items()},
        _blank(holed.open_interest),
        holed.stand_in,
    )
    assert_same(compute_fragility(empty, PARAMS).iloc[600:], live)


def _blank(arr: np.ndarray) -> np.ndarray:
    out = arr.copy()
    out[600:603] = np.nan
    return out


def test_a_new_symbol_joins_the_state(market: Panel) -> None:
    """A symbol first seen live is appended to the state; its price counts from then on."""
    first = Panel(
        market.index[:1],
        SYMBOLS[:3],
        market.close[:1, :3],
        market.volume[:1, :3],
        market.quote_volume[:1, :3],
    )
    _, state = step(None, first, PARAMS)
    row, state = step(state, market.rows(1, 2), PARAMS)
    assert state.symbols == SYMBOLS
    assert row["coverage"].iloc[0] == pytest.approx(11 / 12)  # UNI is not listed yet


def test_step_refuses_old_hours_and_foreign_params(market: Panel) -> None:
    """Re-feeding a processed hour, or a state built under other params, raises ValueError."""
    _, state = step(None, market.rows(0, 2), PARAMS)
    with pytest.raises(ValueError, match="already processed"):
        step(state, market.rows(1, 2), PARAMS)
    with pytest.raises(ValueError, match="different fragility params"):
        step(state, market.rows(2, 3), FragilityParams())
    with pytest.raises(ValueError, match="different fragility params"):
        FragilityState.from_dict(state.to_dict(), FragilityParams())


def test_state_round_trips_through_json_exactly(market: Panel) -> None:
    """to_dict → JSON → from_dict gives back every array bit for bit."""
    _, state = compute_fragility_with_state(market.rows(0, 300), PARAMS)
    back = FragilityState.from_dict(json.loads(json.dumps(state.to_dict())), PARAMS)
    assert back.symbols == state.symbols
    assert back.last_ts == market.index[299]
    for name, arr in state.context.items():
        np.testing.assert_array_equal(back.context[name], arr)
    for name, arr in state.stage1.items():
        np.testing.assert_array_equal(back.stage1[name], arr)
    assert set(back.ranked) == set(state.ranked)
    assert len(state.ranked["cfi_v2"]) > 0
    for name, arr in state.ranked.items():
        np.testing.assert_array_equal(back.ranked[name], arr)
    assert (back.regime, back.btc_episode, back.multi_episode) == (
        state.regime,
        state.btc_episode,
        state.multi_episode,
    )


MODEL = CrashModel(
    features=("rank_btc_rv_24h", "rank_xs_ret_std_24h", "agg_funding"),
    intercept=-2.5,
    coefficients=(0.6, 0.4, 0.1),
    means=(0.45, 0.45, 1.25e-5),
    scales=(0.28, 0.28, 2e-5),
    horizon_hours=24,
    threshold=-0.05,
    train_start="2020-01-01T00:00:00+00:00",
    train_end="2022-12-31T00:00:00+00:00",
    fitted_at="2023-01-01T00:00:00+00:00",
    n_obs=26000,
    n_crashes=1800,
)
"""A fixed model over two CFI v2 ranks and a level: what ``riskd calibrate`` writes."""


def with_daily_bars(market: Panel) -> Panel:
    """The market with 1 d quote volumes (each row: the previous day's hourly sum) and DOGE's hourly
    quote volume blanked for a whole day, so that day ranks DOGE by its 1 d bar."""
    qv = market.quote_volume.copy()
    per_row = np.full(qv.shape, np.nan)  # the index starts at midnight: day d is rows 24d … 24d+23
    for day in range(1, -(-len(market.index) // 24)):
        per_row[day * 24 : (day + 1) * 24] = np.nansum(qv[(day - 1) * 24 : day * 24], axis=0)
    qv[960:984, 4] = np.nan
    return Panel(
        market.index,
        market.symbols,
        market.close,
        market.volume,
        qv,
        market.funding,
        market.open_interest,
        market.stand_in,
        per_row,
    )


@pytest.mark.parametrize(("signal", "version"), [("crash_prob", "v1"), ("btc_rv", "v2"), ("cfi_v1", "v2")])
def test_live_equals_batch_with_a_crash_model_daily_bars_and_each_regime_signal(
    market: Panel, signal: str, version: str
) -> None:
    """800 one-hour steps with a crash model, 1 d bars and the regime on another signal match the batch,
    crash_prob_24h and the universe aggregates included."""
    n = 800
    panel = with_daily_bars(market).rows(0, n)
    p = FragilityParams(
        universe={"funding_top_n": 8},
        cfi_v2={"rank_min_history": 168},
        cfi={"version": version},
        regime={"signal": signal},
    )
    batch = compute_fragility(panel, p, MODEL)
    state: FragilityState | None = None
    rows = []
    for i in range(n):
        if state is not None and i % 400 == 0:
            state = FragilityState.from_dict(json.loads(json.dumps(state.to_dict())), p)
        row, state = step(state, panel.rows(i, i + 1), p, MODEL)
        rows.append(row)
    assert_same(batch, pd.concat(rows))
    assert batch["crash_prob_24h"].notna().sum() > 500
    assert batch["regime"].nunique() >= 3
    np.testing.assert_array_equal(batch["cfi"].to_numpy(), batch[f"cfi_{version}"].to_numpy())
