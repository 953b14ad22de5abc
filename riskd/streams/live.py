"""``<prefix>:regime:live``: the provisional intra-hour state, for bots that cannot wait for the hour.

One JSON document (:class:`LiveRegime`, ``provisional: true``) rewritten on every closed minute with a
TTL, plus a ``{"type": "live", …}`` message on ``<prefix>:events``. The Lua script writes only a
minute newer than the one stored, so two replicas or a restart never move the key back in time.
"""

from __future__ import annotations

from typing import Any

from riskd.contract.keys import Keys
from riskd.contract.live import LiveRegime
from riskd.contract.models import LiveEvent

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
