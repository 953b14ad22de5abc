"""Seeded minute (or 5-minute) markets with planted cascades whose onset and trough are known.

The onset measure (``riskd.research.onset``) and the latency scoring (``riskd.research.latency``) are
tested against a truth written down before either runs: BTC wanders quietly (±0.02 % a minute, steady
volume) and each :class:`Plant` replaces a stretch of it with a known shape:

- the **onset** bar closes ``bump`` above the highest close of the hour before it (the last high);
- from there the close falls geometrically to ``fall`` below the onset in ``minutes`` (no noise, so
  every figure along the fall has a closed form), on ``volume`` × the usual volume;
- after the trough it regains ``recover`` of the fall with time constant ``recover_minutes``, quietly;
  the quiet walk then resumes around the new level.

A **decoy** is a plant that recovers all of its fall quickly (``recover`` 1): a sharp drop that no
hourly cascade follows. The alts (ETH, SOL, XRP, DOGE) carry BTC's plants with their own noise, so
breadth confirms the falls. ``truth`` holds each plant's onset, 10 %-done point and trough as bar close
times with their closes, computed from the plant's formula, not by the code under test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

ALTS = ("ETH", "SOL", "XRP", "DOGE")
NOISE = 0.0002  # per minute, log
HIGH_WINDOW = 60  # minutes the onset must top (the onset rule's default window)


@dataclass(frozen=True)
class Plant:
    """A planted fall from the bar opening at ``onset`` (module docstring)."""

    onset: pd.Timestamp
    fall: float = -0.06
    minutes: int = 40
    volume: float = 6.0
    recover: float = 0.3
    recover_minutes: int = 60
    bump: float = 0.002
    decoy: bool = False


@dataclass(frozen=True)
class MinuteMarket:
    """BTC bars (close, volume), the alts' closes and the planted truth (module docstring)."""

    btc: pd.DataFrame
    alts: pd.DataFrame
    truth: pd.DataFrame
    bar_minutes: int


def _shape(p: Plant, step: int, n_after: int) -> tuple[np.ndarray, np.ndarray]:
    """Log offsets from the onset close for the fall and the recovery bars, and their volume factors."""
    m = p.minutes // step
    k = np.arange(1, m + 1)
    fall = k / m * np.log1p(p.fall)
    j = np.arange(1, n_after + 1) * step
    low = np.log1p(p.fall)
    regained = np.log1p(-p.fall * p.recover * (1 - np.exp(-j / p.recover_minutes)) / (1 + p.fall))
    return np.concatenate([fall, low + regained]), np.concatenate([np.full(m, p.volume), np.ones(n_after)])


def minute_market(
    plants: Sequence[Plant], start: pd.Timestamp, days: int, bar_minutes: int = 1, seed: int = 0
) -> MinuteMarket:
    """``days`` of bars of ``bar_minutes`` from ``start`` with ``plants`` (onsets on the bar grid)."""
    n = days * 1440 // bar_minutes
    idx = pd.date_range(start, periods=n, freq=f"{bar_minutes}min", name="ts")
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, NOISE * np.sqrt(bar_minutes), (n, 1 + len(ALTS)))
    volume = rng.uniform(8, 12, n) * bar_minutes
    log = np.cumsum(steps, axis=0) + np.log(100.0)
    truth = []
    for p in sorted(plants, key=lambda q: q.onset):
        i = int(idx.get_loc(p.onset))
        win = HIGH_WINDOW // bar_minutes
        top = log[max(0, i - win) : i, 0].max() + np.log1p(p.bump)
        after = min(n - i - 1, (p.minutes + 3 * p.recover_minutes) // bar_minutes)
        offsets, vol = _shape(p, bar_minutes, after - p.minutes // bar_minutes)
        path = np.concatenate([[top], top + offsets])
        shift = path - log[i : i + len(path), 0]
        log[i : i + len(path)] += shift[:, None]  # BTC is the plant; the alts carry it on their noise
        log[i + len(path) :] += shift[-1]  # the quiet walk resumes from the plant's last level
        volume[i + 1 : i + len(vol) + 1] *= vol
        truth.append(_truth(p, idx, i, bar_minutes, np.exp(top)))
    close = np.exp(log)
    btc = pd.DataFrame({"close": close[:, 0], "volume": volume}, index=idx)
    alts = pd.DataFrame(close[:, 1:], index=idx, columns=list(ALTS))
    return MinuteMarket(btc, alts, pd.DataFrame(truth), bar_minutes)


def _truth(p: Plant, idx: pd.DatetimeIndex, i: int, bar_minutes: int, top: float) -> dict[str, object]:
    """The plant's onset (A), 10 %-done point (B) and trough, as bar close times, from its formula."""
    bar = pd.Timedelta(minutes=bar_minutes)
    m = p.minutes // bar_minutes
    k = np.arange(0, m + 1)
    closes = top * (1 + p.fall) ** (k / m)
    done = int(np.flatnonzero(closes > top - 0.1 * (top - closes[-1]))[-1]) + 1  # monotone: the first below
    return {"onset_at": idx[i] + bar, "onset10_at": idx[i + done] + bar, "trough_at": idx[i + m] + bar,
            "onset_close": top, "trough_close": closes[-1], "fall": p.fall, "minutes": p.minutes,
            "decoy": p.decoy}  # fmt: skip


def plant_close(p: Plant, truth_row: pd.Series, minutes_after_onset: float) -> float:
    """The planted close ``minutes_after_onset`` after the onset bar's close, on the fall (closed form)."""
    return float(truth_row["onset_close"] * (1 + p.fall) ** (minutes_after_onset / p.minutes))
