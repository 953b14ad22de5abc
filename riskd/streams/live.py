"""``<prefix>:regime:live``: the provisional intra-hour state, for bots that cannot wait for the hour.

One JSON document (:class:`LiveRegime`, ``provisional: true``) rewritten on every closed minute with a
TTL, plus a ``{"type": "live", …}`` message on ``<prefix>:events``. The Lua script writes only a
minute newer than the one stored, so two replicas or a restart never move the key back in time.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from riskd.core.intrahour import ProvisionalLevel
from riskd.models import Keys, LiveEvent

LIVE_SCHEMA_VERSION = 1

_PUBLISH = """
local key, channel = KEYS[1], KEYS[2]
local body, minute, ttl, note = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local cur = redis.call('GET', key)
if cur then
  local ok, doc = pcall(cjson.decode, cur)
  if ok and type(doc) == 'table' and tonumber(doc['minute_ms']) and tonumber(doc['minute_ms']) >= minute then
    return 0
  end
end
redis.call('SET', key, body, 'PX', ttl)
redis.call('PUBLISH', channel, note)
return 1
"""


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


class LivePublisher:
    """Writes :class:`LiveRegime` documents to Redis (atomic, newer minutes only)."""

    def __init__(self, client: Any, prefix: str, ttl_s: float) -> None:
        names = Keys(prefix)
        self.key, self.channel, self.episodes_key = names.live, names.events, names.live_episodes
        self._ttl_ms = int(ttl_s * 1000)
        self._script = client.register_script(_PUBLISH)
        self.client = client

    async def publish(self, doc: LiveRegime) -> bool:
        """Write ``doc``; False when a newer minute is already there."""
        note = LiveEvent(type="live", minute=doc.minute, level=doc.provisional_level).model_dump_json()
        res = await self._script(keys=[self.key, self.channel],
                                 args=[doc.to_json(), doc.minute_ms, self._ttl_ms, note])  # fmt: skip
        return bool(res)
