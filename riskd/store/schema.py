"""The store's datasets: their columns and dtypes, bar steps, and the canonical form of a frame.

Every frame the store writes goes through :func:`validated` first, so a year file holds one dtype per
column, a millisecond UTC ``ts`` and one row per identity (time rounded to the minute).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa

from riskd.errors import DataError

_OHLCV: dict[str, str] = {c: "float64" for c in ("open", "high", "low", "close", "volume", "quote_volume")}
CANDLE_TIMEFRAMES: dict[str, pd.Timedelta] = {
    "1m": pd.Timedelta(minutes=1),
    "5m": pd.Timedelta(minutes=5),
    "1h": pd.Timedelta(hours=1),
    "4h": pd.Timedelta(hours=4),
    "1d": pd.Timedelta(days=1),
}
"""Candle timeframes the store keeps; each (kind, timeframe) is its own dataset, never mixed."""


def candle_dataset(kind: str, timeframe: str) -> str:
    """Dataset name of a candle kind at a timeframe: ``ohlcv`` is hourly, others carry a suffix
    (``ohlcv_4h``, ``spot_ohlcv_5m``), so the hourly names every reader knows stay unchanged."""
    return kind if timeframe == "1h" else f"{kind}_{timeframe}"


_LIQUIDATION_COLUMNS = (
    *("events", "notional_usd", "long_usd", "short_usd", "max_usd", "coverage"),
    *("account_value_usd", "cross_events"),
)
SCHEMAS: dict[str, dict[str, str]] = {
    **{candle_dataset(k, tf): _OHLCV for k in ("ohlcv", "spot_ohlcv") for tf in CANDLE_TIMEFRAMES},
    "mark_ohlcv": _OHLCV,
    "funding": {
        "rate": "float64",
        "interval_hours": "float64",
        "interval_inferred": "bool",
        "rate_per_hour": "float64",
    },
    "open_interest": {"open_interest": "float64", "open_interest_value": "float64"},
    "liquidations": {c: "float64" for c in _LIQUIDATION_COLUMNS},
}
"""Value columns and dtypes of every dataset (docs/data.md, Datasets)."""
DATASETS: tuple[str, ...] = tuple(SCHEMAS)
STEPS: dict[str, pd.Timedelta] = {
    **{
        candle_dataset(k, tf): step for k in ("ohlcv", "spot_ohlcv") for tf, step in CANDLE_TIMEFRAMES.items()
    },
    "mark_ohlcv": pd.Timedelta(hours=1),
}
"""Candle datasets and their bar length: rows are stamped on multiples of it (UTC, from the epoch)."""
HOURLY: frozenset[str] = frozenset(
    {*(d for d, s in STEPS.items() if s >= pd.Timedelta(hours=1)), "open_interest"}
)
"""Datasets stamped on whole hours; funding prints may carry a few ms after the hour."""
_NOT_NULL: dict[str, tuple[str, ...]] = {
    **{d: ("open", "high", "low", "close") for d in STEPS},
    "funding": ("rate", "interval_hours", "rate_per_hour"),
    "open_interest": (),
    "liquidations": ("events",),
}
_OPTIONAL: dict[str, frozenset[str]] = {
    "liquidations": frozenset(
        {"long_usd", "short_usd", "max_usd", "coverage", "account_value_usd", "cross_events"}
    )
}
"""Columns a writer may leave out (stored as NaN): riskd's own recording has sides and coverage, an
imported venue list (Hyperliquid) has account values instead. Missing is unknown, never zero."""
FUNDING_TOLERANCE = pd.Timedelta(minutes=1)
"""Slack on funding print times: Binance stamps prints a few ms after the hour."""

_TS = pa.timestamp("ms", tz="UTC")
_ARROW = {"float64": pa.float64(), "bool": pa.bool_()}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_COMPRESSION = {"compression": "zstd", "compression_level": 3, "use_dictionary": False}

Bound: TypeAlias = pd.Timestamp | datetime | str | None


def empty_frame(dataset: str) -> pd.DataFrame:
    """A frame with no rows and the dataset's columns, dtypes and UTC ``ts`` index."""
    cols = schema_of(dataset)
    index = pd.DatetimeIndex([], dtype="datetime64[ms, UTC]", name="ts")
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in cols.items()}, index=index)


