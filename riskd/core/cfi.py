"""The Composite Fragility Index, v1 and v2: weighted means of standardised components, and where they stand.

**v1** (the research's): components are the stage-2 z-scores named by :class:`~riskd.core.params.CFIWeights` (the funding gap
enters as |z|: divergence either way is stress), each clipped to ±``component_clip``. Missing
components drop out and the weights of the rest are renormalised; ``cfi_coverage`` says what share of
the weight was available, and below ``min_weight_coverage`` the CFI is NaN. The percentile is against
the CFI's own PAST (expanding, current hour excluded), from exact counts, so the live path (a sorted
array of past values) reproduces it exactly.

**v2**: the levels that carry tail risk (BTC realised volatility, cross-sectional return dispersion,
aggregate funding) and optional changes, each as its percentile rank against its whole past (expanding,
current hour excluded: no 168 h window that forgets a calm or a wild year), then a weighted mean of the
ranks (in [0, 1]) with the same drop-out and coverage rule as v1.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from riskd.core.params import CFIParams, CFIV2Params

COMPONENTS: dict[str, tuple[str, bool]] = {
    "agg_funding_z": ("agg_funding_z", False),
    "funding_dispersion_z": ("funding_dispersion_z", False),
    "funding_gap_abs_z": ("funding_gap_z", True),
    "extreme_funding_share_z": ("extreme_funding_share_z", False),
    "oi_change_24h_z": ("oi_change_24h_z", False),
    "btc_rv_24h_z": ("btc_rv_24h_z", False),
}
"""Weight name → (source z-score column, take the absolute value)."""


V2_COMPONENTS: tuple[str, ...] = (
    "btc_rv_24h",
    "xs_ret_std_24h",
    "agg_funding",
    "btc_rv_ratio",
    "oi_change_24h",
)
"""CFI v2's components: feature columns whose past-only rank is published as ``rank_<name>``."""


def cfi(series: Mapping[str, np.ndarray], p: CFIParams) -> tuple[np.ndarray, np.ndarray]:
    """v1 ``(cfi, cfi_coverage)``: the weighted mean of the clipped components and the weight share present."""
    comps = {}
    for name, (column, absolute) in COMPONENTS.items():
        comp = np.clip(series[column], -p.component_clip, p.component_clip)
        comps[name] = np.abs(comp) if absolute else comp
    return weighted_components(comps, p.weights.model_dump(), p.min_weight_coverage)


def cfi_v2(
    series: Mapping[str, np.ndarray],
    p: CFIV2Params,
    extra: Mapping[str, tuple[np.ndarray, float]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """v2 ``(cfi_v2, cfi_v2_coverage)``: the weighted mean of the components' past-only ranks.

    ``extra``: further ranked components as name → (rank, weight), e.g. the liquidation notional when
    ``fragility.liquidations.enabled``; they join the weights (and the coverage's denominator)."""
    ranks = {name: series[f"rank_{name}"] for name in V2_COMPONENTS}
    weights = p.weights.model_dump()
    for name, (rank, weight) in (extra or {}).items():
        ranks[name], weights[name] = rank, weight
    return weighted_components(ranks, weights, p.min_weight_coverage)


def weighted_components(
    comps: Mapping[str, np.ndarray], weights: Mapping[str, float], min_coverage: float
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean of the present components (weights renormalised) and the weight share present;
    NaN below ``min_coverage``. Added in the weights' order, elementwise: one row or many, same bits."""
    total_weight = float(sum(weights.values()))
    n = len(next(iter(comps.values())))
    num, den = np.zeros(n), np.zeros(n)
    for name, w in weights.items():
        if w == 0:
            continue
        comp = comps[name]
        present = ~np.isnan(comp)
        num = num + np.where(present, comp * w, 0.0)
        den = den + np.where(present, w, 0.0)
    share = den / total_weight if total_weight > 0 else np.zeros(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where((share >= min_coverage) & (den > 0), num / den, np.nan)
    return value, share


def percentile_from_counts(
    less: np.ndarray, equal: np.ndarray, past: np.ndarray, min_history: int
) -> np.ndarray:
    """Mid-rank percentile in [0, 1] of each value among the past ones; NaN before ``min_history``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = (less + 0.5 * equal) / past
    return np.where(past >= min_history, pct, np.nan)


def quintile(pct: np.ndarray) -> np.ndarray:
    """Quintile 1 (lowest) … 5 (highest) of a percentile; 0 where the percentile is NaN."""
    q = np.minimum(np.floor(np.nan_to_num(pct, nan=-1.0) * 5.0), 4.0) + 1.0
    return np.where(np.isnan(pct), 0, q).astype(np.int8)


def insert_sorted(sorted_past: np.ndarray, value: float) -> tuple[np.ndarray, float, float, float]:
    """Live counterpart of :func:`riskd.core.windows.expanding_rank_counts` for one new value.

    Returns the new sorted array and ``(less, equal, past)`` counts of ``value`` before insertion.
    """
    past = float(len(sorted_past))
    if np.isnan(value):
        return sorted_past, np.nan, np.nan, past
    lo = int(np.searchsorted(sorted_past, value, side="left"))
    hi = int(np.searchsorted(sorted_past, value, side="right"))
    return np.insert(sorted_past, hi, value), float(lo), float(hi - lo), past
