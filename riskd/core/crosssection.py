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


def stage1_lookback(p: FragilityParams) -> int:
    """Rows of context a block needs before its first output row (windows and lags above)."""
    return max(p.universe.quote_volume_window_hours - 1, p.market.volume_baseline_hours, max(OI_LAGS), 2)


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
    def top_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """The funding universe: ``(column index, selected)``, rows × min(N, top_n), in panel order.

        The top N symbols priced from their perp this hour, by trailing quote volume (a spot stand-in
        has no funding and its volume is another market's). Exact ties at the boundary are broken by
        numpy's selection, which treats each row on its own (one row or many, same answer).
        """
        eligible = self.priced & (self.qv_trailing > 0)
        if self.win.stand_in is not None:
            eligible &= ~self.now(self.win.stand_in)
        n_top, n_sym = self.p.universe.funding_top_n, self.close.shape[1]
        if n_sym <= n_top:
            return np.broadcast_to(np.arange(n_sym), eligible.shape), eligible
        vals = np.where(eligible, self.qv_trailing, -np.inf)
        idx = np.sort(np.argpartition(vals, n_sym - n_top, axis=1)[:, n_sym - n_top :], axis=1)
        return idx, np.take_along_axis(eligible, idx, axis=1)

    def top(self, arr: np.ndarray) -> np.ndarray:
        """Output rows of a (rows × symbols) array, restricted to the funding universe's columns."""
        return np.take_along_axis(arr, self.top_columns[0], axis=1)

    @cached_property
    def top_weight(self) -> np.ndarray:
        """Trailing quote volume of the funding universe (0 where not selected)."""
        return np.where(self.top_columns[1], self.top(self.qv_trailing), 0.0)

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
    """Mean of ``values`` (on the universe's columns) weighted by trailing quote volume, NaN skipped."""
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
