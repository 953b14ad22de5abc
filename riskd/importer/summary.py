"""The import summary: rows per dataset and venue, skipped files by reason, rows left out and why,
timezone conversions, flat funding tails and disagreements between overlapping sources."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from riskd.importer.model import ImportReport, SeriesReport


def _fmt(ts: pd.Timestamp | None) -> str:
    return "" if ts is None or pd.isna(ts) else ts.strftime("%Y-%m-%d %H:%M")


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _datasets_table(report: ImportReport) -> Table:
    groups: dict[tuple[str, str], list[SeriesReport]] = defaultdict(list)
    for s in report.series:
        groups[(s.dataset, s.venue)].append(s)
    table = Table(title="imported rows per dataset and venue")
    for col in ("dataset", "venue", "symbols", "rows", "written", "first", "last", "overlap", "disagree"):
        table.add_column(col, justify="left" if col in ("dataset", "venue") else "right")
    for (dataset, venue), ss in sorted(groups.items()):
        bad = sum(s.disagreeing for s in ss)
        table.add_row(
            dataset, venue, _symbols(ss), f"{sum(s.rows for s in ss):,}", f"{sum(s.written for s in ss):,}",
            _fmt(min(s.first for s in ss if s.first is not None)),
            _fmt(max(s.last for s in ss if s.last is not None)),
            f"{sum(s.overlap_rows for s in ss):,}", f"[red]{bad:,}[/red]" if bad else "0",
        )  # fmt: skip
    return table


def _symbols(series: list[SeriesReport]) -> str:
    """How many symbols, named when there are only a few."""
    names = sorted(s.symbol for s in series)
    return ",".join(names) if len(names) <= 4 else str(len(names))


def _disagreements_table(report: ImportReport) -> Table | None:
    bad = [s for s in report.series if s.disagreements]
    if not bad:
        return None
    table = Table(title="disagreements on overlapping rows (value kept from the file ending latest)")
    for col in (
        "dataset",
        "venue",
        "symbol",
        "rows",
        "columns",
        "first",
        "max rel",
        "kept from / differs in",
    ):
        table.add_column(col, overflow="fold")
    for s in bad:
        cols = sorted({c for d in s.disagreements for c in d.columns})
        files = sorted({_rel(f, report.root) for d in s.disagreements for f in (*d.kept_from, d.file)})
        table.add_row(
            s.dataset, s.venue, s.symbol, str(s.disagreeing), ",".join(cols),
            _fmt(min(d.first_ts for d in s.disagreements)),
            f"{max(d.max_rel_diff for d in s.disagreements):.3g}",
            ", ".join(files[:3]) + (f" (+{len(files) - 3} more)" if len(files) > 3 else ""),
        )  # fmt: skip
    return table


def _reason_kind(why: str) -> str:
    """A skip reason without the file-specific parts, so files skipped for one cause group together."""
    return re.sub(r"'[^']*'|\d+(\.\d+)?", "…", why)


def print_report(report: ImportReport, console: Console) -> None:
    """The summary: tables first, then files skipped, rows left out, conversions, the totals line."""
    console.print(_datasets_table(report))
    if (dis := _disagreements_table(report)) is not None:
        console.print(dis)
    if report.flat_runs:
        flat = Table(title="flat 0.0001 funding runs (Binance) spanning >= 60 days")
        for col in ("symbol", "first", "last", "prints", "action"):
            flat.add_column(col)
        for r in report.flat_runs:
            action = "dropped: post-delisting tail" if r.dropped else "kept: real prints follow"
            flat.add_row(r.symbol, _fmt(r.first), _fmt(r.last), str(r.rows), action)
        console.print(flat)
    skipped: dict[str, list[Path]] = defaultdict(list)
    for f, why in report.skipped:
        skipped[_reason_kind(why)].append(f)
    for _kind, files in sorted(skipped.items(), key=lambda kv: -len(kv[1])):
        why = next(w for f, w in report.skipped if f == files[0])
        console.print(
            f"[yellow]skipped[/yellow] {len(files)} file(s): {why} (e.g. {_rel(files[0], report.root)})"
        )
    if report.ignored:
        names = ", ".join(_rel(f, report.root) for f in report.ignored[:5])
        more = f" (+{len(report.ignored) - 5} more)" if len(report.ignored) > 5 else ""
        console.print(f"not data files (not read): {len(report.ignored)}: {names}{more}")
    tails = [r for r in report.flat_runs if r.dropped]
    if tails:
        console.print(
            f"flat funding tails dropped: {report.flat_tail_rows:,} prints of {len(tails)} Binance symbols "
            f"({', '.join(r.symbol for r in tails)}): the archive's flat 0.0001 after delisting"
        )
    for why, n in sorted(report.dropped_rows.items()):
        console.print(f"rows left out: {n:,} {why}")
    conversions: dict[str, list[Path]] = defaultdict(list)
    for f, tz in report.tz_conversions:
        conversions[tz].append(f)
    for tz, files in sorted(conversions.items()):
        console.print(
            f"timezone: {len(files)} file(s) converted from {tz} to UTC (e.g. {_rel(files[0], report.root)})"
        )
    console.print(
        f"{report.files_seen} files seen, {report.files_imported} imported, {len(report.skipped)} skipped, "
        f"{len(report.ignored)} not data files; {len(report.series)} series, "
        f"{sum(s.rows for s in report.series):,} rows, {report.rows_written:,} new or changed in the store, "
        f"{report.disagreeing:,} disagreeing overlap rows, {report.elapsed_s:.1f} s"
    )
