"""The shared pieces of one block of hours, for the cross-sectional features.

A :class:`Window` holds the per-symbol arrays of a block with the look-back rows its features need in
front; a :class:`CrossSection` derives, once per block, what several features share (returns, the
top-N funding universe, trailing quote volume, volume baselines). The batch path builds one per block
of ~500 hours, the live path one per hour, from the same arrays: same code, same numbers. Every row
reduction runs over the symbol axis only, which numpy computes identically for one row or many.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from riskd.core.params import FragilityParams
from riskd.core.windows import nan_to_zero, trailing_sum

OI_LAGS: tuple[int, ...] = (1, 24)
"""Open-interest changes are measured over these many hours."""


DAY_HOURS = 24


def stage1_lookback(p: FragilityParams) -> int:
    """Rows of context a block needs before its first output row (windows and lags above; the previous
    day's ranking needs up to 47 rows: 23 hours of today, then the 24 of yesterday)."""
    u = p.universe
    rank = 2 * DAY_HOURS - 1 if u.rank_by == "previous_day" else u.quote_volume_window_hours - 1
    return max(rank, p.market.volume_baseline_hours, max(OI_LAGS), 2)


@dataclass(frozen=True)
class Window:
    """Per-symbol arrays (rows × symbols): ``lookback`` context rows, then the block's output rows.

    ``volume_history`` holds the multi-asset ranking's context instead: ``volume_window_hours`` rows
    before the block, then the block's rows.
    """

    close: np.ndarray
    volume: np.ndarray
    quote_volume: np.ndarray
    funding: Mapping[str, np.ndarray]
    open_interest: np.ndarray | None
    stand_in: np.ndarray | None
    volume_history: np.ndarray
    lookback: int
    btc: int | None
    first_hour: int = 0
    """Hour number (hours since the epoch) of the first output row: where the UTC days begin."""
    quote_volume_1d: np.ndarray | None = None
    """Previous closed day's quote volume from 1 d bars, per row (laid out like ``close``), if stored."""
    liquidations: np.ndarray | None = None
    """The OUTPUT rows' market-wide liquidation record (rows × 3, ``Panel.liquidations``), no look-back:
    its stage-1 figures read only their own hour."""


@dataclass(frozen=True)
class CrossSection:
    """The pieces shared by the features of one block (all arrays: output rows × symbols)."""

    win: Window
    p: FragilityParams

    @property
    def rows(self) -> int:
        """Output rows of the block (hours after the look-back)."""
        return self.win.close.shape[0] - self.win.lookback

    def now(self, arr: np.ndarray, back: int = 0) -> np.ndarray:
        """The output rows of a context array, or the rows ``back`` hours earlier."""
        start = self.win.lookback - back
        return arr[start : start + self.rows]

    @cached_property
    def close(self) -> np.ndarray:
        return self.now(self.win.close)

    @cached_property
    def priced(self) -> np.ndarray:
        return ~np.isnan(self.close)

    @cached_property
    def r1(self) -> np.ndarray:
        """1 h simple return per symbol."""
        return self.close / self.now(self.win.close, 1) - 1.0

    @cached_property
    def r1_valid(self) -> np.ndarray:
        return ~np.isnan(self.r1)

    @cached_property
    def ret_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Cross-sectional mean and std of the 1 h returns."""
        return mean_std(self.r1, self.r1_valid, self.p.universe.min_symbols)

    @cached_property
    def qv_trailing(self) -> np.ndarray:
        """Quote volume over the trailing window, current hour included (quote units)."""
        w = self.p.universe.quote_volume_window_hours
        start = self.win.lookback - w + 1
        return trailing_sum(nan_to_zero(self.win.quote_volume), w)[start : start + self.rows]

    @cached_property
    def previous_day_qv(self) -> np.ndarray:
        """Each symbol's quote volume over the previous closed UTC day (quote units).

        From the hourly bars where at least ``previous_day_min_hours`` of them are there (the sum of
        those), else from the day's 1 d bar if one is stored, else NaN. Row t's day starts at hour
        ``t - t % 24``; yesterday's 24 rows end just before it, so nothing after the day's start is read.
        """
        lb, d = self.win.lookback, DAY_HOURS
        rows = np.arange(self.rows)
        start = lb + rows - (self.win.first_hour + rows) % d - d  # context row where yesterday begins
        starts, day_of_row = np.unique(start, return_inverse=True)
        # The 24 rows of each distinct yesterday, summed by the same fixed tree as a trailing window.
        days = self.win.quote_volume[starts[None, :] + np.arange(d)[:, None]]  # 24 × days × symbols
        missing = np.isnan(days)
        total = trailing_sum(np.where(missing, 0.0, days), d)[0][day_of_row]
        enough = np.ones(total.shape, dtype=bool)  # all 24 hours there (min_hours is at most 24)
        if missing.any():  # counts are exact integers; skipped when nothing is missing
            counts = trailing_sum((~missing).astype(np.float64), d)[0][day_of_row]
            enough = counts >= self.p.universe.previous_day_min_hours
        daily = self.now(self.win.quote_volume_1d) if self.win.quote_volume_1d is not None else np.nan
        return np.where(enough, total, daily)

    @cached_property
    def rank_volume(self) -> np.ndarray:
        """The quote volume that ranks and weights the funding universe (``universe.rank_by``)."""
        if self.p.universe.rank_by == "previous_day":
            return self.previous_day_qv
        return self.qv_trailing

    @cached_property
    def top_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """The funding universe: ``(column index, selected)``, rows × min(N, top_n), in panel order.

        The top N symbols by :attr:`rank_volume`, never one priced from spot this hour (a stand-in has
        no funding). Ranked by the previous day, a perp needs no candle this hour (its funding still
        applies: a day ranked by its 1 d bar is enough); ranked by the trailing hours it must be priced
        now. Exact ties at the boundary are broken by numpy's selection, which treats each row on its
        own (one row or many, same answer).
        """
        eligible = self.rank_volume > 0
        if self.p.universe.rank_by == "trailing":
            eligible &= self.priced
        if self.win.stand_in is not None:
            eligible &= ~self.now(self.win.stand_in)
        n_top, n_sym = self.p.universe.funding_top_n, self.close.shape[1]
        if n_sym <= n_top:
            return np.broadcast_to(np.arange(n_sym), eligible.shape), eligible
        vals = np.where(eligible, self.rank_volume, -np.inf)
        idx = np.sort(np.argpartition(vals, n_sym - n_top, axis=1)[:, n_sym - n_top :], axis=1)
        return idx, np.take_along_axis(eligible, idx, axis=1)

    def top(self, arr: np.ndarray) -> np.ndarray:
        """Output rows of a (rows × symbols) array, restricted to the funding universe's columns."""
        return np.take_along_axis(arr, self.top_columns[0], axis=1)

    @cached_property
    def top_weight(self) -> np.ndarray:
        """Ranking quote volume of the funding universe (0 where not selected)."""
        return np.where(self.top_columns[1], self.top(self.rank_volume), 0.0)

    def rates(self, venue: str) -> np.ndarray | None:
        """A venue's rates (per hour) on the funding universe's columns, or None if the venue is absent."""
        if venue not in self._rates:
            arr = self.win.funding.get(venue)
            self._rates[venue] = None if arr is None else self.top(self.now(arr))
        return self._rates[venue]

    @cached_property
    def _rates(self) -> dict[str, np.ndarray | None]:
        return {}

    @cached_property
    def primary(self) -> np.ndarray | None:
        return self.rates(self.p.funding.primary_venue)

    @cached_property
    def primary_top(self) -> np.ndarray:
        """Selected universe cells that have a primary-venue rate."""
        if self.primary is None:
            return np.zeros_like(self.top_columns[1])
        return self.top_columns[1] & ~np.isnan(self.primary)

    @cached_property
    def volume_baseline(self) -> np.ndarray:
        """Mean volume of each symbol over the PREVIOUS window (base units)."""
        w, lb = self.p.market.volume_baseline_hours, self.win.lookback
        past = self.win.volume[lb - w : -1]  # rows t-w … t-1 of every output row t
        missing = np.isnan(past)
        s = trailing_sum(np.where(missing, 0.0, past), w)
        # Counts are exact integers either way; the counting pass is skipped when nothing is missing.
        n = trailing_sum((~missing).astype(np.float64), w) if missing.any() else np.full_like(s, float(w))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n >= self.p.market.volume_baseline_min_periods, s / n, np.nan)


