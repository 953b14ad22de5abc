"""The Parquet history store: one hive partition per (dataset, venue, symbol), one file per year.

The layout (docs/data.md) is plain hive so pyarrow.dataset, DuckDB and Polars read the store with no
riskd code. Files carry only ``ts`` and the value columns: dataset, venue and symbol live in the path,
which is what hive readers expect. Every write rewrites one year file through a temporary file and
``os.replace``, so a reader or a crash only ever sees the old file or the new one. Writes use fixed
settings and no pandas metadata, so equal content gives equal bytes (stores can be diffed).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from riskd.errors import DataError
from riskd.store.files import write_atomic
from riskd.store.gaps import funding_gaps, grid_gaps
from riskd.store.schema import (
    NAME,
    SCHEMAS,
    Bound,
    empty_frame,
    merge,
    row_keys,
    schema_of,
    to_table,
    to_utc,
    validated,
)

_COMPRESSION = {"compression": "zstd", "compression_level": 3, "use_dictionary": False}
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


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
        new = validated(frame, dataset, f"{dataset}/{venue}/{symbol}")
        if new.empty:
            return 0
        years = pd.DatetimeIndex(pd.to_datetime(row_keys(new.index), unit="ms", utc=True)).year
        changed = 0
        with _lock(folder):
            folder.mkdir(parents=True, exist_ok=True)
            for year, chunk in new.groupby(years, sort=True):
                path = folder / f"{year}.parquet"
                if path.exists():
                    merged, n = merge(self._read_file(path, dataset), chunk)
                else:  # a new year file: nothing to merge with (most of a first import)
                    merged, n = chunk, len(chunk)
                if n:
                    _write_table(path, to_table(merged, dataset))
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
        schema_of(dataset)
        for what, name in (("venue", venue), ("symbol", symbol)):
            if not isinstance(name, str) or not NAME.match(name):
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


def _write_table(path: Path, table: pa.Table) -> None:
    """A year file, replaced atomically: its temporary name starts with a dot and does not end in
    ``.parquet``, so hive readers (pyarrow.dataset, DuckDB globs, this store) skip it."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **_COMPRESSION)
    write_atomic(path, sink.getvalue().to_pybytes())
