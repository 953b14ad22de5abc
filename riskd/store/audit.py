"""``riskd data audit``: what the store holds per partition, and every run of missing rows.

Each dataset is checked on its own cadence: candles at their timeframe (``ohlcv`` hourly, ``ohlcv_5m``
every 5 minutes, ``ohlcv_1d`` daily: ``riskd.store.STEPS``); open interest on its most common
spacing (the import brings 4 h rows, a backfill hourly ones), so a 4 h series is not reported as
three missing hours out of four; funding print by print, a print being missing when the next one
comes later than its interval (``riskd.store.funding_gap_runs``). Event datasets (liquidations) have
no cadence, so nothing in them can be missing.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from riskd.store import STEPS, HistoryStore, funding_gap_runs, grid_gaps

SUMMARY_COLUMNS = [
    "dataset", "venue", "symbol", "first", "last", "rows", "step", "missing", "missing_hours",
    "gap_count", "largest_gap",
]  # fmt: skip
GAP_COLUMNS = ["dataset", "venue", "symbol", "first_missing", "last_missing", "missing", "hours"]


EVENTS = frozenset({"liquidations"})
"""Datasets of events: rows come when something happens, so no row is ever missing."""


def expected_step(dataset: str, index: pd.DatetimeIndex) -> pd.Timedelta | None:
    """The cadence a partition is checked against; None for funding (checked print by print) and events."""
    if dataset == "funding" or dataset in EVENTS:
        return None
    if dataset == "liquidations":  # riskd's own recording: one row per covered minute, a gap is missing rows
        return pd.Timedelta(minutes=1)
    if dataset == "open_interest" and len(index) > 1:
        return pd.Timedelta(pd.Series(np.diff(index.asi8)).mode().min(), unit="ms")
    return STEPS.get(dataset, pd.Timedelta(hours=1))


def partition_gaps(
    dataset: str, frame: pd.DataFrame
) -> list[tuple[pd.Timestamp, pd.Timestamp, pd.Timedelta]]:
    """Runs (first_missing, last_missing, step) of one partition's frame, between its first and last row."""
    step = expected_step(dataset, frame.index)
    if dataset in EVENTS:
        return []
    if step is None:
        return funding_gap_runs(frame)
    return [(a, b, step) for a, b in grid_gaps(frame.index, step)]


def _step_label(dataset: str, step: pd.Timedelta | None) -> str:
    if step is None:
        return "event" if dataset in EVENTS else "print"
    if step < pd.Timedelta(hours=1):
        return f"{step / pd.Timedelta(minutes=1):g}m"
    return f"{step / pd.Timedelta(hours=1):g}h"


def _selected(
    store: HistoryStore, dataset: str | None, venue: str | None, symbols: Iterable[str] | None
) -> list[tuple[str, str, str]]:
    wanted = {s.upper() for s in symbols} if symbols else None
    return [p for p in store.partitions(dataset, venue) if wanted is None or p[2] in wanted]


def _scan(
    store: HistoryStore, dataset: str | None, venue: str | None, symbols: Iterable[str] | None
) -> tuple[list[dict], list[dict]]:
    summary: list[dict] = []
    detail: list[dict] = []
    for d, v, s in _selected(store, dataset, venue, symbols):
        frame = store.read(d, v, s)
        runs = partition_gaps(d, frame)
        sizes = [int((b - a) / step) + 1 for a, b, step in runs]
        hours = [n * step for n, (_, _, step) in zip(sizes, runs, strict=True)]
        step = expected_step(d, frame.index)
        summary.append(
            {
                "dataset": d, "venue": v, "symbol": s,
                "first": frame.index.min() if len(frame) else pd.NaT,
                "last": frame.index.max() if len(frame) else pd.NaT,
                "rows": len(frame),
                "step": _step_label(d, step),
                "missing": sum(sizes),
                "missing_hours": int(sum(h / pd.Timedelta(hours=1) for h in hours)),
                "gap_count": len(runs),
                "largest_gap": max(hours) if hours else pd.Timedelta(0),
            }
        )  # fmt: skip
        detail.extend(
            {"dataset": d, "venue": v, "symbol": s, "first_missing": a, "last_missing": b, "missing": n,
             "hours": h / pd.Timedelta(hours=1)}
            for (a, b, _), n, h in zip(runs, sizes, hours, strict=True)
        )  # fmt: skip
    return summary, detail


def audit(
    store: HistoryStore,
    dataset: str | None = None,
    venue: str | None = None,
    symbols: Iterable[str] | None = None,
) -> pd.DataFrame:
    """One row per partition: span, rows, missing rows and hours, gap count, largest gap (Timedelta).

    ``missing`` counts absent rows (candles, 4 h points or prints); ``missing_hours`` the hours they
    would have covered.
    """
    summary, _ = _scan(store, dataset, venue, symbols)
    return pd.DataFrame(summary, columns=SUMMARY_COLUMNS)


def gaps(
    store: HistoryStore,
    dataset: str | None = None,
    venue: str | None = None,
    symbols: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Every run of missing rows: inclusive [first_missing, last_missing], rows and hours missing."""
    _, detail = _scan(store, dataset, venue, symbols)
    return pd.DataFrame(detail, columns=GAP_COLUMNS)


def _iso(ts: pd.Timestamp) -> str | None:
    return None if pd.isna(ts) else ts.isoformat()


def to_json(store: HistoryStore, **where: object) -> dict:
    """The audit as plain data: each partition with every gap run listed."""
    summary, detail = _scan(store, **where)  # type: ignore[arg-type]
    runs: dict[tuple[str, str, str], list[dict]] = {}
    for g in detail:
        runs.setdefault((g["dataset"], g["venue"], g["symbol"]), []).append(
            {"first_missing": _iso(g["first_missing"]), "last_missing": _iso(g["last_missing"]),
             "missing": g["missing"], "hours": g["hours"]}
        )  # fmt: skip
    out = []
    for row in summary:
        largest = row.pop("largest_gap")
        out.append(
            {
                **row,
                "first": _iso(row["first"]),
                "last": _iso(row["last"]),
                "largest_gap_hours": largest / pd.Timedelta(hours=1),
                "gaps": runs.get((row["dataset"], row["venue"], row["symbol"]), []),
            }
        )
    return {"store": str(store.root), "partitions": out}
