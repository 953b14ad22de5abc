"""The Parquet history store: one hive partition per (dataset, venue, symbol), one file per year.

The layout (docs/data.md) is plain hive so pyarrow.dataset, DuckDB and Polars read the store with no
riskd code. Files carry only ``ts`` and the value columns: dataset, venue and symbol live in the path,
which is what hive readers expect. Every write rewrites one year file through a temporary file and
``os.replace``, so a reader or a crash only ever sees the old file or the new one. Writes use fixed
settings and no pandas metadata, so equal content gives equal bytes (stores can be diffed).
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

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
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_COMPRESSION = {"compression": "zstd", "compression_level": 3, "use_dictionary": False}
_CHUNK = 1 << 20  # bytes per os.write; small enough that a crash can land mid-file
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()

Bound: TypeAlias = pd.Timestamp | datetime | str | None


def empty_frame(dataset: str) -> pd.DataFrame:
    """A frame with no rows and the dataset's columns, dtypes and UTC ``ts`` index."""
    cols = _schema(dataset)
    index = pd.DatetimeIndex([], dtype="datetime64[ms, UTC]", name="ts")
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in cols.items()}, index=index)


def to_utc(value: Bound) -> pd.Timestamp | None:
    """A bound as a UTC Timestamp; naive values are read as UTC (every riskd time is UTC)."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _schema(dataset: str) -> dict[str, str]:
    try:
        return SCHEMAS[dataset]
    except KeyError:
        raise DataError(f"unknown dataset {dataset!r} (known: {', '.join(DATASETS)})") from None


def _is_utc(tz: object) -> bool:
    return tz is not None and str(tz) in {"UTC", "UTC+00:00", "Etc/UTC", "Z", "tzutc()"}


def _keys(index: pd.DatetimeIndex) -> np.ndarray:
    """Identity of a row: its time rounded to the minute (a funding print a few ms late is the same
    print), as int64 milliseconds."""
    return index.as_unit("ms").round("min").asi8


class HistoryStore:
    """Hourly history on disk, idempotent and atomic per year file.

    Safe for one writer per partition at a time and any number of readers; the backfill writes
    different partitions concurrently, so a lock per partition directory is all that is needed.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # ---- writing ---------------------------------------------------------------------------------
    def append(self, dataset: str, venue: str, symbol: str, frame: pd.DataFrame) -> int:
        """Merge ``frame`` into the store; return how many rows were new or changed.

        Duplicates inside ``frame`` resolve to the last one; a row for an hour already stored
        replaces it. Writing what is already there touches no file.
        """
        folder = self._dir(dataset, venue, symbol)
        new = _validated(frame, dataset, f"{dataset}/{venue}/{symbol}")
        if new.empty:
            return 0
        years = pd.DatetimeIndex(pd.to_datetime(_keys(new.index), unit="ms", utc=True)).year
        changed = 0
        with _lock(folder):
            folder.mkdir(parents=True, exist_ok=True)
            for year, chunk in new.groupby(years, sort=True):
                path = folder / f"{year}.parquet"
                if path.exists():
                    merged, n = _merge(self._read_file(path, dataset), chunk)
                else:  # a new year file: nothing to merge with (most of a first import)
                    merged, n = chunk, len(chunk)
                if n:
                    _atomic_write(path, _to_table(merged, dataset))
                changed += n
        return changed

    # ---- reading ---------------------------------------------------------------------------------
    def read(
        self, dataset: str, venue: str, symbol: str, start: Bound = None, end: Bound = None
    ) -> pd.DataFrame:
        """Rows with ``start <= ts < end`` (either bound optional; naive bounds are UTC), or an empty
        frame with the dataset's columns. The index is ``datetime64[ms, UTC]`` named ``ts``."""
        lo, hi = to_utc(start), to_utc(end)
        files = self._year_files(dataset, venue, symbol)
        if lo is not None:
            files = [(y, p) for y, p in files if y >= lo.year]
        if hi is not None:
            files = [(y, p) for y, p in files if y <= hi.year]
        if not files:
            return empty_frame(dataset)
        frame = pd.concat([self._read_file(p, dataset) for _, p in files]).sort_index()
        if lo is not None:
            frame = frame[frame.index >= lo]
        if hi is not None:
            frame = frame[frame.index < hi]
        return frame

    def read_many(
        self, dataset: str, venue: str, symbols: Iterable[str], start: Bound = None, end: Bound = None
    ) -> dict[str, pd.DataFrame]:
        """:meth:`read` for several symbols; every symbol asked for gets a frame, maybe empty."""
        return {s: self.read(dataset, venue, s, start, end) for s in symbols}

    def first_ts(self, dataset: str, venue: str, symbol: str) -> pd.Timestamp | None:
        """Time of the earliest stored row, None when the partition is empty."""
        files = self._year_files(dataset, venue, symbol)
        return self._edge_ts(files[0][1], first=True) if files else None

    def last_ts(self, dataset: str, venue: str, symbol: str) -> pd.Timestamp | None:
        """Time of the latest stored row (where a backfill resumes), None when empty."""
        files = self._year_files(dataset, venue, symbol)
        return self._edge_ts(files[-1][1], first=False) if files else None

    def partitions(self, dataset: str | None = None, venue: str | None = None) -> list[tuple[str, str, str]]:
        """Sorted (dataset, venue, symbol) of every partition holding at least one year file."""
        found = []
        for folder in self.root.glob("dataset=*/venue=*/symbol=*"):
            if not any(_year_of(p) is not None for p in folder.iterdir()):
                continue
            d, v, s = (part.split("=", 1)[1] for part in folder.parts[-3:])
            if (dataset is None or d == dataset) and (venue is None or v == venue):
                found.append((d, v, s))
        return sorted(found)

    # ---- gaps ------------------------------------------------------------------------------------
    def gaps(
        self,
        dataset: str,
        venue: str,
        symbol: str,
        freq: str = "1h",
        start: Bound = None,
        end: Bound = None,
    ) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """Missing rows as inclusive [first_missing, last_missing] runs.

        The grid runs from the first to the last row, or over ``[start, end)`` when given. Funding
        ignores ``freq``: a print is missing when the next one comes later than its interval.
        """
        frame = self.read(dataset, venue, symbol, start, end)
        if dataset == "funding":
            return funding_gaps(frame, start, end)
        return grid_gaps(frame.index, freq, start, end)

    # ---- internals -------------------------------------------------------------------------------
    def _dir(self, dataset: str, venue: str, symbol: str) -> Path:
        _schema(dataset)
        for what, name in (("venue", venue), ("symbol", symbol)):
            if not isinstance(name, str) or not _NAME.match(name):
                raise DataError(f"{dataset}/{venue}/{symbol}: invalid {what} name {name!r}")
        return self.root / f"dataset={dataset}" / f"venue={venue}" / f"symbol={symbol}"

    def _year_files(self, dataset: str, venue: str, symbol: str) -> list[tuple[int, Path]]:
        folder = self._dir(dataset, venue, symbol)
        if not folder.is_dir():
            return []
        years = ((_year_of(p), p) for p in folder.iterdir())
        return sorted((y, p) for y, p in years if y is not None)

    @staticmethod
    def _read_file(path: Path, dataset: str) -> pd.DataFrame:
        table = pq.ParquetFile(path).read(columns=["ts", *SCHEMAS[dataset]])
        frame = table.to_pandas()
        frame.index = pd.DatetimeIndex(frame.pop("ts"), name="ts").as_unit("ms")
        return frame.astype(SCHEMAS[dataset])

    @staticmethod
    def _edge_ts(path: Path, *, first: bool) -> pd.Timestamp:
        ts = pq.ParquetFile(path).read(columns=["ts"]).column("ts").to_pandas()
        return ts.min() if first else ts.max()


