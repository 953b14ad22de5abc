"""Raw venue rows -> the frames of docs/data.md. Pure functions, no I/O.

Kept apart from the adapters so the importer, the fake exchange's tests and the sources all agree
on one definition of a candle frame and of a funding frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

HOUR = pd.Timedelta(hours=1)
OHLCV_COLUMNS = ["open", "high", "low", "close", "volume", "quote_volume"]
FUNDING_COLUMNS = ["rate", "interval_hours", "interval_inferred", "rate_per_hour"]
OI_COLUMNS = ["open_interest", "open_interest_value"]
STANDARD_INTERVALS = np.array([1.0, 2.0, 4.0, 8.0])
"""Funding intervals venues use, in hours; a spacing outside these means prints are missing."""


def utc_index(ms: Sequence[int] | np.ndarray) -> pd.DatetimeIndex:
    """Millisecond epoch timestamps as a UTC index named ``ts``."""
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(ms, dtype="int64"), unit="ms", utc=True), name="ts")


def empty(columns: list[str]) -> pd.DataFrame:
    """An empty frame of the contract's shape (so callers never special-case 'no data')."""
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    frame.index = pd.DatetimeIndex([], tz="UTC", name="ts")
    if "interval_inferred" in columns:
        frame["interval_inferred"] = frame["interval_inferred"].astype(bool)
    return frame


def to_ms(ts: pd.Timestamp) -> int:
    """A UTC timestamp as epoch milliseconds."""
    return int(pd.Timestamp(ts).value // 1_000_000)


def ohlcv_frame(rows: Sequence[Sequence[float]], *, now: pd.Timestamp | None) -> pd.DataFrame:
    """Rows of [open_ms, open, high, low, close, volume, quote_volume] -> a clean candle frame.

    Keeps closed candles only (open + 1 h <= now), drops rows off the hour grid, resolves duplicate
    hours (the last one served wins: venues revise a candle until it closes).
    """
    if len(rows) == 0:
        return empty(OHLCV_COLUMNS)
    arr = np.asarray(rows, dtype="float64")
    if arr.shape[1] == 6:
        arr = np.column_stack([arr, np.full(len(arr), np.nan)])
    frame = pd.DataFrame(arr[:, 1:7], columns=OHLCV_COLUMNS, index=utc_index(arr[:, 0].astype("int64")))
    frame = frame[frame.index == frame.index.floor("h")]
    if now is not None:
        frame = frame[frame.index + HOUR <= now]
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    return frame


def infer_intervals(ts: pd.DatetimeIndex, fallback_hours: float) -> np.ndarray:
    """Funding interval of each print, in hours, from the spacing to the previous print.

    A rate paid at print P covers (P - interval, P]. The spacing is snapped to the standard
    intervals; a spacing that is no standard interval (prints missing) keeps the previous
    interval, and the first print takes the next spacing or ``fallback_hours``.
    """
    n = len(ts)
    if n == 0:
        return np.empty(0)
    hours = np.asarray((ts[1:] - ts[:-1]) / pd.Timedelta(hours=1), dtype=float)
    snapped = np.full(n - 1, np.nan)
    for standard in STANDARD_INTERVALS:
        snapped[np.abs(hours - standard) < 0.01] = standard
    out = np.empty(n)
    out[1:] = snapped
    out[0] = np.nan
    series = pd.Series(out).ffill().bfill()
    return series.fillna(fallback_hours).to_numpy()


def funding_frame(
    ms: Sequence[int] | np.ndarray,
    rates: Sequence[float] | np.ndarray,
    *,
    reported_hours: float | None,
    fallback_hours: float = 8.0,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Funding prints -> frame with rate, interval_hours, interval_inferred, rate_per_hour.

    ``reported_hours`` is the interval the venue states for every print (Hyperliquid: 1 h); when it
    is None the interval is inferred from the spacing of the prints, ``fallback_hours`` (the
    venue's current interval for the symbol) covering a lone first print.
    """
    if len(ms) == 0:
        return empty(FUNDING_COLUMNS)
    frame = pd.DataFrame({"rate": np.asarray(rates, dtype="float64")}, index=utc_index(ms))
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    if now is not None:
        frame = frame[frame.index <= now]
    if reported_hours is not None:
        frame["interval_hours"] = float(reported_hours)
        frame["interval_inferred"] = False
    else:
        frame["interval_hours"] = infer_intervals(frame.index, fallback_hours)
        frame["interval_inferred"] = True
    frame["rate_per_hour"] = frame["rate"] / frame["interval_hours"]
    return frame


def oi_frame(ms: Sequence[int], amount: Sequence[float], value: Sequence[float]) -> pd.DataFrame:
    """Open-interest snapshots -> frame with open_interest (base) and open_interest_value (quote)."""
    if len(ms) == 0:
        return empty(OI_COLUMNS)
    frame = pd.DataFrame(
        {
            "open_interest": np.asarray(amount, dtype="float64"),
            "open_interest_value": np.asarray(value, dtype="float64"),
        },
        index=utc_index(ms),
    )
    return frame[~frame.index.duplicated(keep="last")].sort_index()
