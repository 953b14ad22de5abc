"""What a crash is: riskd's one crash definition, its hourly labels, and when each label is known.

Every part that needs a crash label (the CFI tail risk, the component study, the signals out of sample,
the crash-probability model that ``riskd calibrate`` fits and the daemon publishes) builds it here, from
one :class:`CrashDefinition` (the ``validation.crash_*`` settings). **One comparison**: a move counts
when it is **at or below** the threshold (``≤``; e.g. a drop of exactly −5.00 % is a crash at −5 %).

The label of hour T looks at hours T + 1 … T + horizon, so it is known once candle T + horizon has
closed, at T + horizon + 1 h (:func:`label_known_at`): a fit or a base rate dated F may use the label
of T only when T + horizon + 1 h ≤ F.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

CrashKind = Literal["return", "drawdown", "cascade"]
HOUR = pd.Timedelta(hours=1)


@dataclass(frozen=True)
class CrashDefinition:
    """What counts as a crash after hour ``T`` (the label of row ``T``).

    - ``return``: BTC's return from the close of ``T`` to the close of ``T + horizon_h`` is at or below
      ``threshold``;
    - ``drawdown`` (the default): some hourly close in ``T + 1 … T + horizon_h`` is at or below
      ``(1 + threshold)`` × the close of ``T`` (a path crash, even if it recovers by the end: what
      liquidates a leveraged position);
    - ``cascade``: the cascade detector fires in one of the hours ``T + 1 … T + horizon_h``.
    """

    kind: CrashKind = "drawdown"
    horizon_h: int = 24
    threshold: float = -0.05

    def describe(self) -> str:
        """One sentence for the report."""
        if self.kind == "cascade":
            return f"a cascade event in the next {self.horizon_h} h"
        what = "return" if self.kind == "return" else "drawdown (lowest hourly close)"
        return f"BTC {what} over the next {self.horizon_h} h at or below {self.threshold:+.1%}"


def all_kinds(definition: CrashDefinition) -> dict[str, CrashDefinition]:
    """The three kinds at ``definition``'s horizon and threshold, by kind (the research's claims are
    shown under each: it does not say which it meant)."""
    return {
        kind: CrashDefinition(kind, definition.horizon_h, definition.threshold)
        for kind in ("return", "drawdown", "cascade")
    }


def crash_labels(
    close: pd.Series, definition: CrashDefinition, cascade: pd.Series | None = None
) -> pd.Series:
    """1.0 where a crash follows the hour, 0.0 where none does, NaN where it cannot be told.

    NaN: the close of T is missing, the window runs past the data, or (drawdown) fewer than half of the
    window's closes exist and none of them crosses; (return) the close of T + horizon is missing.
    ``close`` is hourly on a regular grid (gaps as NaN); ``cascade`` (bool per hour) is needed for the
    ``cascade`` kind only.
    """
    c = close.astype(float).to_numpy()
    h, n = definition.horizon_h, len(c)
    out = np.full(n, np.nan)
    if definition.kind == "cascade":
        if cascade is None:
            raise ValueError("the 'cascade' crash definition needs the cascade event flags")
        fired = cascade.reindex(close.index).fillna(False).to_numpy(dtype=float)
        if n > h:
            out[: n - h] = sliding_window_view(fired[1:], h).max(axis=1)
        return pd.Series(out, index=close.index, name="crash")
    if n > h:
        with np.errstate(invalid="ignore", divide="ignore"):
            if definition.kind == "return":
                move = c[h:] / c[: n - h] - 1.0
                out[: n - h] = np.where(np.isnan(move), np.nan, move <= definition.threshold)
            else:
                out[: n - h] = _drawdown_label(c, h, definition.threshold)
    out[np.isnan(c)] = np.nan
    return pd.Series(out, index=close.index, name="crash")


def _drawdown_label(c: np.ndarray, h: int, threshold: float) -> np.ndarray:
    """Rows 0 … n − h − 1: 1 when a close of the next ``h`` is at or below (1 + threshold) × this one."""
    windows = sliding_window_view(c[1:], h)  # row t: closes t + 1 … t + h
    present = (~np.isnan(windows)).sum(axis=1)
    with warnings.catch_warnings():  # an all-NaN window is a NaN label, on purpose
        warnings.simplefilter("ignore", RuntimeWarning)
        low = np.nanmin(windows, axis=1)
    here = c[: len(low)]
    hit = low / here - 1.0 <= threshold
    return np.where(hit, 1.0, np.where(present * 2 >= h, 0.0, np.nan))


def label_known_at(index: pd.DatetimeIndex, horizon_h: int) -> pd.DatetimeIndex:
    """When each row's label is known: the close of candle T + horizon, i.e. T + (horizon + 1) h."""
    return index + (horizon_h + 1) * HOUR


def known_mask(index: pd.DatetimeIndex, horizon_h: int, at: pd.Timestamp) -> np.ndarray:
    """Rows whose label is known at ``at`` (:func:`label_known_at` ≤ ``at``)."""
    return np.asarray(label_known_at(index, horizon_h) <= at)


def episode_count(labels: pd.Series, gap_h: int = 24) -> int:
    """Separate crash episodes behind the crash hours: a crash hour more than ``gap_h`` hours after the
    previous one starts a new episode (one fall labels up to ``horizon`` hours before it, so crash hours
    within a horizon of each other are one event). The sample's real size, far below its crash hours."""
    hours = pd.DatetimeIndex(labels.index[labels.to_numpy(dtype=float) == 1.0])
    if not len(hours):
        return 0
    gaps = np.diff(hours.as_unit("ns").asi8)
    return int(1 + (gaps > gap_h * HOUR.value).sum())
