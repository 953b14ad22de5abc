"""Raw venue rows become contract frames: closed candles only, funding on one per-hour basis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskd.sources.normalize import funding_frame, infer_intervals, ohlcv_frame

H = 3_600_000
T0 = int(pd.Timestamp("2024-01-01", tz="UTC").value // 1_000_000)


def _row(i: int, close: float = 100.0) -> list[float]:
    return [T0 + i * H, close, close + 1, close - 1, close, 10.0, 1000.0]


def test_open_candle_is_dropped() -> None:
    """The candle still open at `now` never reaches the frame."""
    now = pd.Timestamp(T0 + 3 * H + 30 * 60_000, unit="ms", tz="UTC")  # 03:30
    frame = ohlcv_frame([_row(i) for i in range(4)], now=now)
    assert list(frame.index.hour) == [0, 1, 2]


def test_duplicate_hours_keep_the_last_served_row() -> None:
    """A venue serving one hour twice yields one row, the later (revised) one."""
    frame = ohlcv_frame([_row(0, 100), _row(1, 101), _row(1, 102)], now=None)
    assert len(frame) == 2
    assert frame["close"].iloc[-1] == 102


def test_rows_without_quote_volume_get_nan() -> None:
    """Six-field candles (Hyperliquid) carry NaN quote volume rather than a guess."""
    frame = ohlcv_frame([_row(0)[:6]], now=None)
    assert np.isnan(frame["quote_volume"].iloc[0])


@pytest.mark.parametrize(
    ("spacing_hours", "expected"),
    [
        ([8, 8, 8], [8, 8, 8, 8]),
        ([8, 8, 4, 4], [8, 8, 8, 4, 4]),  # the interval switches from 8 h to 4 h
        ([1, 1], [1, 1, 1]),
        ([8, 16, 8], [8, 8, 8, 8]),  # a missing print (16 h) keeps the previous interval
    ],
)
def test_interval_inferred_from_print_spacing(spacing_hours: list[int], expected: list[float]) -> None:
    """Each print's interval is the spacing to the previous print, snapped to 1/2/4/8 h."""
    offsets = np.concatenate([[0], np.cumsum(spacing_hours)])
    ts = pd.DatetimeIndex(pd.to_datetime(T0 + offsets * H, unit="ms", utc=True))
    assert infer_intervals(ts, fallback_hours=8).tolist() == expected


def test_rate_per_hour_puts_venues_on_one_basis() -> None:
    """0.01% per 8 h and 0.00125% per 1 h are the same rate per hour."""
    eight = funding_frame([T0], [1e-4], reported_hours=8.0)
    one = funding_frame([T0], [1.25e-5], reported_hours=1.0)
    assert eight["rate_per_hour"].iloc[0] == pytest.approx(one["rate_per_hour"].iloc[0], rel=1e-12)
    assert not eight["interval_inferred"].iloc[0]


def test_future_prints_are_not_returned() -> None:
    """A print stamped after `now` is not known yet and is dropped."""
    now = pd.Timestamp(T0 + 8 * H, unit="ms", tz="UTC")
    frame = funding_frame([T0, T0 + 8 * H, T0 + 16 * H], [1e-4] * 3, reported_hours=None, now=now)
    assert len(frame) == 2
    assert frame["interval_inferred"].all()
