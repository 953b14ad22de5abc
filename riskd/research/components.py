"""Component study: which of the core's features and CFI components come before crashes, in and out of sample.

For every feature and each crash definition: the crash rate per quintile of the feature, the tail
ratio Q5/Q1 and the max/min quintile ratio (a feature can be U-shaped), each with a stationary
block-bootstrap 95% CI (:mod:`riskd.research.resample`), and the feature's IC (Spearman) with BTC's
forward 24 h return. Two samples:

- **in sample**: quintile edges from the whole span (what a study over the history reports);
- **out of sample** (walk-forward): each hour's quintile comes from edges over every hour before its
  calendar month (refreshed monthly, at least ``min_history_h`` of them): past data only.

A feature whose Q1 has no crash has a ratio of ``inf`` with ``q1_crashes = 0``: the report says
"0 crashes in Q1" and prints the CI's finite end as a bound ("≥ x"). The IC's CI resamples the
Pearson correlation of the full-sample ranks (a sum statistic): close to, and cheaper than, re-ranking
each resample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskd.research.resample import BlockResamples, percentile_ci

SAMPLES: tuple[str, ...] = ("in_sample", "out_of_sample")
RATIO_COLUMNS: tuple[str, ...] = (
    "feature", "crash", "sample", "n", "q1_crashes", "q5_crashes", "q1_rate", "q5_rate", "ratio", "ci_lo",
    "ci_hi", "maxmin", "maxmin_lo", "maxmin_hi", "max_q", "min_q", "start", "end",
)  # fmt: skip # the column names in reading order, several to a line


@dataclass(frozen=True)
class ComponentStudy:
    """The component study's result.

    ``ratios``: one row per (feature, crash, sample): ``n`` (hours with a quintile and a label),
    ``q1_crashes``, ``q5_crashes``, ``q1_rate``, ``q5_rate``, ``ratio`` (Q5/Q1) with ``ci_lo``/``ci_hi``,
    ``maxmin`` (highest quintile rate / lowest) with ``maxmin_lo``/``maxmin_hi``, ``max_q``/``min_q``,
    ``start``/``end``. ``ic``: one row per feature: ``ic``, ``ci_lo``, ``ci_hi``, ``n``.
    ``crashes``: crash name -> its one-line description. ``reps``, ``block_h``: the bootstrap.
    ``skipped``: features with fewer valid hours than the out-of-sample history needs.
    """

    ratios: pd.DataFrame
    ic: pd.DataFrame
    crashes: Mapping[str, str]
    reps: int
    block_h: int
    skipped: tuple[str, ...] = ()

    def row(self, feature: str, crash: str, sample: str) -> pd.Series:
        """The ratios row of one feature, crash definition and sample."""
        r = self.ratios
        hit = r[(r["feature"] == feature) & (r["crash"] == crash) & (r["sample"] == sample)]
        return hit.iloc[0]


def insample_edges(score: pd.Series) -> np.ndarray:
    """Quintile edges (20/40/60/80%) over every valid hour."""
    valid = score.dropna().to_numpy()
    return np.quantile(valid, [0.2, 0.4, 0.6, 0.8]) if len(valid) else np.full(4, np.nan)


def quintiles_from_edges(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Quintile 1…5 (right-closed bins like :func:`pandas.qcut`); NaN where the value or an edge is NaN."""
    q = (values[:, None] > edges[None, :] if edges.ndim == 1 else values[:, None] > edges).sum(axis=1) + 1.0
    bad = np.isnan(values) | (np.isnan(edges).any() if edges.ndim == 1 else np.isnan(edges).any(axis=1))
    return np.where(bad, np.nan, q)


QUINTILE_CUTS = np.array([0.2, 0.4, 0.6, 0.8])


