"""One row of the core's output -> the published Snapshot (pure).

The live daemon, ``riskd replay`` and the tests all build snapshots here, so the Redis key, the
history stream, /regime and the metrics carry the core's numbers under one mapping: codes by name
(the core orders states by severity, the schema by documented code), quintile 0 -> unknown, the
comma-separated reasons -> a list, and the candle's open time T -> ``as_of = T + 1h``. A blind hour (the
core's ``regime`` is ``unknown``: too little data) keeps that state and the fail-safe multiplier.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from riskd.contract.models import LEVEL_CODES, STATE_CODES, DataQuality, Snapshot
from riskd.contract.trading import DEFAULT_TABLE, TradingTable, derive
from riskd.core.cfi import COMPONENTS, V2_COMPONENTS
from riskd.core.liquidations import FEATURE_COLUMNS as LIQ_FEATURES
from riskd.core.output import LIQ_RANKED
from riskd.sources.registry import with_role

KEY_FEATURES: tuple[str, ...] = (
    "agg_funding", "agg_funding_z", "funding_dispersion", "funding_dispersion_z", "funding_gap",
    "funding_gap_z", "extreme_funding_share", "btc_ret_1h", "btc_ret_4h", "btc_accel_1h", "btc_accel_4h",
    "btc_vol_ratio", "btc_rv_24h", "btc_drawdown_24h", "breadth_down", "oi_change_24h", "multi_asset_count",
    "coverage", "xs_ret_std_24h", "funding_universe_n", "cfi_v1", "cfi_v1_pct", "cfi_v2", "cfi_v2_pct",
)  # fmt: skip
"""Features published in the snapshot (all of them are in the batch frame; these are the ones bots use)."""

_LEVEL_NAMES = {0: "none", 1: "volume_only", 2: "loose", 3: "medium", 4: "strict"}


def _num(value: Any) -> float | None:
    """A finite float or None (JSON has no NaN)."""
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def hour_close(ts: pd.Timestamp) -> datetime:
    """``as_of`` of the candle opened at ``ts``: the moment it closed and became known."""
    return (pd.Timestamp(ts) + pd.Timedelta(hours=1)).to_pydatetime()


def features_of(row: Mapping[str, Any]) -> dict[str, float | None]:
    """The key features, plus the per-venue funding gaps the dashboards show (``gap_<venue>`` for each
    gap venue of the registry the core computed an aggregate for: primary minus that venue)."""
    out = {name: _num(row.get(name)) for name in KEY_FEATURES}
    out.update({name: _num(row[name]) for name in LIQ_FEATURES if name in row})  # only when enabled
    primary = _num(row.get("agg_funding"))
    for venue in with_role("gap"):
        if f"agg_funding_{venue}" not in row:
            continue
        other = _num(row.get(f"agg_funding_{venue}"))
        out[f"gap_{venue}"] = primary - other if primary is not None and other is not None else None
    return out


def components_of(row: Mapping[str, Any]) -> dict[str, float | None]:
    """CFI v1's z-score components by weight name, and v2's past-only ranks as ``rank_<name>``."""
    out = {name: _num(row.get(col)) for name, (col, _) in COMPONENTS.items()}
    out.update({f"rank_{name}": _num(row.get(f"rank_{name}")) for name in V2_COMPONENTS})
    if f"rank_{LIQ_RANKED}" in row:
        out[f"rank_{LIQ_RANKED}"] = _num(row[f"rank_{LIQ_RANKED}"])
    return out


def to_snapshot(
    ts: pd.Timestamp,
    row: Mapping[str, Any],
    *,
    computed_at: datetime,
    quality: DataQuality,
    live: bool,
    trading: TradingTable = DEFAULT_TABLE,
) -> Snapshot:
    """The snapshot of the hour opened at ``ts`` from its core output ``row``; ``trading`` is the
    trading-state table (the ``trading`` settings)."""
    as_of = hour_close(ts)
    state = str(row.get("regime") or "unknown")
    if state not in STATE_CODES:
        state = "unknown"
    hours = _num(row.get("hours_in_regime"))
    known = state != "unknown"  # a blind hour: the machine's own state lies beneath, not published
    since = as_of - timedelta(hours=int(hours) - 1) if known and hours is not None and hours >= 1 else None
    level_code = int(row.get("cascade_level") or 0)
    level = _LEVEL_NAMES.get(level_code, "none")
    quintile = int(row.get("cfi_quintile") or 0)
    reasons = [r.strip() for r in str(row.get("reasons") or "").split(",") if r.strip()]
    episode = row.get("episode_id") or None
    multiplier = _num(row.get("risk_multiplier"))
    multiplier = multiplier if multiplier is not None else 0.5
    return Snapshot(
        as_of=as_of,
        computed_at=computed_at,
        live=live,
        state=state,
        state_code=STATE_CODES[state],
        state_since=since,
        risk_multiplier=multiplier,
        reasons=reasons,
        cfi=_num(row.get("cfi")),
        cfi_percentile=_num(row.get("cfi_pct")),
        cfi_quintile=quintile or None,
        crash_prob_24h=_num(row.get("crash_prob_24h")),
        cascade_level=level,
        cascade_level_code=LEVEL_CODES[level],
        multi_asset_cascade=bool(row.get("multi_asset")),
        episode_id=str(episode) if episode else None,
        features=features_of(row),
        components=components_of(row),
        data_quality=quality,
        trading_state=derive(state, multiplier, quality.status, table=trading),
    )


def snapshots_of(
    frame: pd.DataFrame,
    *,
    computed_at: datetime,
    quality: DataQuality | None = None,
    live: bool = False,
    trading: TradingTable = DEFAULT_TABLE,
) -> list[Snapshot]:
    """Every row of a core output frame as snapshots (replay, export, tests)."""
    q = quality or DataQuality(status="ok", coverage=1.0)
    records: Sequence[dict[str, Any]] = frame.to_dict("records")
    return [
        to_snapshot(
            ts, rec, computed_at=computed_at, quality=_with_coverage(q, rec), live=live, trading=trading
        )
        for ts, rec in zip(frame.index, records, strict=True)
    ]


def _with_coverage(q: DataQuality, row: Mapping[str, Any]) -> DataQuality:
    cov = _num(row.get("coverage"))
    return q if cov is None else q.model_copy(update={"coverage": max(0.0, min(1.0, cov))})
