"""Stitching overlapping files of one series, and the agreement checks on their overlap.

* **Which value wins:** the file whose data ends latest (the most recent download: Binance has
  finalised its candles by then, while an older download may end in a candle that was still open);
  ties go to the longer span, then to the path name, so the result never depends on walk order.
  Other files only add rows the winner lacks, and fill cells it leaves empty (``quote_volume``)
  on rows where both agree. Open interest prefers the 4 h series over the 1 d one outright.
* **Agreement on overlaps:** prices and funding rates within a relative 1e-9 (absolute 1e-12 for
  rates, which can be 0); volumes, open interest and liquidation totals within a relative 1e-6
  (Binance may revise a volume slightly). A cell empty in either file is not compared. Rows are
  matched by time rounded to the minute (Binance stamps funding prints a few ms late, differently
  per download).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskd.importer.model import Disagreement, Piece, SeriesReport
from riskd.sources.normalize import infer_intervals
from riskd.store import SCHEMAS

PRICE_RTOL = 1e-9
VOLUME_RTOL = 1e-6
RATE_ATOL = 1e-12
_TOLERANCE: dict[str, tuple[float, float]] = {
    **{c: (PRICE_RTOL, 0.0) for c in ("open", "high", "low", "close")},
    **{
        c: (VOLUME_RTOL, 0.0)
        for c in ("volume", "quote_volume", "open_interest", "open_interest_value", "notional_usd")
    },
    "rate": (PRICE_RTOL, RATE_ATOL),
}


def _priority(piece: Piece) -> tuple:
    idx = piece.frame.index
    return (piece.rank, idx.max(), idx.max() - idx.min(), str(piece.path))


def stitch(dataset: str, venue: str, symbol: str, pieces: list[Piece]) -> tuple[pd.DataFrame, SeriesReport]:
    """One frame for the series out of overlapping files, and the report of their agreement."""
    order = sorted(pieces, key=_priority, reverse=True)
    series = SeriesReport(dataset, venue, symbol, list(dict.fromkeys(p.path for p in order)))
    acc = _keyed(order[0].frame, 0)
    for i, piece in enumerate(order[1:], start=1):
        other = _keyed(piece.frame, i)
        common = acc.index.intersection(other.index)
        if len(common):
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
        frame = funding_columns(frame)
    frame = frame.reindex(columns=list(SCHEMAS[dataset]))  # an optional column a source lacks is NaN
    series.rows, series.first, series.last = len(frame), frame.index.min(), frame.index.max()
    return frame, series


def _keyed(frame: pd.DataFrame, source: int) -> pd.DataFrame:
    """The frame indexed by row identity (time to the minute), the exact time kept in ``ts``, the
    file it came from in ``_src``."""
    keyed = frame.reset_index(names="ts").assign(_src=source)
    ms = frame.index.as_unit("ms").asi8
    keyed.index = pd.Index((ms + 30_000) // 60_000 * 60_000, name="key")  # to the nearest minute
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
    """Cells empty in ``acc`` taken from ``other`` on rows where the two agree."""
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


def funding_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Intervals not reported by the file inferred from the spacing of prints, and the hourly rate."""
    inferred = frame["interval_hours"].isna().to_numpy()
    frame = frame.copy()
    if inferred.any():
        # the same rule as the live sources, so imported and fetched prints agree
        frame.loc[inferred, "interval_hours"] = infer_intervals(frame.index, fallback_hours=8.0)[inferred]
    frame["interval_inferred"] = inferred
    frame["rate_per_hour"] = frame["rate"] / frame["interval_hours"]
    return frame
