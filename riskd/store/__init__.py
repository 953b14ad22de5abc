"""The history store (hive Parquet, one file per year) and riskd's other files, written atomically."""

from riskd.store.files import write_atomic, write_durably
from riskd.store.gaps import funding_gap_runs, funding_gaps, grid_gaps
from riskd.store.history import HistoryStore
from riskd.store.schema import (
    CANDLE_TIMEFRAMES,
    DATASETS,
    FUNDING_TOLERANCE,
    HOURLY,
    SCHEMAS,
    STEPS,
    candle_dataset,
    empty_frame,
    to_utc,
)

__all__ = [
    "CANDLE_TIMEFRAMES",
    "DATASETS",
    "FUNDING_TOLERANCE",
    "HOURLY",
    "SCHEMAS",
    "STEPS",
    "HistoryStore",
    "candle_dataset",
    "empty_frame",
    "funding_gap_runs",
    "funding_gaps",
    "grid_gaps",
    "to_utc",
    "write_atomic",
    "write_durably",
]
