"""``riskd data import``: load history files (freqtrade, gravestone, data.binance.vision, long-format
funding, …) into the store.

Every file is read first (:mod:`riskd.importer.layouts` recognises its layout by its columns), then each
(dataset, venue, symbol) is stitched out of all the files holding it (:mod:`riskd.importer.stitch`:
the latest-ending file wins, overlaps are compared and disagreements reported), Binance funding loses
its post-delisting flat tail (:mod:`riskd.importer.flat`), and the result is written to the store.
docs/data.md lists the layouts, the datasets they become and their quirks.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from riskd.errors import DataError
from riskd.importer import overrides as _overrides
from riskd.importer.files import data_name
from riskd.importer.flat import split_flat_tail
from riskd.importer.layouts import read_file
from riskd.importer.model import FlatRun, ImportReport, Piece, SeriesReport, SkipFile
from riskd.importer.stitch import stitch
from riskd.importer.summary import print_report
from riskd.store import HistoryStore

__all__ = [
    "FlatRun", "ImportReport", "Piece", "SeriesReport", "SkipFile", "import_path",
    "print_report", "read_file", "stitch",
]  # fmt: skip

log = logging.getLogger("riskd.importer")


def import_path(
    path: Path, store: HistoryStore, *, renames: dict[str, str], progress: bool = True
) -> ImportReport:
    """Import every recognised file under ``path`` (a file or a folder) into ``store``."""
    started = time.perf_counter()
    path = Path(path)
    if not path.exists():
        raise DataError(f"import: no such file or folder: {path}")
    root = path if path.is_dir() else path.parent
    rules = _overrides.load(root)
    files = sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
    report = ImportReport(root=root, files_seen=len(files))
    pieces: dict[tuple[str, str, str], list[Piece]] = defaultdict(list)
    with _progress(progress) as bar:
        task = bar.add_task("reading", total=len(files))
        for f in files:
            bar.update(task, description=f"reading {f.name}")
            _read_one(f, renames, rules, report, pieces)
            bar.advance(task)
        task = bar.add_task("writing", total=len(pieces))
        for (dataset, venue, symbol), group in sorted(pieces.items()):
            bar.update(task, description=f"writing {dataset}/{venue}/{symbol}")
            _write_series(store, report, dataset, venue, symbol, group)
            bar.advance(task)
    report.elapsed_s = time.perf_counter() - started
    return report


def _write_series(
    store: HistoryStore, report: ImportReport, dataset: str, venue: str, symbol: str, group: list[Piece]
) -> None:
    frame, series = stitch(dataset, venue, symbol, group)
    if dataset == "funding" and venue == "binance":
        frame, runs = split_flat_tail(frame)
        report.flat_runs.extend(FlatRun(venue, symbol, *run) for run in runs)
        series.rows, series.last = len(frame), (frame.index.max() if len(frame) else None)
    try:
        series.written = store.append(dataset, venue, symbol, frame)
    except DataError as err:  # one bad series must not lose the others
        report.skipped.extend((p.path, f"not stored: {err}") for p in group)
        log.warning("not stored %s/%s/%s: %s", dataset, venue, symbol, err)
    else:
        report.series.append(series)


def _read_one(
    f: Path,
    renames: dict[str, str],
    rules: tuple[_overrides.Override, ...],
    report: ImportReport,
    out: dict[tuple[str, str, str], list[Piece]],
) -> None:
    if data_name(f) is None:
        report.ignored.append(f)
        return
    rel = f.relative_to(report.root).as_posix() if f.is_relative_to(report.root) else f.name
    try:
        got = read_file(f, renames, _overrides.match(rules, rel), report.dropped_rows)
    except SkipFile as why:
        report.skipped.append((f, str(why)))
        log.warning("skipped %s: %s", f, why)
        return
    except Exception as err:  # unreadable file of any kind: the import goes on without it
        report.skipped.append((f, f"unreadable: {type(err).__name__}: {err}"))
        log.warning("skipped %s: unreadable: %s", f, err)
        return
    report.files_imported += 1
    tz = {p.tz for p in got if p.tz}
    report.tz_conversions.extend((f, t) for t in sorted(tz))
    for piece in got:
        out[(piece.dataset, piece.venue, piece.symbol)].append(piece)


def _progress(enabled: bool) -> Progress:
    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description:<48}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=True,
    )
