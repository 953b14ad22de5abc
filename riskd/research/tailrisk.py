"""CFI tail risk: does a high fragility index come before crashes more often than a low one?

The research's claim (RESEARCH.md): the crash rate in the top CFI quintile over the bottom one is 5.13.
It does not say what a crash is, so the definition is a parameter (:class:`CrashDefinition`, a setting).
Crash labels of neighbouring hours overlap (they look at the same next 24 h) and the CFI is persistent,
so the confidence intervals come from a **stationary block bootstrap** over hours (``arch.bootstrap``),
with a default mean block of one week: well above the 24 h label overlap and the few-day persistence
of fragility regimes, so resampled blocks keep that dependence.

Two samples: **in sample** with quintile cut-offs from the whole span (what the research reported), and
**out of sample** where each hour's quintile comes from cut-offs over strictly earlier hours only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from arch.bootstrap import StationaryBootstrap

from riskd.research.events import hourly_grid

CrashKind = Literal["return", "drawdown", "cascade"]
_INF_CAP = 1e12  # a ratio over a zero Q1 rate; kept finite so bootstrap percentiles never hit inf - inf


@dataclass(frozen=True)
class CrashDefinition:
    """What counts as a crash after hour ``T`` (the label of row ``T``, known at the close of ``T + horizon``).

    - ``return``: BTC's return from the close of ``T`` to the close of ``T + horizon_h`` is below
      ``threshold`` (default: below -5% over 24 h).
    - ``drawdown``: some hourly close in ``T + 1 … T + horizon_h`` is below ``(1 + threshold)`` x the
      close of ``T`` (a path crash, even if it recovers by the end).
    - ``cascade``: the cascade detector fires in one of the hours ``T + 1 … T + horizon_h``.
    """

    kind: CrashKind = "return"
    horizon_h: int = 24
    threshold: float = -0.05

    def describe(self) -> str:
        """One sentence for the report."""
        if self.kind == "cascade":
            return f"a cascade event in the next {self.horizon_h} h"
        what = "return" if self.kind == "return" else "drawdown (lowest hourly close)"
        return f"BTC {what} over the next {self.horizon_h} h below {self.threshold:+.1%}"


def crash_labels(
    btc_close: pd.Series, definition: CrashDefinition, cascade: pd.Series | None = None
) -> pd.Series:
    """1.0 where a crash follows the hour, 0.0 where none does, NaN where the window runs past the data."""
    close = hourly_grid(btc_close.to_frame("c"))["c"]
    h = definition.horizon_h
    if definition.kind == "return":
        fwd = close.shift(-h) / close - 1.0
        label = (fwd < definition.threshold).astype(float).where(fwd.notna())
    elif definition.kind == "drawdown":
        low = close.rolling(h, min_periods=h).min().shift(-h) / close - 1.0
        label = (low < definition.threshold).astype(float).where(low.notna())
    else:
        if cascade is None:
            raise ValueError("the 'cascade' crash definition needs the cascade event flags")
        fired = cascade.reindex(close.index).fillna(False).astype(float)
        ahead = fired.rolling(h, min_periods=h).max().shift(-h)
        label = ahead.where(ahead.notna())
    return label.rename("crash")


def insample_quintiles(score: pd.Series) -> pd.Series:
    """Quintile 1…5 of each hour's score with cut-offs from the whole sample (NaN where no score)."""
    valid = score.dropna()
    q = pd.qcut(valid, 5, labels=False, duplicates="drop") + 1
    return q.astype(float).reindex(score.index).rename("quintile")


def expanding_quintiles(score: pd.Series, min_history_h: int = 24 * 180) -> pd.Series:
    """Quintile 1…5 of each hour's score against cut-offs from strictly earlier hours only.

    The cut-offs are the 20/40/60/80% quantiles of all scores before the hour (at least
    ``min_history_h`` of them); the bins are right-closed like :func:`pandas.qcut`.
    """
    valid = score.dropna()
    past = valid.expanding(min_periods=min_history_h)
    cuts = pd.concat({k: past.quantile(k / 5).shift(1) for k in (1, 2, 3, 4)}, axis=1)
    above = (valid.to_numpy()[:, None] > cuts.to_numpy()).sum(axis=1) + 1.0
    q = pd.Series(above, index=valid.index).where(cuts.notna().all(axis=1))
    return q.reindex(score.index).rename("quintile")


