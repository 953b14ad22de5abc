"""The shape of the core's answer: derived columns shared by both paths, and the result frame.

:func:`derive` turns stage-1 series into everything that has a finite look-back (stage 2, CFI,
cascade levels): the batch path calls it on the whole history, the live path on its buffer. The
stateful rest (percentile, episodes, regime) is done by each path its own way and checked equal by
the tests. :func:`assemble` builds the frame both paths return, column for column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from riskd.core import liquidations
from riskd.core.cascade import LEVEL_NAMES, LEVELS, level_code, level_flags
from riskd.core.cfi import V2_COMPONENTS, cfi, cfi_v2, percentile_from_counts, quintile
from riskd.core.crashprob import CrashModel, predict
from riskd.core.params import FragilityParams
from riskd.core.regime import REASONS, STATES
from riskd.core.timeseries import CRASH_INPUTS, stage2

UNKNOWN = "unknown"
"""The published ``regime`` of a blind hour (``degraded``: coverage below ``regime.min_coverage`` or no BTC
price): too little data to say; its ``risk_multiplier`` is ``regime.unknown_multiplier``."""
PASS_THROUGH: frozenset[str] = frozenset({"btc_close", "btc_volume"})
COVERAGE_PREFIXES: tuple[str, ...] = ("coverage", "funding_coverage_", "oi_coverage", "spot_standin_share")


def derive(s1: Mapping[str, np.ndarray], p: FragilityParams) -> dict[str, np.ndarray]:
    """Stage 2, CFI, cascade flags and the blind-hour flag (``degraded``) from the stage-1 series."""
    out = dict(s1)
    out.update(stage2(s1, p))
    out["cfi_v1"], out["cfi_v1_coverage"] = cfi(out, p.cfi)
    flags = level_flags(out["btc_ret_1h"], out["btc_vol_ratio"], out["agg_funding_z"], p.cascade)
    out.update({f"cascade_{name}": flag for name, flag in flags.items()})
    out["cascade_level"] = level_code(flags)
    out["multi_asset"] = out["multi_asset_count"] >= p.multi_asset.min_assets
    out["degraded"] = (out["coverage"] < p.regime.min_coverage) | np.isnan(out["btc_close"])
    return out


RankCounts = Callable[[str, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
"""``(name, values) → (less, equal, past)``: how each value ranks among the series' own past values
(the batch path counts over the whole history, the live path against its sorted past)."""

RANKED: tuple[str, ...] = (*V2_COMPONENTS, "cfi_v1", "cfi_v2")
"""Series ranked against their own past, in the order :func:`stateful_signals` ranks them."""
LIQ_RANKED = "liq_notional_usd"
"""With ``fragility.liquidations.enabled``, the liquidation notional is ranked too and enters CFI v2."""


def ranked_series(p: FragilityParams) -> tuple[str, ...]:
    """The series the live state keeps a sorted past of: :data:`RANKED`, and the liquidation notional
    when it is enabled."""
    return (*RANKED, LIQ_RANKED) if p.liquidations.enabled else RANKED


SIGNAL_COLUMNS: dict[str, str] = {
    "cfi_v1": "cfi_v1_pct",
    "cfi_v2": "cfi_v2_pct",
    "crash_prob": "crash_prob_24h",
    "btc_rv": "rank_btc_rv_24h",
}
"""``regime.signal`` → the column the regime's tiers follow."""


def stateful_signals(
    d: dict[str, np.ndarray], p: FragilityParams, counts: RankCounts, model: CrashModel | None
) -> None:
    """Past-only ranks, CFI v2, both CFI percentiles, the chosen CFI, the crash probability and the
    regime's signal, filled into ``d``. Both paths call this; they differ only in ``counts``."""
    for name in V2_COMPONENTS:
        d[f"rank_{name}"] = percentile_from_counts(*counts(name, d[name]), p.cfi_v2.rank_min_history)
    extra = {}
    if p.liquidations.enabled:  # the notional's rank, not its z: v2 ranks levels against their whole past
        rank = percentile_from_counts(*counts(LIQ_RANKED, d[LIQ_RANKED]), p.cfi_v2.rank_min_history)
        d[f"rank_{LIQ_RANKED}"] = rank
        extra[LIQ_RANKED] = (rank, p.liquidations.cfi_weight)
    d["cfi_v2"], d["cfi_v2_coverage"] = cfi_v2(d, p.cfi_v2, extra)
    for version in ("cfi_v1", "cfi_v2"):
        d[f"{version}_pct"] = percentile_from_counts(
            *counts(version, d[version]), p.cfi.percentile_min_history
        )
    chosen = f"cfi_{p.cfi.version}"
    d["cfi"], d["cfi_coverage"], d["cfi_pct"] = d[chosen], d[f"{chosen}_coverage"], d[f"{chosen}_pct"]
    d["cfi_quintile"] = quintile(d["cfi_pct"])
    n = len(d["cfi"])
    d["crash_prob_24h"] = predict(model, d) if model is not None else np.full(n, np.nan)
    d["regime_signal"] = d[SIGNAL_COLUMNS[p.regime.signal]]