def to_utc(value: Bound) -> pd.Timestamp | None:
    """A bound as a UTC Timestamp; naive values are read as UTC (every riskd time is UTC)."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def schema_of(dataset: str) -> dict[str, str]:
    try:
        return SCHEMAS[dataset]
    except KeyError:
        raise DataError(f"unknown dataset {dataset!r} (known: {', '.join(DATASETS)})") from None


def _is_utc(tz: object) -> bool:
    return tz is not None and str(tz) in {"UTC", "UTC+00:00", "Etc/UTC", "Z", "tzutc()"}


def row_keys(index: pd.DatetimeIndex) -> np.ndarray:
    """Identity of a row: its time rounded to the minute (a funding print a few ms late is the same
    print), as int64 milliseconds."""
    return index.as_unit("ms").round("min").asi8


def validated(frame: pd.DataFrame, dataset: str, where: str) -> pd.DataFrame:
    """The frame in the store's canonical form (float64/bool, ms UTC index, sorted, unique)."""
    cols = schema_of(dataset)
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{where}: expected a DataFrame, got {type(frame).__name__}")
    idx = frame.index
    if not isinstance(idx, pd.DatetimeIndex):
        raise DataError(f"{where}: index must be a DatetimeIndex named 'ts', got {type(idx).__name__}")
    if not _is_utc(idx.tz):
        raise DataError(f"{where}: index must be tz-aware UTC, got tz={idx.tz}")
    if idx.name not in (None, "ts"):
        raise DataError(f"{where}: index must be named 'ts', got {idx.name!r}")
    missing = [c for c in cols if c not in frame.columns and c not in _OPTIONAL.get(dataset, ())]
    extra = [str(c) for c in frame.columns if c not in cols]
    if missing or extra:
        raise DataError(f"{where}: columns missing {missing}, unexpected {extra}; expected {list(cols)}")
    if idx.hasnans:
        raise DataError(f"{where}: index holds NaT")
    ms = idx.as_unit("ns").asi8 if len(idx) else np.array([], dtype="int64")
    if (ms % 1_000_000).any():
        raise DataError(f"{where}: timestamps finer than a millisecond")
    if dataset in HOURLY and (ms % 3_600_000_000_000).any():
        bad = idx[(ms % 3_600_000_000_000) != 0][0]
        raise DataError(f"{where}: timestamps must be whole hours (candle open time), got {bad}")
    if dataset in STEPS and (off := ms % STEPS[dataset].value).any():
        bad = idx[off != 0][0]
        raise DataError(f"{where}: timestamps must be {dataset} bar open times, got {bad}")
    out = {}
    for col, dtype in cols.items():
        s = frame[col] if col in frame.columns else pd.Series(np.nan, index=frame.index)
        if dtype == "bool":
            if not pd.api.types.is_bool_dtype(s) or s.isna().any():
                raise DataError(f"{where}: column {col!r} must be bool without missing values, got {s.dtype}")
        elif not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            raise DataError(f"{where}: column {col!r} must be numeric, got {s.dtype}")
        out[col] = s.to_numpy(dtype=dtype, na_value=np.nan) if dtype != "bool" else s.to_numpy(dtype=bool)
    clean = pd.DataFrame(out, index=pd.DatetimeIndex(idx.as_unit("ms"), name="ts"))
    for col in _NOT_NULL[dataset]:
        if clean[col].isna().any():
            raise DataError(
                f"{where}: column {col!r} has missing values at {clean.index[clean[col].isna()][0]}"
            )
    if dataset == "funding":
        if (clean["interval_hours"] <= 0).any():
            raise DataError(f"{where}: interval_hours must be positive")
        if not np.allclose(
            clean["rate_per_hour"], clean["rate"] / clean["interval_hours"], rtol=1e-9, atol=0
        ):
            raise DataError(f"{where}: rate_per_hour must equal rate / interval_hours")
    keys = row_keys(clean.index)
    clean = clean[~pd.Series(keys).duplicated(keep="last").to_numpy()]
    return clean.iloc[np.argsort(row_keys(clean.index), kind="stable")]


def _same(a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    """Row-wise equality of two aligned frames, NaN equal to NaN."""
    eq = np.ones(len(a), dtype=bool)
    for col in a.columns:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        both_nan = pd.isna(x) & pd.isna(y) if x.dtype.kind == "f" else np.zeros(len(x), dtype=bool)
        eq &= (x == y) | both_nan
    return eq


def merge(old: pd.DataFrame, new: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``old`` with ``new`` laid over it by row identity; also the count of new or changed rows."""
    old_k, new_k = row_keys(old.index), row_keys(new.index)
    pos = pd.Index(old_k).get_indexer(new_k)
    hit = pos >= 0
    prev = old.iloc[pos[hit]]
    cur = new[hit]
    same = _same(prev, cur) & (prev.index.asi8 == cur.index.asi8)
    changed = int((~hit).sum() + (~same).sum())
    if not changed:
        return old, 0
    kept = old[~np.isin(old_k, new_k)]
    merged = pd.concat([kept, new]) if len(kept) else new
    return merged.iloc[np.argsort(row_keys(merged.index), kind="stable")], changed


def to_table(frame: pd.DataFrame, dataset: str) -> pa.Table:
    """Arrow table with a fixed schema and no pandas metadata, so equal frames give equal bytes."""
    arrays = [pa.array(frame.index.as_unit("ms").asi8, type=pa.int64()).cast(_TS)]
    names = ["ts"]
    for col, dtype in SCHEMAS[dataset].items():
        arrays.append(pa.array(frame[col].to_numpy(), type=_ARROW[dtype]))
        names.append(col)
    return pa.Table.from_arrays(arrays, names=names)
