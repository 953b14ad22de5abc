"""``riskd data import PATH`` (history files into the store) and ``riskd data audit`` (its missing rows)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from riskd.commands._args import symbols_arg
from riskd.config import Settings
from riskd.store import HistoryStore
from riskd.store.audit import audit, to_json


def add_parser(sub: Any) -> None:
    """``riskd data import`` and ``riskd data audit``."""
    data = sub.add_parser("data", help="the local history store")
    data_sub = data.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    imp = data_sub.add_parser(
        "import", help="load history files (freqtrade feather, Binance CSV) into the store"
    )
    imp.add_argument("path", help="a file or a folder searched recursively")
    imp.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    aud = data_sub.add_parser("audit", help="list missing hours per dataset, venue and symbol")
    aud.add_argument("--dataset", help="only this dataset")
    aud.add_argument("--venue", help="only this venue")
    aud.add_argument("--symbols", type=symbols_arg, help="only these base assets")
    aud.add_argument("--json", action="store_true", help="machine-readable output")


def cli_import(settings: Settings, args: argparse.Namespace) -> int:
    """``riskd data import PATH``: exit 0 when something was imported, 1 when nothing was."""
    from riskd.importer import import_path, print_report

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


def _fmt(ts: pd.Timestamp) -> str:
    return "" if pd.isna(ts) else ts.strftime("%Y-%m-%d %H:%M")


def cli_audit(settings: Settings, args: argparse.Namespace) -> int:
    """``riskd data audit``: a table (or JSON with every gap run); exit 1 when nothing matches."""
    store = HistoryStore(settings.store_dir)
    where = {"dataset": args.dataset, "venue": args.venue, "symbols": args.symbols}
    if args.json:
        data = to_json(store, **where)
        print(json.dumps(data, indent=2))
        return 0 if data["partitions"] else 1
    frame = audit(store, **where)
    if frame.empty:
        print(f"riskd: no matching partitions in {store.root}", file=sys.stderr)
        return 1
    table = Table(title=f"store audit: {store.root}")
    for col in (
        "dataset",
        "venue",
        "symbol",
        "first",
        "last",
        "rows",
        "step",
        "missing h",
        "gaps",
        "largest",
    ):
        table.add_column(col, justify="left" if col in ("dataset", "venue", "symbol") else "right")
    for r in frame.itertuples(index=False):
        largest = r.largest_gap / pd.Timedelta(hours=1)
        table.add_row(
            r.dataset,
            r.venue,
            r.symbol,
            _fmt(r.first),
            _fmt(r.last),
            str(r.rows),
            r.step,
            f"[yellow]{r.missing_hours}[/yellow]" if r.missing_hours else "0",
            str(r.gap_count),
            f"{largest:g}h" if largest else "",
        )
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 140)
    console.print(table)
    return 0