def _year_of(path: Path) -> int | None:
    stem, dot, ext = path.name.partition(".")
    return int(stem) if ext == "parquet" and dot and stem.isdigit() else None


def _lock(folder: Path) -> threading.Lock:
    key = str(folder.resolve())
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def _validated(frame: pd.DataFrame, dataset: str, where: str) -> pd.DataFrame:
    """The frame in the store's canonical form (float64/bool, ms UTC index, sorted, unique)."""
    cols = _schema(dataset)
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
    keys = _keys(clean.index)
    clean = clean[~pd.Series(keys).duplicated(keep="last").to_numpy()]
    return clean.iloc[np.argsort(_keys(clean.index), kind="stable")]


def _same(a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    """Row-wise equality of two aligned frames, NaN equal to NaN."""
    eq = np.ones(len(a), dtype=bool)
    for col in a.columns:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        both_nan = pd.isna(x) & pd.isna(y) if x.dtype.kind == "f" else np.zeros(len(x), dtype=bool)
        eq &= (x == y) | both_nan
    return eq


def _merge(old: pd.DataFrame, new: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``old`` with ``new`` laid over it by row identity; also the count of new or changed rows."""
    old_k, new_k = _keys(old.index), _keys(new.index)
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
    return merged.iloc[np.argsort(_keys(merged.index), kind="stable")], changed


def _to_table(frame: pd.DataFrame, dataset: str) -> pa.Table:
    """Arrow table with a fixed schema and no pandas metadata, so equal frames give equal bytes."""
    arrays = [pa.array(frame.index.as_unit("ms").asi8, type=pa.int64()).cast(_TS)]
    names = ["ts"]
    for col, dtype in SCHEMAS[dataset].items():
        arrays.append(pa.array(frame[col].to_numpy(), type=_ARROW[dtype]))
        names.append(col)
    return pa.Table.from_arrays(arrays, names=names)


def _atomic_write(path: Path, table: pa.Table) -> None:
    """Replace ``path`` by ``table`` so that readers see the old or the new file, never a part.

    The temporary name starts with a dot and does not end in ``.parquet``: hive readers
    (pyarrow.dataset, DuckDB globs, this store) skip it, and a leftover from a killed writer is
    swept the next time this year file is written.
    """
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **_COMPRESSION)
    data = sink.getvalue().to_pybytes()
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            view = memoryview(data)
            for off in range(0, len(view), _CHUNK):
                os.write(fd, view[off : off + _CHUNK])
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- gap arithmetic (pure) -----------------------------------------------------------------------
def _runs(missing: np.ndarray, step_ns: int) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Group sorted int64-ns grid points into runs of consecutive points."""
    if not len(missing):
        return []
    breaks = np.flatnonzero(np.diff(missing) != step_ns) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks - 1, [len(missing) - 1]])
    ts = pd.to_datetime(missing, unit="ns", utc=True)
    return [(ts[a], ts[b]) for a, b in zip(starts, ends, strict=True)]