def sorted_quantiles(values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.quantile(values, q, method="linear")`` of an already sorted array, without sorting it again
    (numpy's interpolation, term for term: the same bits)."""
    idx = q * (len(values) - 1)
    lo = np.floor(idx).astype(np.int64)
    hi = np.minimum(lo + 1, len(values) - 1)
    t = idx - lo
    a, b = values[lo], values[hi]
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def monthly_past_quintiles(score: pd.Series, min_history_h: int = 24 * 180) -> pd.Series:
    """Quintile of each hour against edges over all valid hours before its calendar month (past only)."""
    idx = pd.DatetimeIndex(score.index)
    values = score.to_numpy(dtype=float)
    codes = (idx.year * 12 + idx.month).to_numpy()
    firsts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    edges = np.full((len(values), 4), np.nan)
    past = np.zeros(0)  # the valid scores before the current month, kept sorted
    for a, b in zip(firsts, np.r_[firsts[1:], len(values)], strict=True):
        if len(past) >= min_history_h:
            edges[a:b] = sorted_quantiles(past, QUINTILE_CUTS)
        new = np.sort(values[a:b][~np.isnan(values[a:b])])
        past = np.insert(past, np.searchsorted(past, new), new) if len(new) else past
    return pd.Series(quintiles_from_edges(values, edges), index=score.index, name="quintile")


def quintile_sums(q: np.ndarray, crashes: np.ndarray) -> np.ndarray:
    """Hour matrix: per crash definition 5 quintile indicators (hours with a label), then per crash
    definition the 5 quintile indicators times the crash label."""
    member = q[:, None] == np.arange(1, 6)[None, :]  # NaN quintile: no column
    labelled = ~np.isnan(crashes)
    width = 5 * crashes.shape[1]
    counts = (labelled[:, :, None] & member[:, None, :]).reshape(len(q), width)
    hits = (np.where(labelled, crashes, 0.0)[:, :, None] * member[:, None, :]).reshape(len(q), width)
    return np.hstack([counts, hits]).astype(float)


def unit_quintile_sums(q: np.ndarray, crashes: np.ndarray, unit: int) -> np.ndarray:
    """:func:`quintile_sums` summed over whole units of ``unit`` hours (``units x width``, the same column
    order), by counting: no hours x width matrix is built."""
    n_units = -(-len(q) // unit)
    units = np.arange(len(q)) // unit
    k = crashes.shape[1]
    out = np.zeros((n_units, 10 * k))
    for c in range(k):
        y = crashes[:, c]
        sel = ~np.isnan(q) & ~np.isnan(y)
        key = units[sel] * 5 + (q[sel].astype(np.int64) - 1)
        out[:, 5 * c : 5 * c + 5] = np.bincount(key, minlength=5 * n_units).reshape(n_units, 5)
        hits = np.bincount(key, weights=y[sel], minlength=5 * n_units).reshape(n_units, 5)
        out[:, 5 * k + 5 * c : 5 * k + 5 * c + 5] = hits
    return out


def _ratios(n: np.ndarray, hits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rates per quintile, Q5/Q1, max/min) along the last axis; x/0 = inf, 0/0 = NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = np.where(n > 0, hits / n, np.nan)
        q5q1 = rates[..., 4] / rates[..., 0]
        filled = np.isfinite(rates)
        hi = np.where(filled, rates, -np.inf).max(axis=-1)
        lo = np.where(filled, rates, np.inf).min(axis=-1)
        maxmin = np.where(filled.any(axis=-1), hi / lo, np.nan)
    return rates, q5q1, maxmin


def tail_rows(
    q: pd.Series, crashes: pd.DataFrame, res: BlockResamples | None, size: float = 0.95
) -> list[dict[str, object]]:
    """One row per crash column: quintile rates, Q5/Q1 and max/min with their CIs (``res`` None: no CI)."""
    x = quintile_sums(q.to_numpy(dtype=float), crashes.to_numpy(dtype=float))
    boot = res.sums(x) if res is not None and res.reps > 0 else None
    return tail_from_sums(q, crashes, x.sum(axis=0), boot, size)


def tail_from_sums(
    q: pd.Series, crashes: pd.DataFrame, total: np.ndarray, boot: np.ndarray | None, size: float
) -> list[dict[str, object]]:
    k = crashes.shape[1]
    n, hits = total[: 5 * k].reshape(k, 5), total[5 * k :].reshape(k, 5)
    rates, q5q1, maxmin = _ratios(n, hits)
    if boot is not None:
        _, b_q5q1, b_maxmin = _ratios(boot[:, : 5 * k].reshape(-1, k, 5), boot[:, 5 * k :].reshape(-1, k, 5))
        lo, hi = percentile_ci(b_q5q1, size)
        mlo, mhi = percentile_ci(b_maxmin, size)
    else:
        lo = hi = mlo = mhi = np.full(k, np.nan)
    used = q.notna()
    rows = []
    for j, name in enumerate(crashes.columns):
        have = used & crashes[name].notna()
        span = q.index[have.to_numpy()]
        r = rates[j]
        some = bool(np.isfinite(r).any())
        rows.append(
            {
                "crash": name,
                "n": int(n[j].sum()),
                "q1_crashes": int(hits[j, 0]),
                "q5_crashes": int(hits[j, 4]),
                "q1_rate": r[0],
                "q5_rate": r[4],
                "ratio": q5q1[j],
                "ci_lo": lo[j],
                "ci_hi": hi[j],
                "maxmin": maxmin[j],
                "maxmin_lo": mlo[j],
                "maxmin_hi": mhi[j],
                "max_q": int(np.nanargmax(r)) + 1 if some else 0,
                "min_q": int(np.nanargmin(r)) + 1 if some else 0,
                "start": span.min() if len(span) else pd.NaT,
                "end": span.max() if len(span) else pd.NaT,
            }
        )
    return rows


UNIT = 24
"""Hours per resampling unit (:class:`~riskd.research.resample.BlockResamples`' default: a UTC day)."""


def _unit_rank_sums(x: pd.Series, y: pd.Series) -> np.ndarray:
    """:func:`_rank_sums` summed per unit of :data:`UNIT` hours."""
    h = _rank_sums(x, y)
    pad = -len(h) % UNIT
    if pad:
        h = np.vstack([h, np.zeros((pad, h.shape[1]))])
    return h.reshape(-1, UNIT, h.shape[1]).sum(axis=1)


def _rank_sums(x: pd.Series, y: pd.Series) -> np.ndarray:
    """Hour matrix of (both present, rank x, rank y, squares, product) for a rank correlation."""
    ok = (x.notna() & y.notna()).to_numpy()
    rx = np.zeros(len(x))
    ry = np.zeros(len(y))
    if ok.any():
        rx[ok] = pd.Series(x.to_numpy()[ok]).rank().to_numpy()
        ry[ok] = pd.Series(y.to_numpy()[ok]).rank().to_numpy()
    return np.column_stack([ok, rx, ry, rx * rx, ry * ry, rx * ry]).astype(float)


def _ic_from_sums(total: np.ndarray, boot: np.ndarray | None, size: float) -> dict[str, float]:
    n = int(total[0])
    if n < 3:
        return {"ic": np.nan, "ci_lo": np.nan, "ci_hi": np.nan, "n": n}
    ic = float(_pearson_from_sums(total[None, :])[0])
    lo, hi = percentile_ci(_pearson_from_sums(boot), size) if boot is not None else (np.nan, np.nan)
    return {"ic": ic, "ci_lo": float(lo), "ci_hi": float(hi), "n": n}


def rank_ic(x: pd.Series, y: pd.Series, res: BlockResamples | None, size: float = 0.95) -> dict[str, float]:
    """Spearman IC of ``x`` with ``y`` over the hours both have, and its block-bootstrap CI."""
    mats = _rank_sums(x, y)
    boot = res.sums(mats) if res is not None and res.reps > 0 else None
    return _ic_from_sums(mats.sum(axis=0), boot, size)


def _pearson_from_sums(s: np.ndarray) -> np.ndarray:
    n, sx, sy, sxx, syy, sxy = (s[:, i] for i in range(6))
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = sxy - sx * sy / n
        return cov / np.sqrt((sxx - sx * sx / n) * (syy - sy * sy / n))


def component_study(
    features: pd.DataFrame,
    crashes: pd.DataFrame,
    forward_return: pd.Series,
    *,
    names: Sequence[str] | None = None,
    descriptions: Mapping[str, str] | None = None,
    block_h: int = 168,
    reps: int = 200,
    seed: int = 0,
    min_history_h: int = 24 * 180,
) -> ComponentStudy:
    """The study over ``features`` (hourly columns; ``names`` picks them, default all), ``crashes``
    (hourly 1/0/NaN labels, one column per definition) and ``forward_return`` (BTC's next 24 h, fraction).

    All inputs are aligned on ``features.index``; every table shares one set of resamples of it.
    """
    idx = features.index
    crashes = crashes.reindex(idx)
    fwd = forward_return.reindex(idx)
    res = BlockResamples.draw(len(idx), block_h, reps, seed) if len(idx) >= 2 * block_h and reps else None
    crash_values = crashes.to_numpy(dtype=float)
    width = 10 * crashes.shape[1]
    rows, ics, skipped = [], [], []
    for name in names if names is not None else list(features.columns):
        score = features[name].astype(float)
        if score.notna().sum() < max(min_history_h, 2 * block_h):
            skipped.append(name)
            continue
        qs = {
            "in_sample": pd.Series(quintiles_from_edges(score.to_numpy(), insample_edges(score)), index=idx),
            "out_of_sample": monthly_past_quintiles(score, min_history_h),
        }
        # one per-unit matrix per feature (both samples and the IC): one product for every resample
        x = np.hstack(
            [
                *(unit_quintile_sums(q.to_numpy(), crash_values, UNIT) for q in qs.values()),
                _unit_rank_sums(score, fwd),
            ]
        )
        total = x.sum(axis=0)
        boot = res.unit_sums(x) if res is not None else None
        for i, (sample, q) in enumerate(qs.items()):
            cols = slice(i * width, (i + 1) * width)
            part = boot[:, cols] if boot is not None else None
            for r in tail_from_sums(q, crashes, total[cols], part, 0.95):
                rows.append({"feature": name, "sample": sample, **r})
        ic_boot = boot[:, 2 * width :] if boot is not None else None
        ics.append({"feature": name, **_ic_from_sums(total[2 * width :], ic_boot, 0.95)})
    return ComponentStudy(
        ratios=pd.DataFrame(rows, columns=list(RATIO_COLUMNS)),
        ic=pd.DataFrame(ics, columns=["feature", "ic", "ci_lo", "ci_hi", "n"]),
        crashes=dict(descriptions or {c: c for c in crashes.columns}),
        reps=reps,
        block_h=block_h,
        skipped=tuple(skipped),
    )