def crash_rate_table(
    quintile: pd.Series,
    crash: pd.Series,
    *,
    block_h: int = 168,
    reps: int = 1000,
    size: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Crash rate per quintile and the Q5/Q1 ratio, each with a stationary block-bootstrap CI.

    Rows ``Q1`` … ``Q5`` and ``Q5/Q1``; columns ``n`` (hours), ``crashes`` (crash hours), ``value`` (rate as
    a fraction, or the ratio), ``ci_lo``/``ci_hi`` (percentile CI at ``size``). ``block_h`` is the mean
    block length in hours. A ratio over a zero Q1 rate is ``inf``.
    """
    frame = pd.DataFrame({"q": quintile, "crash": crash}).dropna()
    q = frame["q"].to_numpy(dtype=np.int64)
    c = frame["crash"].to_numpy(dtype=float)
    names = [f"Q{k}" for k in range(1, 6)] + ["Q5/Q1"]
    n = np.bincount(q, minlength=6)[1:6]
    hits = np.bincount(q, weights=c, minlength=6)[1:6]
    point = _rates_and_ratio(q, c)
    point[:5][n == 0] = np.nan
    if len(frame) >= 2 * block_h and reps > 0:
        bs = StationaryBootstrap(block_h, q, c, seed=seed)
        ci = bs.conf_int(_rates_and_ratio, reps=reps, method="percentile", size=size)
    else:
        ci = np.full((2, 6), np.nan)
    out = pd.DataFrame(
        {
            "n": np.append(n, n[4] + n[0]),
            "crashes": np.append(hits, hits[4] + hits[0]),
            "value": point,
            "ci_lo": ci[0],
            "ci_hi": ci[1],
        },
        index=pd.Index(names, name="bucket"),
    )
    cols = ["value", "ci_lo", "ci_hi"]
    out[cols] = out[cols].mask(out[cols] >= _INF_CAP, np.inf)
    return out


def tail_risk(
    score: pd.Series,
    crash: pd.Series,
    *,
    block_h: int = 168,
    reps: int = 1000,
    seed: int = 0,
    min_history_h: int = 24 * 180,
) -> pd.DataFrame:
    """Crash rates by score quintile, in sample and out of sample, as one tidy frame.

    Columns: ``sample`` (``in_sample``/``out_of_sample``), ``bucket`` (``Q1``…``Q5``, ``Q5/Q1``), ``n``,
    ``crashes``, ``value``, ``ci_lo``, ``ci_hi``, ``start``, ``end`` (first and last hour used).
    """
    parts = []
    for name, quint in (
        ("in_sample", insample_quintiles(score)),
        ("out_of_sample", expanding_quintiles(score, min_history_h)),
    ):
        used = pd.DataFrame({"q": quint, "c": crash}).dropna().index
        table = crash_rate_table(quint, crash, block_h=block_h, reps=reps, seed=seed).reset_index()
        table.insert(0, "sample", name)
        table["start"] = used.min() if len(used) else pd.NaT
        table["end"] = used.max() if len(used) else pd.NaT
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def _rates_and_ratio(q: np.ndarray, c: np.ndarray) -> np.ndarray:
    n = np.bincount(q, minlength=6)[1:6].astype(float)
    hits = np.bincount(q, weights=c, minlength=6)[1:6]
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = np.where(n > 0, hits / n, 0.0)
    # 0/0 is "no difference"; x/0 is capped so that bootstrap percentiles stay finite
    ratio = rates[4] / rates[0] if rates[0] > 0 else (_INF_CAP if rates[4] > 0 else 1.0)
    return np.append(rates, min(ratio, _INF_CAP))
