"""The types riskd publishes: the hourly regime snapshot (the Redis schema) and alerts.

``Snapshot`` is the JSON other bots read from ``riskd:v1:regime``; ``docs/redis.md`` documents it and
its JSON Schema is generated from this model (``Snapshot.model_json_schema()``), so the two cannot
drift. Field changes that break readers bump ``SCHEMA_VERSION`` and the key's ``v1``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

RegimeState = Literal["calm", "elevated", "fragile", "cascade", "recovery", "unknown"]
STATE_CODES: dict[str, int] = {
    "calm": 0,
    "elevated": 1,
    "fragile": 2,
    "cascade": 3,
    "recovery": 4,
    "unknown": -1,
}
CascadeLevel = Literal["none", "volume_only", "loose", "medium", "strict"]
LEVEL_CODES: dict[str, int] = {"none": 0, "volume_only": 1, "loose": 2, "medium": 3, "strict": 4}
Severity = Literal["info", "warning", "critical"]
AlertKind = Literal["regime_change", "cascade_start", "cascade_end", "data_stale", "data_recovered"]


class DataQuality(BaseModel):
    """How much of the hour's input was there; consumers should lower trust when not ``ok``."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "degraded", "stale"] = Field(
        description="ok: every source fresh; degraded: some source stale or missing (features that need "
        "it are null); stale: the primary venue's candles for this hour are missing"
    )
    coverage: float = Field(ge=0, le=1, description="Share of the universe with a candle this hour")
    stale_sources: list[str] = Field(
        default_factory=list, description="venue:dataset pairs older than expected"
    )
    missing_sources: list[str] = Field(default_factory=list, description="venue:dataset pairs with no data")
    notes: list[str] = Field(default_factory=list, description="Plain-language remarks (what failed)")


class Snapshot(BaseModel):
    """The regime of one closed hour, as written to Redis and served at /regime."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = Field(SCHEMA_VERSION, description="Bumped on any change that breaks readers")
    as_of: datetime = Field(
        description="End of the hour the state covers (UTC, on the hour): the candle [as_of-1h, as_of)"
    )
    computed_at: datetime = Field(description="When riskd computed it (UTC)")
    live: bool = Field(
        description="True when computed within the hour after as_of; False for catch-up after downtime"
    )
    state: RegimeState = Field(description="Regime: calm, elevated, fragile, cascade, recovery (or unknown)")
    state_code: int = Field(description="Numeric state: 0 calm, 1 elevated, 2 fragile, 3 cascade, 4 recovery")
    state_since: datetime | None = Field(None, description="as_of of the hour the current state began")
    risk_multiplier: float = Field(ge=0, le=1, description="Scale positions by this (1 = full risk)")
    reasons: list[str] = Field(default_factory=list, description="The rules that put the regime where it is")
    cfi: float | None = Field(description="Composite Fragility Index (standardised units)")
    cfi_percentile: float | None = Field(description="CFI percentile against its own past, 0..1")
    cfi_quintile: int | None = Field(None, ge=1, le=5, description="1 (calm) .. 5 (most fragile)")
    cascade_level: CascadeLevel = Field(description="Highest BTC cascade level firing this hour")
    cascade_level_code: int = Field(description="0 none, 1 volume_only, 2 loose, 3 medium, 4 strict")
    multi_asset_cascade: bool = Field(False, description="The multi-asset detector fired this hour")
    episode_id: str | None = Field(None, description="Stable id of the cascade episode this hour belongs to")
    features: dict[str, float | None] = Field(
        default_factory=dict,
        description="Key features (funding_z, dispersion, gap, BTC returns, vol_ratio …)",
    )
    components: dict[str, float | None] = Field(
        default_factory=dict, description="Standardised CFI components"
    )
    data_quality: DataQuality

    def to_json(self) -> str:
        """Compact, key-sorted JSON: identical snapshots give identical bytes."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


class Alert(BaseModel):
    """One message to risk managers; its fingerprint makes delivery idempotent."""

    model_config = ConfigDict(extra="forbid")

    kind: AlertKind
    severity: Severity
    as_of: datetime = Field(description="The hour the alert is about")
    title: str
    body: str
    figures: dict[str, Any] = Field(default_factory=dict, description="The numbers that fired")
    late_by_seconds: float = Field(0.0, description="How long after as_of it was raised (catch-up)")
    episode_id: str | None = None

    @property
    def fingerprint(self) -> str:
        """Deterministic id: the same event gives the same id on any replica, before or after a restart."""
        key = f"{self.kind}|{self.as_of.isoformat()}|{self.episode_id or ''}|{self.figures.get('to', '')}"
        return hashlib.sha256(key.encode()).hexdigest()[:32]
