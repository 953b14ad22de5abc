"""``riskd data import``: load history files (freqtrade, gravestone, data.binance.vision) into the store.

Files are recognised by name and columns, never by the folder of the repository they came from.
Several files often hold the same Binance series, so all files are read first and each
(dataset, symbol) is stitched before anything is written:

* **Which value wins:** the file whose data ends latest (the most recent download: Binance has
  finalised its candles by then, while an older download may end in a candle that was still open);
  ties go to the longer span, then to the path name, so the result never depends on walk order.
  Other files only add hours the winner lacks, and fill cells it leaves empty (``quote_volume``)
  on hours where both agree. Open interest prefers the 4 h series over the 1 d one outright.
* **Agreement on overlaps:** prices and funding rates within a relative 1e-9 (absolute 1e-12 for
  rates, which can be 0); volumes and open interest within a relative 1e-6 (Binance may revise a
  volume slightly; on the shared data every agreeing volume is bit-identical, so the exact value
  does not change the counts). A cell empty in either file is not compared. Funding prints are
  matched by time rounded to the minute (Binance stamps them a few ms late, differently per download).

Everything imported is venue ``binance``; perp, spot and mark candles stay in separate datasets.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from riskd.errors import DataError
from riskd.settings import Settings
from riskd.sources.normalize import infer_intervals
from riskd.store import SCHEMAS, HistoryStore
from riskd.symbols import base_of, canonical

log = logging.getLogger("riskd.importer")

VENUE = "binance"
PRICE_RTOL = 1e-9
VOLUME_RTOL = 1e-6
RATE_ATOL = 1e-12
_TOLERANCE: dict[str, tuple[float, float]] = {
    **{c: (PRICE_RTOL, 0.0) for c in ("open", "high", "low", "close")},
    **{c: (VOLUME_RTOL, 0.0) for c in ("volume", "quote_volume", "open_interest", "open_interest_value")},
    "rate": (PRICE_RTOL, RATE_ATOL),
}


@dataclass(frozen=True)
class Disagreement:
    """Overlapping hours where a losing file differs from the value kept."""

    file: Path
    kept_from: tuple[Path, ...]
    rows: int
    columns: tuple[str, ...]
    first_ts: pd.Timestamp
    max_rel_diff: float


@dataclass
class SeriesReport:
    """What happened to one (dataset, symbol): sources in priority order, overlap checks, rows."""

    dataset: str
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
    """Outcome of :func:`import_path`."""

    root: Path = Path()
    files_seen: int = 0
    series: list[SeriesReport] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def rows_written(self) -> int:
        return sum(s.written for s in self.series)

    @property
    def disagreeing(self) -> int:
        return sum(s.disagreeing for s in self.series)


# ---- file layouts ------------------------------------------------------------------------------
DATA_SUFFIXES = (".feather", ".parquet", ".csv", ".csv.gz", ".zip")
_FREQTRADE = re.compile(
    r"^(?P<base>[A-Z0-9]+)_(?P<quote>[A-Z]+)(?:_(?P<settle>[A-Z]+))?-(?P<tf>\d+[mhdwMy])"
    r"(?:-(?P<kind>[A-Za-z_]+))?\.(?:feather|parquet)$"
)
_FT_KIND = {"futures": "ohlcv", "mark": "mark_ohlcv", "funding_rate": "funding"}
_BULK_KLINE = re.compile(r"^(?P<sym>[A-Z0-9]+)-(?P<tf>\d+[smhdwM])-\d{4}-\d{2}(?:-\d{2})?\.")
_KLINE_COLUMNS = [
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
    "taker_buy_volume", "taker_buy_quote_volume", "ignore",
]  # fmt: skip
_CANDLE = ["open", "high", "low", "close", "volume"]
_HOUR_MS = 3_600_000


class SkipFile(Exception):
    """A file that cannot be imported; the message says why."""


@dataclass(frozen=True)
class Piece:
    """One file's rows for one series: the dataset's value columns, indexed by UTC ``ts``.

    ``rank`` orders files before the span rule (open interest: finer cadence first)."""

    path: Path
    dataset: str
    symbol: str
    frame: pd.DataFrame
    rank: int = 0


def read_file(path: Path, renames: dict[str, str]) -> list[Piece]:
    """The series in one file, or SkipFile naming why the file is not importable.

    freqtrade ``PAIR-1h[-futures|-mark|-funding_rate].feather`` (spot when the pair has no settle
    currency); CSVs by their columns: ``timestamp,open,…,volume[,quote_volume]`` (gravestone's
    ``/fapi/v1/klines`` dumps, so perp), ``timestamp,symbol,funding_rate``, ``timestamp,symbol,
    sum_open_interest,sum_open_interest_value``, data.binance.vision 12-column klines (perp unless
    under a ``spot`` folder, mark under ``markPriceKlines``) and ``calc_time,funding_interval_hours,
    last_funding_rate``.
    """
    if m := _FREQTRADE.match(path.name):
        return [_freqtrade(path, m, renames)]
    if path.suffix in (".feather", ".parquet"):
        raise SkipFile("name is not a freqtrade pair file (XXX_USDT[_USDT]-1h[-futures|-mark|-funding_rate])")
    return [_csv(path, renames)]


def _symbol(raw: str, renames: dict[str, str]) -> str:
    base = canonical(base_of(raw), renames)
    if not re.fullmatch(r"[A-Z0-9]+", base):
        raise SkipFile(f"cannot tell the base asset from {raw!r}")
    return base


def _freqtrade(path: Path, m: re.Match[str], renames: dict[str, str]) -> Piece:
    quote, settle, kind, tf = m["quote"], m["settle"], m["kind"], m["tf"]
    if quote != "USDT" or settle not in (None, "USDT"):
        raise SkipFile(f"pair quoted in {quote}/{settle}: only USDT pairs are Binance USDT-M/spot")
    if settle is None and kind is None:
        dataset = "spot_ohlcv"
    elif settle is not None and kind in _FT_KIND:
        dataset = _FT_KIND[kind]
    else:
        raise SkipFile(f"freqtrade candle type {kind or 'none'} is not stored")
    if dataset != "funding" and tf != "1h":
        raise SkipFile(f"timeframe {tf}: only 1h candles are imported")
    df = pd.read_feather(path) if path.suffix == ".feather" else pd.read_parquet(path)
    need = ["date", "open"] if dataset == "funding" else ["date", *_CANDLE]
    if missing := [c for c in need if c not in df.columns]:
        raise SkipFile(f"missing columns {missing}")
    ts = pd.DatetimeIndex(df["date"])
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    if dataset == "funding":
        values = {"rate": df["open"].to_numpy(float), "interval_hours": np.nan}
    else:
        values = {**{c: df[c].to_numpy(float) for c in _CANDLE}, "quote_volume": np.nan}
    return _piece(path, dataset, _symbol(m["base"], renames), ts.as_unit("ms"), values)


def _epoch_ms(values: pd.Series) -> pd.DatetimeIndex:
    """Epoch integers in ms or µs (Binance spot switched to µs in 2025) as a UTC index."""
    ms = values.to_numpy(dtype="int64")
    if len(ms) and ms.max() > 10**14:
        ms = ms // 1000
    return pd.DatetimeIndex(pd.to_datetime(ms, unit="ms", utc=True)).as_unit("ms")


def _csv(path: Path, renames: dict[str, str]) -> Piece:
    head = pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0].tolist()
    if re.fullmatch(r"-?\d+(\.\d+)?", str(head[0]).strip()):
        df = pd.read_csv(path, header=None)
        if df.shape[1] != len(_KLINE_COLUMNS):
            raise SkipFile(f"headerless CSV with {df.shape[1]} columns, not a 12-column Binance kline file")
        df.columns = _KLINE_COLUMNS
    else:
        df = pd.read_csv(path)
        df.columns = [str(c).strip().lower() for c in df.columns]
    if df.empty:
        raise SkipFile("no rows")
    cols = set(df.columns)
    name = path.name.split("-", 1)[0].split(".", 1)[0]
    raw = str(df["symbol"].iloc[0]) if "symbol" in cols else name
    if not raw.upper().endswith("USDT"):
        raise SkipFile(f"symbol {raw!r} is not a USDT pair")
    symbol = _symbol(raw, renames)
    if {"calc_time", "last_funding_rate"} <= cols:
        hours = df["funding_interval_hours"] if "funding_interval_hours" in cols else np.nan
        values = {"rate": df["last_funding_rate"], "interval_hours": hours}
        return _piece(path, "funding", symbol, _epoch_ms(df["calc_time"]), values)
    if {"timestamp", "funding_rate"} <= cols:
        values = {"rate": df["funding_rate"], "interval_hours": np.nan}
        return _piece(path, "funding", symbol, _epoch_ms(df["timestamp"]), values)
    if {"timestamp", "sum_open_interest", "sum_open_interest_value"} <= cols:
        ts = _epoch_ms(df["timestamp"])
        values = {
            "open_interest": df["sum_open_interest"],
            "open_interest_value": df["sum_open_interest_value"],
        }
        return _piece(path, "open_interest", symbol, ts, values, rank=-int(_modal_step_hours(ts)))
    time_col = "open_time" if "open_time" in cols else "timestamp"
    if time_col in cols and set(_CANDLE) <= cols:
        dataset = _kline_dataset(path) if time_col == "open_time" else "ohlcv"
        if (m := _BULK_KLINE.match(path.name)) and m["tf"] != "1h":
            raise SkipFile(f"timeframe {m['tf']}: only 1h candles are imported")
        qv = df["quote_volume"] if "quote_volume" in cols else np.nan
        values = {**{c: df[c] for c in _CANDLE}, "quote_volume": qv}
        return _piece(path, dataset, symbol, _epoch_ms(df[time_col]), values)
    raise SkipFile(f"unrecognised columns {sorted(cols)[:8]}")


def _kline_dataset(path: Path) -> str:
    """data.binance.vision names spot and futures klines alike; only its folders tell them apart."""
    parts = {p.lower() for p in path.parts[:-1]}
    if parts & {"indexpriceklines", "premiumindexklines", "cm"}:
        raise SkipFile("index/premium/coin-margined klines are not stored")
    if "markpriceklines" in parts:
        return "mark_ohlcv"
    return "spot_ohlcv" if "spot" in parts else "ohlcv"


def _modal_step_hours(ts: pd.DatetimeIndex) -> float:
    steps = np.diff(np.sort(ts.asi8))
    return float(pd.Series(steps).mode().min() / _HOUR_MS) if len(steps) else 1.0


def _piece(path: Path, dataset: str, symbol: str, ts: pd.DatetimeIndex, values: dict, rank: int = 0) -> Piece:
    """Build and check a Piece; anything the store would refuse skips the file here instead."""
    frame = pd.DataFrame(
        {k: (v.to_numpy(dtype=float) if isinstance(v, pd.Series) else v) for k, v in values.items()},
        index=pd.DatetimeIndex(ts, name="ts"),
    )
    if frame.empty:
        raise SkipFile("no rows")
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    if dataset != "funding":
        if (frame.index.asi8 % _HOUR_MS).any():
            raise SkipFile("timestamps are not whole hours")
        if dataset != "open_interest" and (step := _modal_step_hours(frame.index)) != 1.0:
            raise SkipFile(f"rows are {step:g} h apart, not hourly candles")
    required = ["rate"] if dataset == "funding" else [c for c in _CANDLE[:4] if c in frame]
    if frame[required].isna().to_numpy().any():
        raise SkipFile(f"missing values in {required}")
    return Piece(path, dataset, symbol, frame, rank)


def import_path(
    path: Path, store: HistoryStore, *, renames: dict[str, str], progress: bool = True
) -> ImportReport:
    """Import every recognised file under ``path`` (a file or a folder) into ``store``."""
    started = time.perf_counter()
    path = Path(path)
    if not path.exists():
        raise DataError(f"import: no such file or folder: {path}")
    files = sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
    report = ImportReport(root=path if path.is_dir() else path.parent, files_seen=len(files))
    pieces: dict[tuple[str, str], list[Piece]] = defaultdict(list)
    with _progress(progress) as bar:
        task = bar.add_task("reading", total=len(files))
        for f in files:
            bar.update(task, description=f"reading {f.name}")
            _read_one(f, renames, report, pieces)
            bar.advance(task)
        task = bar.add_task("writing", total=len(pieces))
        for (dataset, symbol), group in sorted(pieces.items()):
            bar.update(task, description=f"writing {dataset}/{symbol}")
            frame, series = stitch(dataset, symbol, group)
            try:
                series.written = store.append(dataset, VENUE, symbol, frame)
            except DataError as err:  # one bad series must not lose the others
                report.skipped.extend((p.path, f"not stored: {err}") for p in group)
                log.warning("not stored %s/%s: %s", dataset, symbol, err)
            else:
                report.series.append(series)
            bar.advance(task)
    report.elapsed_s = time.perf_counter() - started
    return report


def _read_one(f: Path, renames: dict[str, str], report: ImportReport, out: dict) -> None:
    if f.name.startswith(".") or not any(f.name.endswith(s) for s in DATA_SUFFIXES):
        report.ignored.append(f)
        return
    try:
        for piece in read_file(f, renames):
            out[(piece.dataset, piece.symbol)].append(piece)
    except SkipFile as why:
        report.skipped.append((f, str(why)))
        log.warning("skipped %s: %s", f, why)
    except Exception as err:  # unreadable file of any kind: the import goes on without it
        report.skipped.append((f, f"unreadable: {type(err).__name__}: {err}"))
        log.warning("skipped %s: unreadable: %s", f, err)


def _progress(enabled: bool) -> Progress:
    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description:<40}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=True,
    )


# ---- stitching ---------------------------------------------------------------------------------
def _priority(piece: Piece) -> tuple:
    idx = piece.frame.index
    return (piece.rank, idx.max(), idx.max() - idx.min(), str(piece.path))


def stitch(dataset: str, symbol: str, pieces: list[Piece]) -> tuple[pd.DataFrame, SeriesReport]:
    """One frame for the series out of overlapping files, and the report of their agreement."""
    order = sorted(pieces, key=_priority, reverse=True)
    series = SeriesReport(dataset, symbol, [p.path for p in order])
    acc = _keyed(order[0].frame, 0)
    for i, piece in enumerate(order[1:], start=1):
        other = _keyed(piece.frame, i)
        common = acc.index.intersection(other.index)
        bad_rows, bad_cols, rel = _compare(acc.loc[common], other.loc[common])
        series.overlap_rows += len(common)
        series.disagreeing += int(bad_rows.sum())
        series.agreeing += int((~bad_rows).sum())
        if bad_rows.any():
            kept = acc.loc[common[bad_rows]]
            winners = tuple(order[j].path for j in sorted(set(kept["_src"])))
            series.disagreements.append(
                Disagreement(piece.path, winners, int(bad_rows.sum()), bad_cols, kept["ts"].iloc[0], rel)
            )
        acc = _fill(acc, other, common[~bad_rows])
        extra = other.index.difference(acc.index)
        if len(extra):
            acc = pd.concat([acc, other.loc[extra]]).sort_index()
    frame = acc.set_index("ts")
    frame.index = pd.DatetimeIndex(frame.index, name="ts")
    if dataset == "funding":
        frame = _funding_columns(frame)
    frame = frame[list(SCHEMAS[dataset])]
    series.rows, series.first, series.last = len(frame), frame.index.min(), frame.index.max()
    return frame, series


def _keyed(frame: pd.DataFrame, source: int) -> pd.DataFrame:
    """The frame indexed by row identity (time to the minute), the exact time kept in ``ts``, the
    file it came from in ``_src``."""
    keyed = frame.reset_index(names="ts").assign(_src=source)
    keyed.index = pd.Index(frame.index.as_unit("ms").round("min").asi8, name="key")
    return keyed[~keyed.index.duplicated(keep="last")]


def _compare(a: pd.DataFrame, b: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...], float]:
    """Rows where a compared column differs beyond tolerance, those columns, the worst relative gap."""
    bad = np.zeros(len(a), dtype=bool)
    cols: list[str] = []
    worst = 0.0
    for col, (rtol, atol) in _TOLERANCE.items():
        if col not in a.columns or col not in b.columns:
            continue
        x, y = a[col].to_numpy(dtype=float), b[col].to_numpy(dtype=float)
        both = ~np.isnan(x) & ~np.isnan(y)
        scale = np.maximum(np.abs(x), np.abs(y))
        diff = np.abs(x - y)
        off = both & (diff > atol + rtol * scale)
        if off.any():
            cols.append(col)
            worst = max(worst, float(np.max(diff[off] / np.where(scale[off] > 0, scale[off], 1.0))))
        bad |= off
    return bad, tuple(cols), worst


def _fill(acc: pd.DataFrame, other: pd.DataFrame, agreed: pd.Index) -> pd.DataFrame:
    """Cells empty in ``acc`` taken from ``other`` on hours where the two agree."""
    value_cols = [c for c in acc.columns if c not in ("ts", "_src") and c in other.columns]
    if not len(agreed) or not value_cols:
        return acc
    holes = acc.loc[agreed, value_cols].isna() & other.loc[agreed, value_cols].notna()
    if not holes.to_numpy().any():
        return acc
    acc = acc.copy()
    for col in value_cols:
        rows = agreed[holes[col].to_numpy()]
        acc.loc[rows, col] = other.loc[rows, col]
    return acc


def _funding_columns(frame: pd.DataFrame) -> pd.DataFrame:
    inferred = frame["interval_hours"].isna().to_numpy()
    frame = frame.copy()
    if inferred.any():
        # the same rule as the live sources, so imported and fetched prints agree
        frame.loc[inferred, "interval_hours"] = infer_intervals(frame.index, fallback_hours=8.0)[inferred]
    frame["interval_inferred"] = inferred
    frame["rate_per_hour"] = frame["rate"] / frame["interval_hours"]
    return frame


# ---- command line ------------------------------------------------------------------------------
def _fmt(ts: pd.Timestamp | None) -> str:
    return "" if ts is None or pd.isna(ts) else ts.strftime("%Y-%m-%d %H:%M")


def print_report(report: ImportReport, console: Console) -> None:
    """The summary table, then disagreements and skipped files."""
    table = Table(title="imported (venue binance)")
    cols = ("dataset", "symbol", "files", "rows", "written", "first", "last", "overlap", "agree", "disagree")
    for col in cols:
        table.add_column(col, justify="right" if col not in ("dataset", "symbol") else "left")
    for s in report.series:
        table.add_row(
            s.dataset, s.symbol, str(len(s.sources)), str(s.rows), str(s.written), _fmt(s.first),
            _fmt(s.last), str(s.overlap_rows), str(s.agreeing),
            f"[red]{s.disagreeing}[/red]" if s.disagreeing else "0",
        )  # fmt: skip
    console.print(table)
    bad = [(s, d) for s in report.series for d in s.disagreements]
    if bad:
        dis = Table(title="disagreements on overlapping hours (value kept from the file ending latest)")
        for col in ("dataset", "symbol", "kept from", "differs in", "rows", "columns", "first", "max rel"):
            dis.add_column(col, overflow="fold")
        for s, d in bad:
            dis.add_row(
                s.dataset, s.symbol, ", ".join(_rel(f, report.root) for f in d.kept_from),
                _rel(d.file, report.root), str(d.rows), ",".join(d.columns), _fmt(d.first_ts),
                f"{d.max_rel_diff:.3g}",
            )  # fmt: skip
        console.print(dis)
    for f, why in report.skipped:
        console.print(f"[yellow]skipped[/yellow] {f}: {why}")
    console.print(
        f"{report.files_seen} files ({len(report.ignored)} not data files), {len(report.series)} series, "
        f"{sum(s.rows for s in report.series)} rows, {report.rows_written} new or changed in the store, "
        f"{report.disagreeing} disagreeing overlap rows, {len(report.skipped)} files skipped, "
        f"{report.elapsed_s:.1f} s"
    )


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def cli_import(settings: Settings, args: argparse.Namespace) -> int:
    """``riskd data import PATH``: exit 0 when something was imported, 1 when nothing was."""
    store = HistoryStore(settings.store_dir)
    report = import_path(
        Path(args.path),
        store,
        renames=settings.universe.renames,
        progress=not getattr(args, "no_progress", False),
    )
    print_report(report, Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160))
    if not report.series:
        print(f"riskd: nothing importable found under {args.path}", file=sys.stderr)
        return 1
    return 0
