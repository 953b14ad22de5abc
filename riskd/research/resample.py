"""One set of stationary-bootstrap resamples of an hourly grid, shared by every statistic built from sums.

The stationary bootstrap (Politis & Romano 1994, what ``arch.bootstrap.StationaryBootstrap`` draws)
resamples blocks of consecutive hours with geometric lengths from uniform starts, wrapping at the end.
Here the blocks are made of whole **units** of ``unit`` hours (default one UTC day): a mean block of a
week is then 7 units, and the bootstrap works on per-unit sums, 24x fewer rows than hours. Crash rates
per quintile, Brier scores and rank correlations are ratios of sums over hours, so a resample's value
needs only each unit's sum and how many times the resample draws that unit: one product of the
resamples' unit counts (reps × units, drawn once) with the per-unit sums. The component
study bootstraps ~250 tables; with arch's index arrays that is ~2 s per table over six years of hours,
with block sums it is milliseconds, and every table uses the same resamples (common random numbers:
differences between features are not resampling noise).

A resample statistic can be infinite (a resample with no crash in Q1): :func:`percentile_ci` keeps it,
so a CI may read ``[3.1, inf]`` — a one-sided bound, which the report prints as "≥ 3.1".
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class BlockResamples:
    """``reps`` resamples of ``n`` units of ``unit`` hours as blocks: block ``i`` of resample ``rep[i]``
    covers units ``start[i], start[i] + 1, …`` (mod ``n``) for ``length[i]`` units; each resample totals
    ``n`` units. ``hours`` is the length of the hourly series (the last unit may be partly empty)."""

    n: int
    reps: int
    rep: np.ndarray
    start: np.ndarray
    length: np.ndarray
    unit: int = 1
    hours: int = 0

    @classmethod
    def draw(
        cls, hours: int, mean_block_h: float, reps: int, seed: int = 0, unit: int = 24
    ) -> BlockResamples:
        """Blocks over ``hours`` hours in units of ``unit`` hours: geometric lengths with mean
        ``mean_block_h`` hours (rounded to units, capped at the sample), uniform starts."""
        n = -(-hours // unit) if hours > 0 else 0
        mean_block = max(mean_block_h / unit, 1.0)
        if n <= 0 or reps <= 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(n, max(reps, 0), empty, empty, empty, unit, max(hours, 0))
        rng = np.random.default_rng(seed)
        per = int(np.ceil(n / mean_block * 1.5)) + 20
        reps_parts, starts, lengths = [], [], []
        todo = np.arange(reps)
        filled = np.zeros(reps, dtype=np.int64)
        while len(todo):
            length = np.minimum(rng.geometric(1.0 / mean_block, (len(todo), per)), n)
            start = rng.integers(0, n, (len(todo), per))
            end = filled[todo, None] + np.cumsum(length, axis=1)
            begin = end - length
            keep = begin < n
            length = np.where(end > n, n - begin, length)
            reps_parts.append(np.broadcast_to(todo[:, None], keep.shape)[keep])
            starts.append(start[keep])
            lengths.append(length[keep])
            filled[todo] = np.minimum(end[:, -1], n)
            todo = todo[filled[todo] < n]
        rep = np.concatenate(reps_parts)
        order = np.argsort(rep, kind="stable")
        starts_, lengths_ = np.concatenate(starts)[order], np.concatenate(lengths)[order]
        return cls(n, reps, rep[order], starts_, lengths_, unit, hours)

    @cached_property
    def counts(self) -> np.ndarray:
        """How many times each resample draws each unit: ``reps × n`` (row sums = n)."""
        if self.reps == 0 or self.n == 0:
            return np.zeros((self.reps, self.n))
        total = int(self.length.sum())
        first = np.repeat(np.cumsum(self.length) - self.length, self.length)
        units = (np.repeat(self.start, self.length) + np.arange(total) - first) % self.n
        flat = np.bincount(np.repeat(self.rep, self.length) * self.n + units, minlength=self.reps * self.n)
        return flat.reshape(self.reps, self.n).astype(np.float64)

    def sums(self, x: np.ndarray) -> np.ndarray:
        """Sum of hourly ``x`` (``hours`` or ``hours x k``) over each resample: ``(reps,)`` or ``(reps, k)``.

        NaN in ``x`` is taken as 0: put what should not count (hours without a label) at 0 in both the
        numerator and the count. One product of the unit counts with the per-unit sums (BLAS).
        """
        arr = np.asarray(x, dtype=float)
        flat = arr.ndim == 1
        out = self.unit_sums(self.per_unit(arr[:, None] if flat else arr))
        return out[:, 0] if flat else out

    def per_unit(self, x: np.ndarray) -> np.ndarray:
        """Hourly ``x`` (``hours x k``, NaN as 0) summed per unit: ``n x k``."""
        arr = np.nan_to_num(x) if np.isnan(x).any() else x
        pad = self.n * self.unit - len(arr)
        if pad:
            arr = np.vstack([arr, np.zeros((pad, arr.shape[1]))])
        return arr.reshape(self.n, self.unit, arr.shape[1]).sum(axis=1)

    def unit_sums(self, per_unit: np.ndarray) -> np.ndarray:
        """Each resample's sum of per-unit sums (``n x k``): ``reps x k``."""
        return self.counts @ per_unit if self.reps else np.zeros((0, per_unit.shape[1]))

    def indices(self, rep: int) -> np.ndarray:
        """The hour indices of one resample (for checking the block sums against a plain resample)."""
        mine = self.rep == rep
        units = [
            np.arange(s, s + ln) % self.n for s, ln in zip(self.start[mine], self.length[mine], strict=True)
        ]
        if not units:
            return np.zeros(0, dtype=np.int64)
        hours = (np.concatenate(units)[:, None] * self.unit + np.arange(self.unit)).ravel()
        return hours[hours < self.hours]


def percentile_ci(draws: np.ndarray, size: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile CI over axis 0 without interpolation, so an infinite end stays infinite (not NaN).

    NaN draws (a resample where the statistic is undefined, e.g. 0/0) are left out.
    """
    arr = np.asarray(draws, dtype=float)
    tail = (1.0 - size) / 2.0
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, said in the report
        lo = np.nanquantile(arr, tail, axis=0, method="inverted_cdf")
        hi = np.nanquantile(arr, 1.0 - tail, axis=0, method="inverted_cdf")
    return lo, hi
