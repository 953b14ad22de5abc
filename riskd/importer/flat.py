"""Binance's post-delisting funding tail: the archive keeps printing a flat 0.0001 after a contract stops.

The rule (docs/data.md, Flat funding tails), on the stitched series of one Binance symbol:

* a *flat run* is a stretch of consecutive prints all exactly :data:`FLAT_RATE`;
* the run at the **end** of the series is the post-delisting tail, and dropped, when it spans at least
  :data:`MIN_SPAN` (first to last print) and holds at least :data:`MIN_PRINTS` prints;
* a run that is followed by a print of another value is kept whatever its length: live contracts sit at
  the 0.01 % floor for weeks (Jan–Feb 2024, up to 51 days on the shared data) and nothing in the prints
  tells a long live stretch from a relisting. Kept runs as long as a tail are listed in the summary.

Why these numbers: the longest run of a live contract on the shared data is 51 days (XLM 2021, ALGO
2020); the delisting tails are 664–793 days (MATIC, FTT, RAY, WAVES). A tail shorter than 60 days is
indistinguishable from a series that simply ends during a quiet stretch (MKR, January 2024), so it
stays. ``MIN_PRINTS`` keeps a handful of prints scattered over missing months from counting as
evidence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FLAT_RATE = 1e-4
MIN_SPAN = pd.Timedelta(days=60)
MIN_PRINTS = 90


def flat_runs(rate: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) positions of every run of prints exactly equal to :data:`FLAT_RATE`."""
    flat = np.concatenate([[0], (rate == FLAT_RATE).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(flat))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _long(index: pd.DatetimeIndex, start: int, stop: int) -> bool:
    return stop - start >= MIN_PRINTS and index[stop - 1] - index[start] >= MIN_SPAN


def split_flat_tail(
    frame: pd.DataFrame,
) -> tuple[pd.DataFrame, list[tuple[pd.Timestamp, pd.Timestamp, int, bool]]]:
    """The funding frame without its post-delisting tail, and every run as long as a tail as
    (first, last, prints, dropped), so the summary can list the kept ones too."""
    rate = frame["rate"].to_numpy(dtype=float)
    runs = [(a, b) for a, b in flat_runs(rate) if _long(frame.index, a, b)]
    out = [(frame.index[a], frame.index[b - 1], b - a, b == len(rate)) for a, b in runs]
    if runs and runs[-1][1] == len(rate):
        return frame.iloc[: runs[-1][0]], out
    return frame, out
