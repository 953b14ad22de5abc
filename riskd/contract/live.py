"""``<prefix>:regime:live``'s document: the provisional intra-hour state (``streams.enabled``), a published
payload like the snapshot, with its own shipped schema (``regime-live.v1``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from riskd.contract.models import ProvisionalLevel

LIVE_SCHEMA_VERSION = 1


class StreamStatus(BaseModel):
    """One websocket feed."""

    model_config = ConfigDict(extra="forbid")

    up: bool = Field(description="Receiving; false while disconnected or stalled (a gap is open)")
    reconnects: int = Field(description="Reconnections since start")
    stalls: int = Field(description="Stalls detected since start")


class LiveRegime(BaseModel):
    """The payload of ``<prefix>:regime:live`` (docs/redis.md, regime:live)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = Field(LIVE_SCHEMA_VERSION, description="Bumped on changes that break readers")
    provisional: Literal[True] = Field(True, description="Always true: not the hourly regime")
    minute: datetime = Field(description="Close of the last closed minute the state covers (UTC)")
    minute_ms: int = Field(description="The same, in ms since the epoch (ordering key)")
    as_of: datetime = Field(
        description="End of the hour in progress: the hourly snapshot that will settle it"
    )
    computed_at: datetime = Field(description="When riskd computed it (UTC)")
    provisional_level: ProvisionalLevel = Field(description="none, watch, developing or severe")
    provisional_level_code: int = Field(description="0 none, 1 watch, 2 developing, 3 severe")
    firing: bool = Field(description="The level reaches streams.detector.alert_level this minute")
    episode_id: str | None = Field(None, description="Provisional episode of this hour, once one fired")
    fired_at: datetime | None = Field(None, description="Close of the minute the episode first fired")
    features: dict[str, float | None] = Field(
        default_factory=dict,
        description="btc_ret_5m/15m/60m (fractions), vol_surge, breadth (0..1), liq_usd_window, liq_surge",
    )
    liquidations: dict[str, dict[str, float | bool]] = Field(
        default_factory=dict,
        description="Per venue, the hour so far: events, notional_usd, long_usd (longs liquidated: sells), "
        "short_usd, max_usd, coverage (0..1) and partial (true when any minute was not fully recorded)",
    )
    streams: dict[str, StreamStatus] = Field(default_factory=dict, description="Each websocket feed")
    data_quality: Literal["ok", "degraded"] = Field(
        description="degraded when a feed is down or the candles of this minute are missing"
    )
    last_outcome: dict[str, Any] | None = Field(
        None, description="The latest settled provisional episode: {as_of, episode_id, outcome}"
    )

    def to_json(self) -> str:
        """Compact, key-sorted JSON."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
