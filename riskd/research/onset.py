"""Where a cascade starts and ends, from BTC's minute closes alone. Pure.

The hourly path says *which* hours were cascades; the time from the cascade's start to a warning needs
a start that does not depend on any detector. Per cascade (event hours one hour apart are one cascade):

- **trough**: the lowest close from the first event hour's open to ``after_minutes`` past the last
  event hour's close (a fall often runs a little past the hour that the hourly path flags);
- **onset, "last high"** (definition A): the last bar before the trough whose close is the highest of
  the ``high_window_minutes`` before it and is never reached again until the trough (price falls from
  there to the trough without a new high), and whose fall to the trough is at least ``min_share`` of
  the largest fall into the trough within ``lookback_minutes`` (so a small bounce late in a fall is
  not taken for the start). A bar that is the highest of the hour before it is a top a trader would
  name; one only higher than the bars after it (every bar of a steady fall) is not;
- **onset, "10 % done"** (definition B): the bar from which the close stays at least ``done_share`` of
  the onset-to-trough fall below onset A until the trough (the last crossing, so a price that hovers just
  under its high for an hour before falling starts the clock when it leaves for good); a second clock,
  so a figure does not rest on one choice.

Times are bar **close** times (a bar indexed by its open ``t`` closes at ``t + bar``): the onset is when
the high printed, a warning is when its bar closed. Two cascades whose onset-to-trough spans overlap
(adjacent event hours that share one fall) are merged into one, so each fall counts once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

HOUR = pd.Timedelta(hours=1)
CASCADE_COLUMNS = (
    "first_as_of",
    "last_as_of",
    "event_hours",
    "peak_at",
    "onset_at",
    "onset_close",
    "onset10_at",
    "trough_at",
    "trough_close",
    "fall",
    "fall_minutes",
)


@dataclass(frozen=True)
class OnsetRule:
    """How onset and trough are read from the closes (module docstring); fixed for every event."""

    high_window_minutes: int = 30
    lookback_minutes: int = 240
    min_share: float = 0.5
    after_minutes: int = 30
    done_share: float = 0.1


def _bar(close: pd.Series) -> pd.Timedelta:
    """The bar length of a regular close series (its most common step)."""
    steps = close.index.to_series().diff().dropna()
    return steps.mode().iloc[0] if len(steps) else pd.Timedelta(minutes=1)


def clusters(event_hours: pd.DatetimeIndex) -> list[tuple[pd.Timestamp, pd.Timestamp, int]]:
    """Runs of event hours (by hour end) one hour apart: (first, last, count)."""
    hours = sorted(pd.DatetimeIndex(event_hours))
    out: list[tuple[pd.Timestamp, pd.Timestamp, int]] = []
    for h in hours:
        if out and h - out[-1][1] <= HOUR:
            first, _, n = out[-1]
            out[-1] = (first, h, n + 1)
        else:
            out.append((h, h, 1))
    return out


def onset_before(values: np.ndarray, trough: int, rule: OnsetRule, bars_per_minute: float) -> tuple[int, int]:
    """(onset A, peak) positions for the trough at position ``trough`` of the closes ``values``.

    Vectorised over the lookback: a candidate is a strict backward record (higher than every close
    after it up to the trough) that is also the highest close of the ``high_window_minutes`` before it.
    """
    look = max(1, int(rule.lookback_minutes * bars_per_minute))
    win = max(1, int(rule.high_window_minutes * bars_per_minute))
    lo = max(0, trough - look)
    seg = values[lo : trough + 1]
    peak = lo + len(seg) - 1 - int(np.nanargmax(seg[::-1]))  # the latest of equal highs
    total = values[peak] - values[trough]
    if not total > 0:
        return trough, trough
    after_max = np.maximum.accumulate(np.where(np.isnan(seg), -np.inf, seg)[::-1])[::-1]
    later = np.append(after_max[1:], -np.inf)
    before = pd.Series(values[max(0, lo - win) : trough + 1]).rolling(win + 1, min_periods=1).max()
    local_high = before.to_numpy()[-len(seg) :]
    ok = (seg > later) & (seg >= local_high) & (seg - values[trough] >= rule.min_share * total)
    idx = np.flatnonzero(ok[: len(seg) - 1])
    return (lo + int(idx[-1]), peak) if len(idx) else (peak, peak)


def cascades(close: pd.Series, event_hours: pd.DatetimeIndex, rule: OnsetRule | None = None) -> pd.DataFrame:
    """One row per cascade (``CASCADE_COLUMNS``) for the hourly events ``event_hours`` (hour ends).

    ``close``: BTC closes on a regular bar grid indexed by bar open time (UTC). ``fall`` is the
    onset-to-trough return (negative fraction), ``fall_minutes`` its length.
    """
    r = rule or OnsetRule()
    bar = _bar(close)
    per_minute = pd.Timedelta(minutes=1) / bar
    values = close.to_numpy(dtype="float64")
    spans = []
    for first, last, n in clusters(event_hours):
        lo = close.index.searchsorted(first - HOUR)
        hi = close.index.searchsorted(last + pd.Timedelta(minutes=r.after_minutes) - bar, side="right")
        if hi <= lo or np.isnan(values[lo:hi]).all():
            continue
        trough = lo + int(np.nanargmin(values[lo:hi]))
        onset, peak = onset_before(values, trough, r, per_minute)
        spans.append([first, last, n, peak, onset, trough])
    merged: list[list] = []
    for span in spans:  # a fall that two clusters share (their onset-to-trough spans overlap) counts once
        if merged and span[4] <= merged[-1][5]:
            prev = merged.pop()
            trough = prev[5] if values[prev[5]] <= values[span[5]] else span[5]
            onset, peak = onset_before(values, trough, r, per_minute)
            span = [prev[0], span[1], prev[2] + span[2], peak, onset, trough]
        merged.append(span)
    rows = [_row(close, values, bar, r, *m) for m in merged]
    return pd.DataFrame(rows, columns=list(CASCADE_COLUMNS))


def _row(
    close: pd.Series,
    values: np.ndarray,
    bar: pd.Timedelta,
    r: OnsetRule,
    first: pd.Timestamp,
    last: pd.Timestamp,
    n: int,
    peak: int,
    onset: int,
    trough: int,
) -> dict:
    top, low = values[onset], values[trough]
    target = top - r.done_share * (top - low)
    above = np.flatnonzero(values[onset : trough + 1] > target)  # NaN (a gap) is not above
    done = min(onset + int(above[-1]) + 1, trough) if trough > onset else onset
    at = lambda i: close.index[i] + bar  # noqa: E731 - a bar's close time
    return {
        "first_as_of": first,
        "last_as_of": last,
        "event_hours": n,
        "peak_at": at(peak),
        "onset_at": at(onset),
        "onset_close": top,
        "onset10_at": at(done),
        "trough_at": at(trough),
        "trough_close": low,
        "fall": low / top - 1.0,
        "fall_minutes": (at(trough) - at(onset)) / pd.Timedelta(minutes=1),
    }


def fall_clock(
    close: pd.Series, table: pd.DataFrame, drops: tuple[float, ...] = (0.01, 0.02)
) -> pd.DataFrame:
    """Per cascade, minutes from onset A until the close is first ``drop`` below the onset close
    (``min_to_1pct`` …) and until half the fall is done (``min_to_half``): how soon any warning that
    waits for BTC to move that far could come, whatever it is confirmed by."""
    bar = _bar(close)
    rows = []
    for c in table.to_dict("records"):
        seg = close[(close.index + bar > c["onset_at"]) & (close.index + bar <= c["trough_at"])]
        minutes = (seg.index + bar - c["onset_at"]) / pd.Timedelta(minutes=1)
        down = 1.0 - seg.to_numpy(dtype="float64") / c["onset_close"]
        half = (c["onset_close"] - c["trough_close"]) / c["onset_close"] / 2
        row = {f"min_to_{x * 100:g}pct": _first(minutes, down >= x) for x in drops}
        row["min_to_half"] = _first(minutes, down >= half)
        rows.append(row)
    return pd.DataFrame(rows, index=table.index)


def _first(minutes: pd.Index, hit: np.ndarray) -> float:
    idx = np.flatnonzero(hit)
    return float(minutes[idx[0]]) if len(idx) else float("nan")
