"""The regime export's format (``riskd export regime``): one row per hour, the newest revision, as the daemon
publishes it. A promise to its readers (the freqtrade integration backtests on it), so it lives with the
contract: the columns, how a list of snapshots becomes the frame, and how a file reads back.

Columns (:data:`EXPORT_COLUMNS`): ``hour`` (the candle's open, UTC), ``as_of`` (its close: the regime is known
from then on), ``published_at`` (when the daemon would have written it), ``state``, ``state_code``,
``risk_multiplier``, ``trading_state``, ``data_quality``, ``cfi``, ``cfi_percentile``, ``crash_prob_24h``,
``cascade_level``, ``episode_id``, ``reasons`` (``;``-joined). Parquet or CSV by the suffix; times are UTC.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from riskd.contract.models import Snapshot

HOUR = pd.Timedelta(hours=1)
EXPORT_COLUMNS: tuple[str, ...] = (
    "hour",
    "as_of",
    "published_at",
    "state",
    "state_code",
    "risk_multiplier",
    "trading_state",
    "data_quality",
    "cfi",
    "cfi_percentile",
    "crash_prob_24h",
    "cascade_level",
    "episode_id",
    "reasons",
)
SUFFIXES = (".parquet", ".csv")


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
