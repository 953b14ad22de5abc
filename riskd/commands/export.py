"""``riskd export regime --from … --to … --out FILE``: the published regime per hour, as a file.

What a backtest needs to see exactly what the daemon would have published hour by hour: the panel comes
from the store (``store_panel``, the input every path shares), the core runs once over it with the batch
path (which the suite proves equal to the daemon's live ``step``), and every hour becomes a snapshot
through ``riskd.contract.snapshot.to_snapshot`` with the data quality ``riskd replay`` gives it and the
``trading`` settings' table. One row per hour, the newest revision: the batch over the store already
holds the late and corrected data a restatement would publish. No look-ahead: the row of hour T uses
only data up to T's close (tests/test_export.py plants future data to prove it).

Columns (``EXPORT_COLUMNS``): ``hour`` (the candle's open, UTC), ``as_of`` (its close: the regime is known
from then on), ``published_at`` (``as_of`` plus ``daemon.grace_s``: when the daemon would have written
it), ``state``, ``state_code``, ``risk_multiplier``, ``trading_state``, ``data_quality``, ``cfi``,
``cfi_percentile``, ``crash_prob_24h``, ``cascade_level``, ``episode_id``, ``reasons`` (``;``-joined).
Parquet or CSV by the file's suffix; times are UTC (CSV: ISO 8601 with ``Z``).
"""

from __future__ import annotations

import argparse
import io
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from riskd.commands._args import hour_arg
from riskd.config import Settings
from riskd.contract.models import Snapshot
from riskd.contract.regime_file import SUFFIXES, regime_frame
from riskd.errors import ConfigError, DataError
from riskd.store import write_atomic

log = logging.getLogger("riskd.commands.export")

HOUR = pd.Timedelta(hours=1)


def add_parser(sub: Any) -> None:
    """The ``export`` command group's arguments (registered by riskd.cli)."""
    ex = sub.add_parser("export", help="write riskd's published history to a file (for backtests)")
    ex_sub = ex.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    rg = ex_sub.add_parser(
        "regime", help="the regime per hour as the daemon publishes it (Parquet or CSV by the suffix)"
    )
    rg.add_argument("--from", dest="start", help="first hour (open time, UTC ISO); default: the first stored")
    rg.add_argument("--to", dest="end", help="last hour (open time, UTC ISO); default: the last stored")
    rg.add_argument("--out", required=True, metavar="FILE", help="output file: NAME.parquet or NAME.csv")


def regime_snapshots(
    settings: Settings, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> list[Snapshot]:
    """The snapshots of the stored hours [start, end] (open times), through replay's batch path."""
    from riskd.commands.replay import replay_range
    from riskd.contract.snapshot import to_snapshot
    from riskd.core import compute_fragility
    from riskd.market import assess_row, store_panel
    from riskd.store import HistoryStore
    from riskd.store.model_file import load_crash_model

    store = HistoryStore(settings.store_dir)
    p = settings.fragility
    venues = settings.venues.enabled()
    primary, btc = p.funding.primary_venue, p.universe.btc_symbol
    first, last = store.first_ts("ohlcv", primary, btc), store.last_ts("ohlcv", primary, btc)
    if first is None or last is None:
        raise DataError(f"no BTC candles in the store at {settings.store_dir}: import or backfill first")
    start, end = replay_range(start, end, first.floor("h"), last.floor("h"))
    panel = store_panel(store, p, settings.universe.symbols, venues, end)
    if panel is None:
        raise DataError(f"no BTC candles before {end} in the store at {settings.store_dir}")
    frame = compute_fragility(panel, p, load_crash_model(settings))
    records = frame.to_dict("records")
    grace = pd.Timedelta(seconds=settings.daemon.grace_s)
    table = settings.trading.table()
    out = []
    for i in range(int(panel.index.searchsorted(start)), len(panel.index)):
        hour = panel.index[i]
        quality = assess_row(panel.rows(i, i + 1), venues, p)
        computed = (hour + HOUR + grace).to_pydatetime()
        out.append(
            to_snapshot(hour, records[i], computed_at=computed, quality=quality, live=False, trading=table)
        )
    return out


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write by suffix through riskd's one atomic, fsynced write: Parquet, or CSV with ISO ``Z`` times."""
    if path.suffix == ".parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        write_atomic(path, buffer.getvalue())
    else:
        write_atomic(path, frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%SZ"))


def cli_export_regime(settings: Settings, args: argparse.Namespace) -> int:
    """``riskd export regime --from … --to … --out FILE``: exit 0 when the file was written."""
    out = Path(args.out)
    if out.suffix not in SUFFIXES:
        raise ConfigError(f"invalid argument --out: {out} must end in .parquet or .csv")
    start, end = hour_arg(args.start, "--from"), hour_arg(args.end, "--to")
    if start is not None and end is not None and start > end:
        raise ConfigError(
            f"invalid argument --from: {start:%Y-%m-%d %H:%M} is after --to {end:%Y-%m-%d %H:%M}"
        )
    frame = regime_frame(regime_snapshots(settings, start, end))
    write_frame(frame, out)
    counts = frame["trading_state"].value_counts().to_dict()
    span = f"{frame['hour'].iloc[0]:%Y-%m-%d %H:%M} → {frame['hour'].iloc[-1]:%Y-%m-%d %H:%M} UTC"
    print(
        f"exported {len(frame)} hours ({span}) to {out}: "
        + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("active", "reducing", "halted"))
    )
    return 0
