"""The latest funding per venue and symbol, as ``/funding`` shows it (``<prefix>:funding``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd


def funding_table(frames: Mapping[tuple[str, str, str], pd.DataFrame], as_of: pd.Timestamp) -> dict[str, Any]:
    """The latest funding print per (venue, symbol) in ``frames`` (``MarketCache.frames``), as JSON-ready rows.

    Rates are fractions: ``rate`` per interval, ``rate_per_hour``, ``rate_per_8h`` (= per hour × 8, so venues
    with 1 h and 8 h intervals compare); ``next_funding_time`` is the last print plus its interval. Only
    prints at or before ``as_of`` count; what ``/funding`` shows (``<prefix>:funding``).
    """
    rows = []
    for (dataset, venue, symbol), frame in sorted(frames.items()):
        if dataset != "funding" or frame.empty:
            continue
        at = int(frame.index.searchsorted(as_of, side="right")) - 1  # the last print at or before as_of
        if at < 0:
            continue
        ts = frame.index[at]
        hours = float(frame["interval_hours"].to_numpy()[at])
        per_hour = float(frame["rate_per_hour"].to_numpy()[at])
        if not np.isfinite(per_hour):
            continue
        rows.append({
            "venue": venue, "symbol": symbol, "rate": float(frame["rate"].to_numpy()[at]), "interval_hours": hours,
            "rate_per_hour": per_hour, "rate_per_8h": per_hour * 8, "funding_time": ts.isoformat(),
            "next_funding_time": (ts + pd.Timedelta(hours=hours)).isoformat(),
        })  # fmt: skip
    return {"as_of": pd.Timestamp(as_of).isoformat(), "rows": rows}
