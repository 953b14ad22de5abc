"""When the daemon wakes: pure time arithmetic, no clock (the caller passes ``now``)."""

from __future__ import annotations

import pandas as pd

HOUR = pd.Timedelta(hours=1)


def last_closed_hour(now: pd.Timestamp) -> pd.Timestamp:
    """Open time of the newest candle closed at ``now`` (the candle [T, T+1h) closes at T+1h)."""
    return pd.Timestamp(now).floor("h") - HOUR


def next_run(now: pd.Timestamp, grace: pd.Timedelta, done_through: pd.Timestamp | None) -> pd.Timestamp:
    """The moment to run the next cycle.

    ``done_through`` is the open time of the last hour computed. A closed hour not yet computed is due
    at its close plus ``grace`` (venues finalise candles late) — at once if that moment has passed;
    otherwise the next hour close plus ``grace``.
    """
    now = pd.Timestamp(now)
    newest = last_closed_hour(now)
    if done_through is None or done_through < newest:
        due = newest + HOUR + grace
        if due <= now:
            return now
        # inside the grace period of the newest hour: the hour before it may still be pending
        if done_through is None or done_through < newest - HOUR:
            return now
        return due
    return newest + 2 * HOUR + grace
