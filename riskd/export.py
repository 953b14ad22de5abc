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
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from riskd.arguments import hour_arg
from riskd.contract.models import Snapshot
from riskd.errors import ConfigError, DataError
from riskd.settings import Settings

log = logging.getLogger("riskd.export")

HOUR = pd.Timedelta(hours=1)
EXPORT_COLUMNS: tuple[str, ...] = (
    "hour", "as_of", "published_at", "state", "state_code", "risk_multiplier", "trading_state",
    "data_quality", "cfi", "cfi_percentile", "crash_prob_24h", "cascade_level", "episode_id", "reasons",
)  # fmt: skip
SUFFIXES = (".parquet", ".csv")


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
    from riskd.contract.snapshot import to_snapshot
    from riskd.core import compute_fragility
    from riskd.crash_model import load_crash_model
    from riskd.live import assess_row, store_panel
    from riskd.replay import replay_range
    from riskd.store import HistoryStore

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


def regime_frame(snapshots: list[Snapshot]) -> pd.DataFrame:
    """One row per snapshot, the :data:`EXPORT_COLUMNS`, oldest first (times as UTC timestamps)."""
    rows = [
        {
            "hour": pd.Timestamp(s.as_of) - HOUR,
            "as_of": pd.Timestamp(s.as_of),
            "published_at": pd.Timestamp(s.computed_at),
            "state": s.state,
            "state_code": s.state_code,
            "risk_multiplier": s.risk_multiplier,
            "trading_state": s.trading_state,
            "data_quality": s.data_quality.status,
            "cfi": s.cfi,
            "cfi_percentile": s.cfi_percentile,
            "crash_prob_24h": s.crash_prob_24h,
            "cascade_level": s.cascade_level,
            "episode_id": s.episode_id,
            "reasons": ";".join(s.reasons),
        }
        for s in snapshots
    ]
    frame = pd.DataFrame(rows, columns=list(EXPORT_COLUMNS))
    for col in ("hour", "as_of", "published_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write by suffix, atomically (a reader never sees half a file): Parquet, or CSV with ISO ``Z`` times."""
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    os.replace(tmp, path)


def read_regime_file(path: str | Path) -> pd.DataFrame:
    """An exported file back as a frame (the freqtrade integration's backtest source), by suffix."""
    path = Path(path)
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif path.suffix == ".csv":
        frame = pd.read_csv(path)
    else:
        raise ValueError(f"{path}: a regime export ends in .parquet or .csv")
    for col in ("hour", "as_of", "published_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame.sort_values("as_of").reset_index(drop=True)


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
