"""Gap arithmetic over stored rows (pure): missing grid points, missing funding prints."""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskd.store.schema import FUNDING_TOLERANCE, Bound, to_utc


def _runs(missing: np.ndarray, step_ns: int) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Group sorted int64-ns grid points into runs of consecutive points."""
    if not len(missing):
        return []
    breaks = np.flatnonzero(np.diff(missing) != step_ns) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks - 1, [len(missing) - 1]])
    ts = pd.to_datetime(missing, unit="ns", utc=True)
    return [(ts[a], ts[b]) for a, b in zip(starts, ends, strict=True)]


def grid_gaps(
    index: pd.DatetimeIndex, freq: str = "1h", start: Bound = None, end: Bound = None
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Runs of grid points absent from ``index``; grid over [first, last] or [start, end)."""
    step = pd.Timedelta(freq)
    lo, hi = to_utc(start), to_utc(end)
    have = index.as_unit("ns").asi8
    if lo is not None:
        have = have[have >= lo.value]
    if hi is not None:
        have = have[have < hi.value]
    if not len(have) and (lo is None or hi is None):
        return []
    first = lo.ceil(step) if lo is not None else pd.Timestamp(have.min(), tz="UTC")
    last = (hi - pd.Timedelta(1, "ns")).floor(step) if hi is not None else pd.Timestamp(have.max(), tz="UTC")
    if last < first:
        return []
    grid = np.arange(first.value, last.value + 1, step.value, dtype="int64")
    return _runs(grid[~np.isin(grid, have)], step.value)


def funding_gaps(
    frame: pd.DataFrame, start: Bound = None, end: Bound = None
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Missing funding prints as inclusive runs of the times they were due (see :func:`funding_gap_runs`)."""
    return [(a, b) for a, b, _ in funding_gap_runs(frame, start, end)]


def funding_gap_runs(
    frame: pd.DataFrame, start: Bound = None, end: Bound = None
) -> list[tuple[pd.Timestamp, pd.Timestamp, pd.Timedelta]]:
    """Missing funding prints as (first_due, last_due, interval) runs.

    A print is due one interval after the previous one, where the interval is the one reported (or
    inferred) on the *next* print: that is the period it settles, so a venue switching from 4 h to
    8 h prints is not mistaken for a gap. Print times are compared with :data:`FUNDING_TOLERANCE`.
    """
    lo, hi = to_utc(start), to_utc(end)
    if lo is not None:
        frame = frame[frame.index >= lo]
    if hi is not None:
        frame = frame[frame.index < hi]
    if frame.empty:
        if lo is None or hi is None or lo >= hi:
            return []
        return [(lo, hi - pd.Timedelta(hours=1), pd.Timedelta(hours=1))]
    t = frame.index.as_unit("ns").round("min").asi8
    step = (frame["interval_hours"].to_numpy() * 3600e9).astype("int64")
    runs: list[tuple[int, int, int]] = []
    if lo is not None and (n := int((t[0] - lo.value) // step[0])) > 0:
        runs.append((t[0] - n * step[0], t[0] - step[0], step[0]))
    gap = np.diff(t)
    for i in np.flatnonzero(gap > step[1:] + FUNDING_TOLERANCE.value):
        s = step[i + 1]
        n = max(1, round(gap[i] / s) - 1)
        runs.append((t[i] + s, t[i] + n * s, s))
    if hi is not None and (n := int((hi.value - t[-1] - 1) // step[-1])) > 0:
        runs.append((t[-1] + step[-1], t[-1] + n * step[-1], step[-1]))
    return [(pd.Timestamp(a, tz="UTC"), pd.Timestamp(b, tz="UTC"), pd.Timedelta(s)) for a, b, s in runs]
