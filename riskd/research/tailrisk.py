"""CFI tail risk: does a high fragility index come before crashes more often than a low one?

The research's claim (RESEARCH.md): the crash rate in the top CFI quintile over the bottom one is 5.13.
It does not say what a crash is, so the definition is a parameter (riskd's one
:class:`~riskd.research.labels.CrashDefinition`, the ``validation.crash_*`` settings).
Crash labels of neighbouring hours overlap (they look at the same next 24 h) and the CFI is persistent,
so the confidence intervals come from a **stationary block bootstrap** over hours (the block sums of
:mod:`riskd.research.resample`, the same engine and resamples as the component study and the signals),
with a default mean block of one week: well above the 24 h label overlap and the few-day persistence
of fragility regimes, so resampled blocks keep that dependence.

Two samples: **in sample** with quintile cut-offs from the whole span (what the research reported), and
**out of sample** where each hour's quintile comes from cut-offs over strictly earlier hours only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskd.research.components import quintile_sums
from riskd.research.resample import BlockResamples, percentile_ci


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
    res: BlockResamples | None = None,
) -> pd.DataFrame:
    """Crash rate per quintile and the Q5/Q1 ratio, each with a stationary block-bootstrap CI.

    Rows ``Q1`` … ``Q5`` and ``Q5/Q1``; columns ``n`` (hours), ``crashes`` (crash hours), ``value`` (rate as
    a fraction, or the ratio), ``ci_lo``/``ci_hi`` (percentile CI at ``size``). ``block_h`` is the mean
    block length in hours; ``res`` resamples to share (over the hours of ``quintile``'s index), else
    drawn here. A ratio over a zero Q1 rate is ``inf``, and so is a CI end whose resamples reach one.
    """
    q = quintile.to_numpy(dtype=float)
    c = crash.reindex(quintile.index).to_numpy(dtype=float)
    x = quintile_sums(np.where(np.isnan(c), np.nan, q), c[:, None])
    total = x.sum(axis=0)
    if res is None and len(q) >= 2 * block_h and reps > 0:
        res = BlockResamples.draw(len(q), block_h, reps, seed)
    ci = np.full((2, 6), np.nan)
    if res is not None and res.reps > 0:
        lo, hi = percentile_ci(_rates_and_ratio(res.sums(x)), size)
        ci = np.vstack([lo, hi])
    n, hits = total[:5], total[5:]
    return pd.DataFrame(
        {
            "n": np.append(n, n[4] + n[0]).astype(np.int64),
            "crashes": np.append(hits, hits[4] + hits[0]),
            "value": _rates_and_ratio(total[None, :])[0],
            "ci_lo": ci[0],
            "ci_hi": ci[1],
        },
        index=pd.Index([f"Q{k}" for k in range(1, 6)] + ["Q5/Q1"], name="bucket"),
    )


def tail_risk(
    score: pd.Series,
    crash: pd.Series | pd.DataFrame,
    *,
    block_h: int = 168,
    reps: int = 1000,
    seed: int = 0,
    min_history_h: int = 24 * 180,
) -> pd.DataFrame:
    """Crash rates by score quintile, in sample and out of sample, for each crash column, as one tidy
    frame; every table uses the same resamples of the score's hours.

    Columns: ``crash`` (the column's name; ``crash`` for a Series), ``sample`` (``in_sample``/
    ``out_of_sample``), ``bucket`` (``Q1``…``Q5``, ``Q5/Q1``), ``n``, ``crashes``, ``value``, ``ci_lo``,
    ``ci_hi``, ``start``, ``end`` (first and last hour used).
    """
    crashes = crash.to_frame("crash") if isinstance(crash, pd.Series) else crash
    crashes = crashes.reindex(score.index)
    res = BlockResamples.draw(len(score), block_h, reps, seed) if len(score) >= 2 * block_h and reps else None
    parts = []
    for sample, quint in (
        ("in_sample", insample_quintiles(score)),
        ("out_of_sample", expanding_quintiles(score, min_history_h)),
    ):
        for kind in crashes.columns:
            used = pd.DataFrame({"q": quint, "c": crashes[kind]}).dropna().index
            table = crash_rate_table(quint, crashes[kind], res=res, reps=0).reset_index()
            table.insert(0, "sample", sample)
            table.insert(0, "crash", kind)
            table["start"] = used.min() if len(used) else pd.NaT
            table["end"] = used.max() if len(used) else pd.NaT
            parts.append(table)
    return pd.concat(parts, ignore_index=True)


def _rates_and_ratio(sums: np.ndarray) -> np.ndarray:
    """Rows of (hours Q1…Q5, crashes Q1…Q5) sums → rows of (rates Q1…Q5, Q5/Q1); x/0 = inf, 0/0 = NaN."""
    n, hits = sums[:, :5], sums[:, 5:]
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = np.where(n > 0, hits / n, np.nan)
        ratio = rates[:, 4] / rates[:, 0]
    return np.column_stack([rates, ratio])
