"""Opening a history file: its format (feather, parquet, JSON array, CSV with or without header, any of
them gzip-compressed or zipped), its times (epoch units, offsets) and its most common spacing."""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from riskd.importer.model import SkipFile

DATA_SUFFIXES = (".feather", ".parquet", ".csv", ".json", ".zip")
_KLINE_COLUMNS = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
]
CANDLE = ["open", "high", "low", "close", "volume"]
"""The candle columns every bar layout is read into."""


def data_name(path: Path) -> str | None:
    """The file name without ``.gz`` when it is a data format the importer reads, else None."""
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    return name if not path.name.startswith(".") and name.endswith(DATA_SUFFIXES) else None


# ---- opening -----------------------------------------------------------------------------------
def load(path: Path, name: str) -> pd.DataFrame:
    """The file as a frame with lower-case column names (a headerless kline CSV gets Binance's names)."""
    if name.endswith(".zip"):
        return _load_csv(path, None)
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    if name.endswith(".csv"):
        return _load_csv(path, raw)
    if name.endswith(".json"):
        return _load_json(raw)
    df = pd.read_feather(io.BytesIO(raw)) if name.endswith(".feather") else pd.read_parquet(io.BytesIO(raw))
    if isinstance(df.index, pd.DatetimeIndex):
        df = df.reset_index(names=str(df.index.name or "timestamp"))
    df.columns = [str(c).strip().lower() for c in df.columns]
    return df


def _load_json(raw: bytes) -> pd.DataFrame:
    """freqtrade's JSON, an array of ``[time_ms, open, high, low, close, volume]`` bars, read as CSV
    lines (pandas' C parser is ~10x faster than ``json.loads`` on these files)."""
    body = raw.strip()
    if not (body.startswith(b"[[") and body.endswith(b"]]")):
        if body in (b"[]", b""):
            return pd.DataFrame(columns=["date", *CANDLE])
        raise SkipFile("JSON is not an array of [time_ms, open, high, low, close, volume] bars")
    lines = re.sub(rb"\]\s*,\s*\[", b"\n", body[2:-2])
    df = pd.read_csv(io.BytesIO(lines), header=None)
    if df.shape[1] < 6:
        raise SkipFile("JSON is not an array of [time_ms, open, high, low, close, volume] bars")
    df = df.iloc[:, :6]
    df.columns = ["date", *CANDLE]
    return df


def _load_csv(path: Path, raw: bytes | None) -> pd.DataFrame:
    src = io.BytesIO(raw) if raw is not None else path
    first = raw.split(b"\n", 1)[0].decode(errors="replace") if raw is not None else None
    if first is None:
        first = ",".join(pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0].astype(str))
    if not first.strip():
        raise SkipFile("unreadable: empty file")
    if re.fullmatch(r"-?\d+(\.\d+)?", first.split(",", 1)[0].strip()):
        df = pd.read_csv(src, header=None)
        if df.shape[1] != len(_KLINE_COLUMNS):
            raise SkipFile(f"headerless CSV with {df.shape[1]} columns, not a 12-column Binance kline file")
        df.columns = _KLINE_COLUMNS
        return df
    df = pd.read_csv(src)
    df.columns = [str(c).strip().lower() for c in df.columns]
    return df


# ---- times -------------------------------------------------------------------------------------
def _epoch(values: np.ndarray) -> pd.DatetimeIndex:
    """Epoch numbers in s, ms or µs (Binance spot switched to µs in 2025) as a UTC index."""
    ms = values.astype("int64")
    if len(ms) and ms.max() > 10**14:
        ms = ms // 1000
    elif len(ms) and ms.max() < 10**11:
        ms = ms * 1000
    return pd.DatetimeIndex(pd.to_datetime(ms, unit="ms", utc=True)).as_unit("ms")


def parse_times(values: pd.Series, tz: str | None) -> tuple[pd.DatetimeIndex, str]:
    """UTC times of a column, and the conversion applied ('' when the times were UTC already).

    Offsets written in the values win; naive times are read in ``tz`` (an override) else as UTC."""
    if pd.api.types.is_numeric_dtype(values):
        return _epoch(values.to_numpy()), ""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        idx = pd.DatetimeIndex(values)
    else:
        try:
            idx = pd.DatetimeIndex(pd.to_datetime(values, format="ISO8601"))
        except (ValueError, TypeError):  # mixed offsets in one column: each value's own offset
            idx = pd.DatetimeIndex(pd.to_datetime(values, format="ISO8601", utc=True))
            offsets = sorted(set(values.astype(str).str.extract(r"([+-]\d\d:?\d\d|Z)$")[0].dropna()))
            return idx.as_unit("ms"), f"{'/'.join(offsets)} (file offsets, per row)"
    if idx.tz is None:
        if tz is None:
            return idx.tz_localize("UTC").as_unit("ms"), ""
        return idx.tz_localize(tz).tz_convert("UTC").as_unit("ms"), f"{tz} (override)"
    note = "" if str(idx.tz) in ("UTC", "UTC+00:00", "+00:00") else f"{idx.tz} (file offset)"
    return idx.tz_convert("UTC").as_unit("ms"), note.replace("UTC+", "+")


def modal_step_ms(ts: pd.DatetimeIndex) -> int | None:
    """The most common spacing of the times (ms), None with fewer than two distinct times."""
    steps = np.diff(np.unique(ts.asi8))
    if not len(steps):
        return None
    values, counts = np.unique(steps, return_counts=True)
    return int(values[np.argmax(counts)])  # the first of equal counts: the smallest step
