"""The regime under each tier signal, and the tier signal chosen from past data only (nested walk-forward).

The core's regime machine (:func:`riskd.core.regime.run`, the one the daemon runs) is replayed over the
core's frame with the tiers following another signal: a CFI's or realised volatility's past-only
percentile from the frame, or the walk-forward crash probability (what the daemon would have published
with a monthly recalibration; the batch path's one model file would be in sample). Cascade hours,
recovery windows and degraded-data caps are the frame's own, so on the configured signal this gives the
frame's ``risk_multiplier`` exactly (tests/test_research_filter.py).

**No selection on the test set.** The regime the filter table scores first is the one whose tier signal
is *chosen* at each month start from the past only: the candidate whose out-of-sample probability had the
lowest Brier score over the hours whose label was known by then (from the first out-of-sample hour), at
least ``min_history_h`` of them; before that, the configured signal. That choice is what the table scores
(the fixed-signal rows beside it were not chosen on anything but are shown for what they are).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskd.core.batch import last_flag_hours
from riskd.core.output import SIGNAL_COLUMNS, cascade_relevant
from riskd.core.panel import HOUR_NS
from riskd.core.params import FragilityParams
from riskd.core.regime import REASONS, risk_multiplier, run
from riskd.research.labels import known_mask

TIER_SIGNALS: dict[str, str] = {
    "cfi_v1": "cfi_v1",
    "cfi_v2": "cfi_v2",
    "btc_rv": "btc_rv_24h",
    "crash_prob": "crash_prob_24h",
}
"""Tier signal (``fragility.regime.signal``) → the name of its out-of-sample probability (the signals part)."""
NESTED = "regime, tier chosen monthly (nested)"


def regime_name(signal: str) -> str:
    """The filter row of the regime on one tier signal."""
    return f"regime on {signal}"


def regime_multiplier(frame: pd.DataFrame, signal: np.ndarray, tier: str, p: FragilityParams) -> pd.Series:
    """``risk_multiplier`` had the regime's tiers followed ``signal`` (percentile, or probability for
    ``crash_prob``) with ``tier``'s thresholds; the frame gives the cascade flags and degraded hours."""
    hours = (pd.DatetimeIndex(frame.index).as_unit("ns").asi8 // HOUR_NS).astype(np.int64)
    flags = {
        "cascade_level": frame["cascade_level"].to_numpy(dtype=np.int64),
        "multi_asset": frame["multi_asset"].to_numpy(dtype=bool),
    }
    since = hours - last_flag_hours(cascade_relevant(flags, p), hours)
    regime = p.regime.model_copy(update={"signal": tier})
    states, _, _, _ = run(np.asarray(signal, dtype=np.float64), since, regime)
    degraded = (frame["reason_bits"].to_numpy(dtype=np.int64) & REASONS["degraded_data"]) != 0
    return pd.Series(risk_multiplier(states, degraded, regime), index=frame.index, name=regime_name(tier))


def regime_variants(
    frame: pd.DataFrame, p: FragilityParams, crash_prob: pd.Series | None
) -> dict[str, pd.Series]:
    """The regime's multiplier under every tier signal the frame (and the walk-forward probability) has."""
    out = {}
    for tier, column in SIGNAL_COLUMNS.items():
        if tier == p.regime.signal and tier != "crash_prob" and "risk_multiplier" in frame:
            # the core's own multiplier: what the replay gives, bit for bit (tests/test_research_filter.py)
            out[regime_name(tier)] = frame["risk_multiplier"].astype(float).rename(regime_name(tier))
            continue
        if tier == "crash_prob":
            values = None if crash_prob is None else crash_prob.reindex(frame.index)
        else:
            values = frame.get(column)
        if values is None or not values.notna().any():
            continue
        out[regime_name(tier)] = regime_multiplier(frame, values.to_numpy(dtype=float), tier, p)
    return out


@dataclass(frozen=True)
class TierChoice:
    """The nested choice: per month start, the chosen tier signal and each candidate's past Brier."""

    months: pd.DataFrame
    multiplier: pd.Series


def choose_tiers(
    variants: Mapping[str, pd.Series],
    probabilities: pd.DataFrame,
    *,
    default: str,
    horizon_h: int,
    min_history_h: int = 24 * 180,
) -> TierChoice:
    """At each month start, the candidate tier with the lowest past Brier of its out-of-sample
    probability (``probabilities``: the signals part's hours × signals with ``crash``), and its regime's
    multiplier over that month. Candidates: tiers with both a variant and a probability."""
    tiers = [t for t in TIER_SIGNALS if regime_name(t) in variants and TIER_SIGNALS[t] in probabilities]
    index = pd.DatetimeIndex(next(iter(variants.values())).index)
    out = variants[regime_name(default)].copy() if regime_name(default) in variants else None
    if out is None or not tiers or probabilities.empty:
        return TierChoice(pd.DataFrame(columns=["month", "chosen"]), pd.Series(dtype=float, name=NESTED))
    y = probabilities["crash"].to_numpy()
    err = {t: (probabilities[TIER_SIGNALS[t]].to_numpy() - y) ** 2 for t in tiers}
    scored = pd.DatetimeIndex(probabilities.index)
    rows = []
    for month in pd.date_range(scored[0].ceil("D"), index[-1], freq="MS", tz=index.tz):
        past = known_mask(scored, horizon_h, month)
        briers = {t: float(e[past].mean()) if past.sum() else np.nan for t, e in err.items()}
        chosen = min(tiers, key=lambda t: briers[t]) if past.sum() >= min_history_h else default
        sel = (index >= month) & (index < month + pd.offsets.MonthBegin(1))
        out[sel] = variants[regime_name(chosen)][sel]
        rows.append({"month": month, "chosen": chosen, "past_hours": int(past.sum())} | briers)
    return TierChoice(pd.DataFrame(rows), out.rename(NESTED))
