"""What the importer passes between its stages: pieces of series read from files, and the report."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


class SkipFile(Exception):
    """A file that cannot be imported; the message says why."""


@dataclass(frozen=True)
class Piece:
    """One file's rows for one series: the dataset's value columns, indexed by UTC ``ts``.

    ``rank`` orders files before the span rule (open interest: finer cadence first); ``tz`` names
    the conversion applied to the file's times (``+03:00 (file offset)``), empty when they were UTC."""

    path: Path
    dataset: str
    venue: str
    symbol: str
    frame: pd.DataFrame
    rank: int = 0
    tz: str = ""


@dataclass(frozen=True)
class Disagreement:
    """Overlapping rows where a losing file differs from the value kept."""

    file: Path
    kept_from: tuple[Path, ...]
    rows: int
    columns: tuple[str, ...]
    first_ts: pd.Timestamp
    max_rel_diff: float


@dataclass(frozen=True)
class FlatRun:
    """A run of Binance's flat 0.0001 funding prints: dropped when it is the post-delisting tail,
    listed (kept) when it is a long stretch followed by real prints."""

    venue: str
    symbol: str
    first: pd.Timestamp
    last: pd.Timestamp
    rows: int
    dropped: bool


@dataclass
class SeriesReport:
    """What happened to one (dataset, venue, symbol): sources in priority order, overlap checks, rows."""

    dataset: str
    venue: str
    symbol: str
    sources: list[Path]
    rows: int = 0
    written: int = 0
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    overlap_rows: int = 0
    agreeing: int = 0
    disagreeing: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)


@dataclass
class ImportReport:
    """Outcome of :func:`riskd.importer.import_path`."""

    root: Path = Path()
    files_seen: int = 0
    files_imported: int = 0
    series: list[SeriesReport] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)
    tz_conversions: list[tuple[Path, str]] = field(default_factory=list)
    flat_runs: list[FlatRun] = field(default_factory=list)
    dropped_rows: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    @property
    def rows_written(self) -> int:
        return sum(s.written for s in self.series)

    @property
    def disagreeing(self) -> int:
        return sum(s.disagreeing for s in self.series)

    @property
    def flat_tail_rows(self) -> int:
        return sum(r.rows for r in self.flat_runs if r.dropped)