def cascade_relevant(d: Mapping[str, np.ndarray], p: FragilityParams) -> np.ndarray:
    """Hours whose flags put the regime into 'cascade'."""
    hit = d["cascade_level"] >= p.regime.cascade_min_level
    if p.regime.cascade_on_multi_asset:
        hit = hit | d["multi_asset"]
    return hit


def hour_reasons(d: Mapping[str, np.ndarray]) -> np.ndarray:
    """Reason bits that describe the hour itself (levels fired, multi-asset, degraded data)."""
    bits = np.zeros(len(d["cascade_level"]), dtype=np.int64)
    for name in LEVELS:
        bits |= np.where(d[f"cascade_{name}"], REASONS[f"cascade_{name}"], 0)
    bits |= np.where(d["multi_asset"], REASONS["multi_asset"], 0)
    bits |= np.where(d["degraded"], REASONS["degraded_data"], 0)
    return bits


def feature_columns(s1_names: list[str]) -> list[str]:
    """The feature columns in output order (stage 1 then stage 2), coverage and pass-through excluded."""
    s1 = [n for n in s1_names if n not in PASS_THROUGH and not n.startswith(COVERAGE_PREFIXES)]
    liq = list(liquidations.STAGE2) if liquidations.STAGE1[0] in s1_names else []
    return s1 + list(STAGE2_COLUMNS) + liq


STAGE2_COLUMNS: tuple[str, ...] = (
    "btc_ret_1h",
    "btc_ret_4h",
    "btc_accel_1h",
    "btc_accel_4h",
    "btc_vol_ratio",
    "btc_rv_24h",
    "btc_rv_ratio",
    "btc_drawdown_24h",
    "xs_ret_std_24h",
    "market_volume_ratio",
    "agg_funding_change_24h",
    "agg_funding_z",
    "funding_dispersion_z",
    "funding_gap_z",
    "extreme_funding_share_z",
    "oi_change_24h_z",
    "btc_rv_24h_z",
    "market_volume_ratio_z",
    *CRASH_INPUTS,
)
STATE_COLUMNS: tuple[str, ...] = (
    "cfi",
    "cfi_coverage",
    "cfi_pct",
    "cfi_quintile",
    "cfi_v1",
    "cfi_v1_coverage",
    "cfi_v1_pct",
    *(f"rank_{name}" for name in V2_COMPONENTS),
    "cfi_v2",
    "cfi_v2_coverage",
    "cfi_v2_pct",
    "crash_prob_24h",
    "regime_signal",
    *(f"cascade_{n}" for n in LEVELS),
    "cascade_level",
    "cascade_level_name",
    "episode_id",
    "episode_level",
    "multi_asset",
    "multi_episode_id",
    "regime",
    "regime_code",
    "hours_in_regime",
    "risk_multiplier",
    "reasons",
    "reason_bits",
)


def assemble(index: pd.DatetimeIndex, d: Mapping[str, np.ndarray], s1_names: list[str]) -> pd.DataFrame:
    """The result frame: features, CFI, cascade, regime, then coverage columns, indexed by ``ts``."""
    cols: dict[str, object] = {}
    for name in feature_columns(s1_names):
        cols[name] = d[name]
    for name in STATE_COLUMNS:
        if name == "cascade_level_name":
            cols[name] = np.asarray(LEVEL_NAMES, dtype=object)[d["cascade_level"].astype(np.int64)]
        elif name == "regime":  # a blind hour is published as unknown; the machine runs on beneath it
            states = np.asarray(STATES, dtype=object)[d["regime_code"].astype(np.int64)]
            cols[name] = np.where(d["degraded"], UNKNOWN, states)
        else:
            cols[name] = d[name]
    if f"rank_{LIQ_RANKED}" in d:
        cols[f"rank_{LIQ_RANKED}"] = d[f"rank_{LIQ_RANKED}"]
    for name in s1_names:
        if name.startswith(COVERAGE_PREFIXES):
            cols[name] = d[name]
    frame = pd.DataFrame(cols, index=pd.DatetimeIndex(index, name="ts"))
    for name in ("cascade_level_name", "episode_id", "multi_episode_id", "regime", "reasons"):
        frame[name] = frame[name].astype("string")
    return frame