def grid_gaps(
    index: pd.DatetimeIndex, freq: str = "1h", start: Bound = None, end: Bound = None
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Runs of grid points absent from ``index``; grid over [first, last] or [start, end)."""
    step = pd.Timedelta(freq)
    lo, hi = to_utc(start), to_utc(end)
    have = index.as_unit("ns").asi8
    if lo is not None:
        have = have[have >= lo.value]
    if hi is not None:
        have = have[have < hi.value]
    if not len(have) and (lo is None or hi is None):
        return []
    first = lo.ceil(step) if lo is not None else pd.Timestamp(have.min(), tz="UTC")
    last = (hi - pd.Timedelta(1, "ns")).floor(step) if hi is not None else pd.Timestamp(have.max(), tz="UTC")
    if last < first:
        return []
    grid = np.arange(first.value, last.value + 1, step.value, dtype="int64")
    return _runs(grid[~np.isin(grid, have)], step.value)


def funding_gaps(
    frame: pd.DataFrame, start: Bound = None, end: Bound = None
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Missing funding prints as inclusive runs of the times they were due (see :func:`funding_gap_runs`)."""
    return [(a, b) for a, b, _ in funding_gap_runs(frame, start, end)]


def funding_gap_runs(
    frame: pd.DataFrame, start: Bound = None, end: Bound = None
) -> list[tuple[pd.Timestamp, pd.Timestamp, pd.Timedelta]]:
    """Missing funding prints as (first_due, last_due, interval) runs.

    A print is due one interval after the previous one, where the interval is the one reported (or
    inferred) on the *next* print: that is the period it settles, so a venue switching from 4 h to
    8 h prints is not mistaken for a gap. Print times are compared with :data:`FUNDING_TOLERANCE`.
    """
    lo, hi = to_utc(start), to_utc(end)
    if lo is not None:
        frame = frame[frame.index >= lo]
    if hi is not None:
        frame = frame[frame.index < hi]
    if frame.empty:
        if lo is None or hi is None or lo >= hi:
            return []
        return [(lo, hi - pd.Timedelta(hours=1), pd.Timedelta(hours=1))]
    t = frame.index.as_unit("ns").round("min").asi8
    step = (frame["interval_hours"].to_numpy() * 3600e9).astype("int64")
    runs: list[tuple[int, int, int]] = []
    if lo is not None and (n := int((t[0] - lo.value) // step[0])) > 0:
        runs.append((t[0] - n * step[0], t[0] - step[0], step[0]))
    gap = np.diff(t)
    for i in np.flatnonzero(gap > step[1:] + FUNDING_TOLERANCE.value):
        s = step[i + 1]
        n = max(1, round(gap[i] / s) - 1)
        runs.append((t[i] + s, t[i] + n * s, s))
    if hi is not None and (n := int((hi.value - t[-1] - 1) // step[-1])) > 0:
        runs.append((t[-1] + step[-1], t[-1] + n * step[-1], step[-1]))
    return [(pd.Timestamp(a, tz="UTC"), pd.Timestamp(b, tz="UTC"), pd.Timedelta(s)) for a, b, s in runs]
