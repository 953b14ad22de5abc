"""The alert a trader sets without riskd, "BTC down X % within N minutes", and how X and N are chosen. Pure.

The alert fires on a bar whose close is at least ``drop`` below the highest close of the ``minutes``
before it (that bar included). X and N are chosen once, on a training span, by :func:`fit_plain_alert`
with the same objective the detector's thresholds are tuned to (:func:`riskd.research.latency.objective`), then fixed: the
comparison after the cut is out of sample for both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import pandas as pd

from riskd.research.latency import LatencyScore, objective, score


@dataclass(frozen=True)
class PlainAlert:
    """ "BTC down ``drop`` (fraction, positive) from its ``minutes``-minute high"."""

    drop: float
    minutes: int

    def label(self) -> str:
        """How a trader would write it."""
        return f"BTC down {self.drop * 100:g} % within {self.minutes} min"


PLAIN_ALERT = PlainAlert(drop=0.03, minutes=30)
"""The fixed plain alert of the report: chosen by :func:`fit_plain_alert` on the Binance perp 5-minute bars
before ``TRAIN_END`` (docs/features.md, Provisional intra-hour detector)."""

GRID_DROPS = (0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05)
GRID_MINUTES = (5, 10, 15, 30, 60, 120)
T = TypeVar("T")


def plain_firing(close: pd.Series, alert: PlainAlert, bar_minutes: int) -> pd.Series:
    """Per bar (open time), whether the close is ``drop`` below the ``minutes``-minute high."""
    bars = max(1, alert.minutes // bar_minutes) + 1
    high = close.rolling(bars, min_periods=1).max()
    return (close <= high * (1 - alert.drop)).rename("firing")


def best(
    candidates: Iterable[T], scorer: Callable[[T], LatencyScore], until: pd.Timestamp, budget: float
) -> tuple[T, float]:
    """The candidate with the lowest :func:`objective` on the span before ``until``."""
    ranked = [(objective(scorer(c), None, until, budget), i, c) for i, c in enumerate(candidates)]
    value, _, choice = min(ranked, key=lambda r: (r[0], r[1]))
    return choice, value


def fit_plain_alert(
    close: pd.Series, cascades: pd.DataFrame, bar_minutes: int, until: pd.Timestamp, budget: float = 1.5
) -> tuple[PlainAlert, float]:
    """X and N on the bars before ``until``: the grid point with the best :func:`objective`."""
    bar = pd.Timedelta(minutes=bar_minutes)
    grid = [PlainAlert(d, m) for d in GRID_DROPS for m in GRID_MINUTES if m >= bar_minutes]
    return best(
        grid, lambda a: score(close, plain_firing(close, a, bar_minutes), cascades, bar), until, budget
    )
