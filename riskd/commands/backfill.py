"""``riskd backfill``: history from the venues into the store (concurrent, resumable; :mod:`riskd.market.backfill`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from riskd.commands._args import csv_arg, hour_arg, symbols_arg
from riskd.config import VENUES, Settings
from riskd.market.backfill import DATASETS, backfill, choose, render
from riskd.store import HistoryStore


def add_parser(sub: Any) -> None:
    """``riskd backfill``'s arguments."""
    bf = sub.add_parser("backfill", help="fetch history from the venues into the store (resumable)")
    bf.add_argument("--since", help="first hour, ISO date (default: backfill.since)")
    bf.add_argument("--until", help="last hour, exclusive, ISO date (default: the last closed hour)")
    bf.add_argument(
        "--symbols", type=symbols_arg, help="comma-separated base assets (default: universe.symbols)"
    )
    bf.add_argument("--venues", type=csv_arg, help="comma-separated venues (default: all enabled)")
    bf.add_argument("--datasets", type=csv_arg, help="comma-separated: ohlcv,funding,open_interest")
    bf.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")


def cli_backfill(settings: Settings, args: argparse.Namespace) -> int:
    """``riskd backfill``: exit 0 when complete, 1 when some range could not be fetched."""
    since = (
        hour_arg(args.since, "--since") if args.since else pd.Timestamp(settings.backfill.since).floor("h")
    )
    until = hour_arg(args.until, "--until") if args.until else None
    venues = choose(args.venues, VENUES, "--venues")
    datasets = choose(args.datasets, DATASETS, "--datasets")
    symbols = [s.upper() for s in args.symbols] if args.symbols else None
    store = HistoryStore(settings.store_dir)
    console = Console(stderr=True)
    show = not args.no_progress and sys.stderr.isatty()
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not show) as progress:
        report = asyncio.run(
            backfill(
                settings,
                store,
                since=since,
                until=until,
                symbols=symbols,
                venues=venues,
                datasets=datasets,
                progress=progress,
            )
        )
    render(report, Console())
    return 0 if report.complete else 1
