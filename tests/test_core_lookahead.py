"""No look-ahead, as a property: changing anything after hour t changes no output at or before t."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from riskd.core import FragilityParams, Panel, build_panel, compute_fragility
from riskd.core.crashprob import CrashModel

H, N = 60, 5
SYMBOLS = ("BTC", "ETH", "SOL", "XRP", "DOGE")
SMALL = FragilityParams(
    panel={"funding_max_age_hours": 6, "open_interest_max_age_hours": 2},
    universe={"funding_top_n": 3, "quote_volume_window_hours": 4, "min_symbols": 2},
    zscore={"window_hours": 10, "min_periods": 4},
    market={
        "volume_baseline_hours": 5,
        "volume_baseline_min_periods": 2,
        "rv_short_hours": 4,
        "rv_long_hours": 8,
        "drawdown_hours": 5,
    },
    cfi={"percentile_min_history": 5},
    cfi_v2={"rank_min_history": 5},
    cascade={"cooldown_hours": 3},
    multi_asset={"volume_window_hours": 12, "volume_min_periods": 4, "min_assets": 2},
    regime={"cascade_hold_hours": 2, "recovery_hours": 3, "min_dwell_hours": 2},
)
"""Short windows, so that 60 hours exercise every window, lag, percentile, episode and regime rule."""

MODEL = CrashModel(
    features=("rank_btc_rv_24h", "rank_xs_ret_std_24h", "agg_funding"),
    intercept=-2.0,
    coefficients=(0.5, 0.5, 0.2),
    means=(0.5, 0.5, 1e-5),
    scales=(0.3, 0.3, 3e-5),
    horizon_hours=24,
    threshold=-0.05,
    train_start="2023-01-01T00:00:00+00:00",
    train_end="2023-12-01T00:00:00+00:00",
    fitted_at="2023-12-02T00:00:00+00:00",
    n_obs=8000,
    n_crashes=500,
)
"""A fixed crash model, so that crash_prob_24h is checked too."""


def wild_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Violent random hours: 3 % moves, volume spikes, funding jumps, holes."""
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, (H, N)), axis=0))
    volume = rng.lognormal(3.0, 1.0, (H, N))
    arrays = {
        "close": close,
        "volume": volume,
        "quote_volume": volume * close,
        "binance": rng.normal(1e-5, 3e-5, (H, N)),
        "bybit": rng.normal(1e-5, 3e-5, (H, N)),
        "open_interest": rng.lognormal(10.0, 0.1, (H, N)),
    }
    for arr in arrays.values():
        arr[rng.random((H, N)) < 0.05] = np.nan
    return arrays


def panel_of(arrays: dict[str, np.ndarray]) -> Panel:
    idx = pd.date_range("2024-01-01", periods=H, freq="h", tz="UTC", name="ts")
    funding = {"binance": arrays["binance"], "bybit": arrays["bybit"]}
    return Panel(
        idx,
        SYMBOLS,
        arrays["close"],
        arrays["volume"],
        arrays["quote_volume"],
        funding,
        arrays["open_interest"],
    )


def assert_rows_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Identical frames, NaN equal to NaN."""
    for col in a.columns:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        if x.dtype.kind == "f":
            np.testing.assert_array_equal(x, y, err_msg=col)
        else:
            assert (a[col].fillna("-").astype(str) == b[col].fillna("-").astype(str)).all(), col


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), t=st.integers(0, H - 2), noise=st.integers(0, 2**32 - 1))
def test_perturbing_the_future_changes_nothing_up_to_t(seed: int, t: int, noise: int) -> None:
    """Any input after hour t replaced (new values, new holes): every output row ≤ t is unchanged."""
    base = wild_arrays(np.random.default_rng(seed))
    other = wild_arrays(np.random.default_rng(noise))
    changed = {name: np.concatenate([arr[: t + 1], other[name][t + 1 :]]) for name, arr in base.items()}
    before = compute_fragility(panel_of(base), SMALL, MODEL)
    after = compute_fragility(panel_of(changed), SMALL, MODEL)
    assert before["crash_prob_24h"].notna().any()
    assert_rows_equal(before.iloc[: t + 1], after.iloc[: t + 1])


def prints_frame(times_ms: list[int], rates: list[float]) -> pd.DataFrame:
    idx = pd.DatetimeIndex(pd.to_datetime(times_ms, unit="ms", utc=True), name="ts")
    rate = np.asarray(rates)
    return pd.DataFrame(
        {"rate": rate, "interval_hours": 8.0, "interval_inferred": False, "rate_per_hour": rate / 8},
        index=idx,
    )


START_MS = pd.Timestamp("2024-01-01T00:00Z").value // 1_000_000
HOUR_MS = 3_600_000
print_times = st.lists(st.integers(START_MS - 5 * HOUR_MS, START_MS + H * HOUR_MS), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(times=print_times, late=print_times, t=st.integers(0, H - 2), seed=st.integers(0, 2**32 - 1))
def test_funding_prints_known_only_after_hour_t_do_not_reach_row_t(
    times: list[int], late: list[int], t: int, seed: int
) -> None:
    """Prints stamped at or after T+1h (row T's knowledge time) may change; rows ≤ T may not."""
    rng = np.random.default_rng(seed)
    candles = {}
    for sym in SYMBOLS:
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, H)))
        idx = pd.date_range("2024-01-01", periods=H, freq="h", tz="UTC", name="ts")
        candles[sym] = pd.DataFrame({"close": close, "volume": rng.lognormal(3.0, 1.0, H)}, index=idx)
    known_by = START_MS + (t + 1) * HOUR_MS
    early = [ms for ms in times if ms < known_by]
    base = {s: prints_frame(early, rng.normal(1e-4, 2e-4, len(early)).tolist()) for s in SYMBOLS}
    extra = [ms for ms in late if ms >= known_by]
    more = {
        s: prints_frame(early + extra, [*base[s]["rate"], *rng.normal(0, 1e-3, len(extra))]) for s in SYMBOLS
    }
    a = build_panel(candles, {"binance": base}, symbols=SYMBOLS, params=SMALL.panel)
    b = build_panel(candles, {"binance": more}, symbols=SYMBOLS, params=SMALL.panel)
    np.testing.assert_array_equal(a.funding["binance"][: t + 1], b.funding["binance"][: t + 1])
    assert_rows_equal(compute_fragility(a, SMALL).iloc[: t + 1], compute_fragility(b, SMALL).iloc[: t + 1])
