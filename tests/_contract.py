"""Snapshots for the contract tests (schemas, API, status page, Node consumer): built as the daemon builds
them, through the strict writer model, so what the tests read is what riskd writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from riskd.contract.models import LEVEL_CODES, STATE_CODES, DataQuality, Snapshot

T0 = datetime(2021, 5, 19, 0, tzinfo=UTC)
MULTIPLIER = {"calm": 1.0, "elevated": 0.75, "fragile": 0.5, "cascade": 0.2, "recovery": 0.6, "unknown": 0.5}


def make_snapshot(as_of: datetime, state: str = "calm", **kw: Any) -> Snapshot:
    """One hour's snapshot in ``state``; keyword arguments override any field."""
    level = kw.pop("cascade_level", "strict" if state == "cascade" else "none")
    fields: dict[str, Any] = {
        "as_of": as_of,
        "computed_at": as_of + timedelta(seconds=21),
        "live": True,
        "state": state,
        "state_code": STATE_CODES[state],
        "risk_multiplier": MULTIPLIER[state],
        "reasons": [f"state {state}"],
        "cfi": 0.4,
        "cfi_percentile": 0.6,
        "cfi_quintile": 3,
        "cascade_level": level,
        "cascade_level_code": LEVEL_CODES[level],
        "episode_id": "2021-05-19T13" if state == "cascade" else None,
        "features": {"agg_funding_z": 1.1, "btc_ret_1h": -0.01, "funding_gap": None},
        "components": {"funding_z": 1.1, "dispersion_z": 0.3},
        "data_quality": DataQuality(status="ok", coverage=1.0),
    }
    fields.update(kw)
    return Snapshot(**fields)


def week(end: datetime, hours: int = 168) -> list[Snapshot]:
    """``hours`` consecutive hours ending at ``end``: calm, then fragile, then a cascade in the last 6 h,
    with a CFI that rises into it (something a chart visibly draws)."""
    out = []
    for i in range(hours):
        as_of = end - timedelta(hours=hours - 1 - i)
        left = hours - 1 - i
        state = "cascade" if left < 6 else "fragile" if left < 24 else "calm"
        cfi = -0.5 + 3.0 * (i / hours) ** 3
        out.append(
            make_snapshot(as_of, state, cfi=round(cfi, 3), cfi_percentile=min(0.99, 0.3 + i / hours * 0.7))
        )
    return out