def count(mask: np.ndarray) -> np.ndarray:
    """True cells per row, as float64 (exact)."""
    return np.count_nonzero(mask, axis=1).astype(np.float64)


def share(hit: np.ndarray, among: np.ndarray, min_n: int) -> np.ndarray:
    """Per row, the share of ``among`` cells that are ``hit``; NaN with fewer than ``min_n`` cells."""
    n = count(among)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= min_n, count(hit & among) / n, np.nan)


def weighted_mean(values: np.ndarray | None, xs: CrossSection) -> np.ndarray:
    """Mean of ``values`` (on the universe's columns) weighted by the ranking quote volume, NaN skipped."""
    if values is None:
        return np.full(xs.rows, np.nan)
    use = xs.top_columns[1] & ~np.isnan(values)
    w = np.where(use, xs.top_weight, 0.0)
    num = np.add.reduce(np.where(use, values, 0.0) * w, axis=1)
    den = np.add.reduce(w, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def mean_std(values: np.ndarray, use: np.ndarray, min_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row mean and sample std (ddof=1) over the ``use`` cells; NaN below ``min_n`` cells (std: 2)."""
    n = count(use)
    x = np.where(use, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.add.reduce(x, axis=1) / n
        dev = np.where(use, values - mean[:, None], 0.0)
        std = np.sqrt(np.add.reduce(dev * dev, axis=1) / (n - 1.0))
    return np.where(n >= min_n, mean, np.nan), np.where(n >= max(min_n, 2), std, np.nan)
