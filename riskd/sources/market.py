"""The venue-independent shapes an adapter works in: a listed market, a page of raw rows, the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

Clock = Callable[[], pd.Timestamp]
FUNDING_CONTEXT = pd.Timedelta(hours=24)
"""Prints fetched before a range's start so the first print's interval is inferred as in one piece."""


def utc_now() -> pd.Timestamp:
    """The wall clock, UTC; sources take any other clock for replays and tests."""
    return pd.Timestamp.now(tz="UTC")


@dataclass(frozen=True)
class Market:
    """One perpetual as a venue lists it, keyed by riskd's canonical base asset."""

    base: str
    listed: str
    symbol: str
    id: str
    listed_at: pd.Timestamp | None
    funding_hours: float | None


@dataclass(frozen=True)
class Page:
    """Raw rows of one request and whether the venue's row limit may have cut it short."""

    rows: list[Any]
    full: bool


def interval_hours(value: Any) -> float | None:
    """``"8h"`` → 8.0; anything else None."""
    if isinstance(value, str) and value.endswith("h") and value[:-1].isdigit():
        return float(value[:-1])
    return None


def ms_ts(ms: Any) -> pd.Timestamp | None:
    """Epoch milliseconds → UTC Timestamp; falsy → None."""
    return pd.Timestamp(int(ms), unit="ms", tz="UTC") if ms else None


def to_float(v: Any) -> float:
    """A number, or NaN for what is not one."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")
