"""The alert outbox in Redis: each state change is one atomic Lua script, so no crash splits it.

Keys under ``{prefix}:alerts:`` (prefix = ``redis.key_prefix``, e.g. ``riskd:v1``):

===========================  ======  ==========================================================
``seen:{fingerprint}``       string  de-duplication: the event was handled (TTL 30 d)
``last:{kind}``              string  as_of (ms) of the last queued alert of a kind, for cooldown (30 d)
``mute:{kind|all}``          string  active mute, value = until (ISO); TTL = the mute's duration
``seq``                      string  counter giving items a FIFO id
``item:{id}``                hash    one delivery: alert JSON, dest, silent, chart key, attempts,
                                     inflight, maybe_sent, owner, enqueued_ms, last_error (no TTL:
                                     deleted when sent)
``due``                      zset    id → when it may be claimed (ms); while claimed, lease expiry
``sent:{id}``                string  receipt (e.g. Telegram message id), written with the delete
                                     of the item (TTL 7 d)
``chart:{sha}``              string  base64 PNG shared by the items of one hour (TTL 7 d)
``thread:{thread}:{dest}``   string  receipt of a thread's first delivered message; later messages of
                                     the thread reply to it (TTL 7 d)
``alert:{fingerprint}``      string  the alert JSON once delivered, to edit or escalate it (TTL 7 d)
``msgs:{fingerprint}``       hash    dest → channel receipt (Telegram message id) of each copy (7 d)
``pending``                  zset    fingerprint → when its escalation is due (ms): critical alerts
                                     delivered and not yet acknowledged
``ack:{fingerprint}``        string  JSON {by, at}: the first acknowledgement wins (TTL 30 d)
``escalated:{fingerprint}``  string  the escalation was claimed (SET NX): never twice (TTL 30 d)
===========================  ======  ==========================================================

Escalation items carry ``escalation`` = minutes waited; their ids end in ``:esc-{dest}``.

Item ids are ``{seq:012d}:{fingerprint}:{dest}``. The scripts build key names from the prefix, so
the outbox needs a single Redis (not Cluster), as the rest of riskd does.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from riskd.models import Alert

if TYPE_CHECKING:
    from redis.asyncio import Redis

_SUBMIT = """
local p, fp, kind, sev = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local seen_ttl, cooldown, now, as_of = ARGV[5], tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
local seen = p .. ':alerts:seen:' .. fp
if redis.call('EXISTS', seen) == 1 then return 'duplicate' end
redis.call('SET', seen, now, 'PX', seen_ttl)
if redis.call('EXISTS', p .. ':alerts:mute:all', p .. ':alerts:mute:' .. kind) > 0 then return 'muted' end
if cooldown > 0 then
  local key = p .. ':alerts:last:' .. kind
  local last = tonumber(redis.call('GET', key) or '-1')
  if sev ~= 'critical' and last >= 0 and as_of >= last and as_of - last < cooldown then return 'cooldown' end
  if as_of > last then redis.call('SET', key, as_of, 'PX', seen_ttl) end
end
for i = 12, #ARGV do
  local id = string.format('%012d', redis.call('INCR', p .. ':alerts:seq')) .. ':' .. fp .. ':' .. ARGV[i]
  redis.call('HSET', p .. ':alerts:item:' .. id, 'alert', ARGV[9], 'dest', ARGV[i], 'silent', ARGV[10],
    'chart', ARGV[11], 'attempts', 0, 'inflight', 0, 'maybe_sent', 0, 'enqueued_ms', now)
  redis.call('ZADD', p .. ':alerts:due', now, id)
end
return 'queued'
"""

_CLAIM = """
local p, now, lease, owner = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local due = p .. ':alerts:due'
for _ = 1, 50 do
  local ids = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, 1)
  if #ids == 0 then return false end
  local id = ids[1]
  local item = p .. ':alerts:item:' .. id
  if redis.call('EXISTS', item) == 0 or redis.call('EXISTS', p .. ':alerts:sent:' .. id) == 1 then
    redis.call('ZREM', due, id)
    redis.call('DEL', item)
  else
    redis.call('ZADD', due, now + lease, id)
    if redis.call('HGET', item, 'inflight') == '1' then redis.call('HSET', item, 'maybe_sent', 1) end
    redis.call('HSET', item, 'owner', owner, 'inflight', 0)
    local out = redis.call('HGETALL', item)
    table.insert(out, 1, id)
    return out
  end
end
return false
"""

_START = """
local item = ARGV[1] .. ':alerts:item:' .. ARGV[2]
if redis.call('HGET', item, 'owner') ~= ARGV[3] then return 0 end
redis.call('HSET', item, 'inflight', 1)
return 1
"""

_MARK = """
local p, id = ARGV[1], ARGV[2]
local item = p .. ':alerts:item:' .. id
local mine = redis.call('HGET', item, 'owner') == ARGV[3]
local fp, alert = ARGV[6], redis.call('HGET', item, 'alert')
if alert then
  redis.call('SET', p .. ':alerts:alert:' .. fp, alert, 'PX', ARGV[5])
  redis.call('HSET', p .. ':alerts:msgs:' .. fp, redis.call('HGET', item, 'dest'), ARGV[4])
  redis.call('PEXPIRE', p .. ':alerts:msgs:' .. fp, ARGV[5])
  local due = tonumber(ARGV[7])
  if due > 0 and redis.call('HGET', item, 'escalation') ~= '1'
     and redis.call('EXISTS', p .. ':alerts:ack:' .. fp, p .. ':alerts:escalated:' .. fp) == 0 then
    redis.call('ZADD', p .. ':alerts:pending', 'NX', due, fp)
  end
end
redis.call('SET', p .. ':alerts:sent:' .. id, ARGV[4], 'PX', ARGV[5])
redis.call('DEL', item)
redis.call('ZREM', p .. ':alerts:due', id)
if mine then return 1 end
return 0
"""

_RELEASE = """
local p, id = ARGV[1], ARGV[2]
local item = p .. ':alerts:item:' .. id
if redis.call('HGET', item, 'owner') ~= ARGV[3] then return -1 end
local attempts = tonumber(redis.call('HGET', item, 'attempts'))
if ARGV[5] == '1' then attempts = redis.call('HINCRBY', item, 'attempts', 1) end
redis.call('HSET', item, 'inflight', 0, 'owner', '', 'last_error', ARGV[7])
if ARGV[6] == '0' then redis.call('HSET', item, 'maybe_sent', 1) end
local score = redis.call('HGET', item, 'enqueued_ms')
if attempts >= tonumber(ARGV[8]) then score = tonumber(ARGV[4]) + tonumber(ARGV[9]) end
redis.call('ZADD', p .. ':alerts:due', score, id)
return attempts
"""

_ESCALATE = """
local p, fp, now, ttl, minutes = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
redis.call('ZREM', p .. ':alerts:pending', fp)
if redis.call('EXISTS', p .. ':alerts:ack:' .. fp) == 1 then return 'acknowledged' end
local alert = redis.call('GET', p .. ':alerts:alert:' .. fp)
if not alert then return 'expired' end
if not redis.call('SET', p .. ':alerts:escalated:' .. fp, now, 'NX', 'PX', ttl) then return 'already' end
for i = 6, #ARGV do
  local id = string.format('%012d', redis.call('INCR', p .. ':alerts:seq')) .. ':' .. fp .. ':esc-' .. ARGV[i]
  redis.call('HSET', p .. ':alerts:item:' .. id, 'alert', alert, 'dest', ARGV[i], 'silent', 0, 'chart', '',
    'attempts', 0, 'inflight', 0, 'maybe_sent', 0, 'enqueued_ms', now, 'escalation', minutes)
  redis.call('ZADD', p .. ':alerts:due', now, id)
end
return 'escalated'
"""

_ACK = """
local p, fp = ARGV[1], ARGV[2]
redis.call('SET', p .. ':alerts:ack:' .. fp, ARGV[3], 'NX', 'PX', ARGV[4])
redis.call('ZREM', p .. ':alerts:pending', fp)
return redis.call('GET', p .. ':alerts:ack:' .. fp)
"""

MUTE_TYPES = (
    "all", "regime_change", "cascade_start", "cascade_end", "data_stale", "data_recovered", "cascade_developing",
)  # fmt: skip
DEFER_AFTER_ATTEMPTS = 3
"""After this many failures an item stops holding the head of the queue and waits retry_interval_s."""


@dataclass
class Item:
    """One claimed delivery: an alert for one destination."""

    id: str
    alert: Alert
    dest: str
    silent: bool
    chart_key: str
    attempts: int
    maybe_sent: bool
    escalation: float | None = None
    """An escalation copy: the minutes it waited unacknowledged."""


class Outbox:
    """The Redis side of the pipeline; ``owner`` fences this worker's leases."""

    def __init__(
        self, redis: Redis, prefix: str, owner: str, *, seen_ttl_s: float, sent_ttl_s: float
    ) -> None:
        self.redis = redis
        self.p = prefix
        self.owner = owner
        self._seen_ttl_ms = int(seen_ttl_s * 1000)
        self._sent_ttl_ms = int(sent_ttl_s * 1000)
        self._scripts = {n: redis.register_script(s) for n, s in
                         (("submit", _SUBMIT), ("claim", _CLAIM), ("start", _START), ("mark", _MARK),
                          ("release", _RELEASE), ("escalate", _ESCALATE), ("ack", _ACK))}  # fmt: skip

    async def submit(self, alert: Alert, *, silent: bool, chart_key: str, cooldown_ms: int,
                     now_ms: int, dests: list[str]) -> str:  # fmt: skip
        """De-duplicate, check mutes and cooldown, queue one item per destination — all or nothing."""
        res = await self._scripts["submit"](args=[
            self.p, alert.fingerprint, alert.kind, alert.severity, self._seen_ttl_ms, cooldown_ms, now_ms,
            int(alert.as_of.timestamp() * 1000), alert.model_dump_json(), "1" if silent else "0", chart_key,
            *dests,
        ])  # fmt: skip
        return _text(res)

    async def claim(self, now_ms: int, lease_ms: int) -> Item | None:
        """Lease the oldest due item (a crashed holder's ``inflight`` becomes ``maybe_sent``)."""
        raw = await self._scripts["claim"](args=[self.p, now_ms, lease_ms, self.owner])
        if not raw:
            return None
        vals = [_text(v) for v in raw]
        fields = dict(zip(vals[1::2], vals[2::2], strict=True))
        return Item(
            id=vals[0],
            alert=Alert.model_validate_json(fields["alert"]),
            dest=fields["dest"],
            silent=fields["silent"] == "1",
            chart_key=fields.get("chart", ""),
            attempts=int(fields.get("attempts", "0")),
            maybe_sent=fields.get("maybe_sent") == "1",
            escalation=float(fields["escalation"]) if fields.get("escalation") else None,
        )

    async def start(self, item: Item) -> bool:
        """Mark the item in flight just before the request; False when the lease was lost."""
        return bool(await self._scripts["start"](args=[self.p, item.id, self.owner]))

    async def mark(self, item: Item, receipt: str, *, escalate_at_ms: int = 0) -> bool:
        """Record the channel's receipt (and the copy's message id) and remove the item, atomically;
        False if the lease had lapsed. ``escalate_at_ms`` > 0 puts the alert on the escalation list
        (once, unless acknowledged or escalated already)."""
        return bool(await self._scripts["mark"](args=[
            self.p, item.id, self.owner, receipt, self._sent_ttl_ms, item.alert.fingerprint, escalate_at_ms,
        ]))  # fmt: skip

    async def release(self, item: Item, *, now_ms: int, counts: bool, definite: bool, error: str,
                      defer_ms: int) -> int:  # fmt: skip
        """Give the item back after a failure; returns its attempt count (-1: not ours any more)."""
        res = await self._scripts["release"](args=[
            self.p, item.id, self.owner, now_ms, "1" if counts else "0", "1" if definite else "0",
            error[:300], DEFER_AFTER_ATTEMPTS, defer_ms,
        ])  # fmt: skip
        return int(res)

    async def due_escalations(self, now_ms: int) -> list[str]:
        """Fingerprints whose escalation is due."""
        raw = await self.redis.zrangebyscore(f"{self.p}:alerts:pending", "-inf", now_ms)
        return [_text(v) for v in raw]

    async def escalate(self, fingerprint: str, *, now_ms: int, minutes: float, dests: list[str]) -> str:
        """Queue the escalation copies of one alert, atomically and at most once across replicas.

        Outcomes: ``escalated``, ``acknowledged`` (nothing to do), ``already`` (another replica or an
        earlier run did it), ``expired`` (the alert is gone from Redis).
        """
        return _text(await self._scripts["escalate"](
            args=[self.p, fingerprint, now_ms, self._seen_ttl_ms, f"{minutes:g}", *dests]
        ))  # fmt: skip

    async def acknowledge(self, fingerprint: str, ack_json: str) -> str:
        """Record an acknowledgement (the first one wins) and cancel the escalation; returns the stored one."""
        return _text(await self._scripts["ack"](args=[self.p, fingerprint, ack_json, self._seen_ttl_ms]))

    async def ack_of(self, fingerprint: str) -> str | None:
        """The stored acknowledgement JSON, or None."""
        raw = await self.redis.get(f"{self.p}:alerts:ack:{fingerprint}")
        return _text(raw) if raw else None

    async def delivered(self, fingerprint: str) -> tuple[Alert | None, dict[str, str]]:
        """The alert as delivered and dest → receipt of each copy (to edit them)."""
        raw = await self.redis.get(f"{self.p}:alerts:alert:{fingerprint}")
        msgs = await self.redis.hgetall(f"{self.p}:alerts:msgs:{fingerprint}")
        alert = Alert.model_validate_json(raw) if raw else None
        return alert, {_text(k): _text(v) for k, v in msgs.items()}

    async def size(self) -> int:
        """Items waiting or in flight."""
        return int(await self.redis.zcard(f"{self.p}:alerts:due"))

    async def store_chart(self, chart: bytes) -> str:
        """Store a PNG once (base64, so clients with decode_responses work too); returns its key."""
        key = f"{self.p}:alerts:chart:{hashlib.sha256(chart).hexdigest()[:32]}"
        await self.redis.set(key, base64.b64encode(chart), px=self._sent_ttl_ms)
        return key

    async def load_chart(self, key: str) -> bytes | None:
        """The PNG behind ``key``; None when there is none or it expired."""
        raw = await self.redis.get(key) if key else None
        return base64.b64decode(raw) if raw else None

    async def thread_root(self, thread: str, dest: str) -> str | None:
        """The receipt (message id) of the first message delivered in ``thread`` to ``dest``."""
        raw = await self.redis.get(f"{self.p}:alerts:thread:{thread}:{dest}")
        return _text(raw) if raw else None

    async def set_thread_root(self, thread: str, dest: str, receipt: str) -> None:
        """Remember ``receipt`` as the root of ``thread`` unless one is set already (TTL as ``sent``)."""
        await self.redis.set(
            f"{self.p}:alerts:thread:{thread}:{dest}", receipt, nx=True, px=self._sent_ttl_ms
        )

    async def set_mute(self, kind: str, until_iso: str, seconds: float) -> None:
        """Mute ``kind`` (or ``all``) for ``seconds``."""
        await self.redis.set(f"{self.p}:alerts:mute:{kind}", until_iso, px=int(seconds * 1000))

    async def clear_mutes(self, kinds: tuple[str, ...]) -> int:
        """Lift the given mutes; returns how many existed."""
        return int(await self.redis.delete(*(f"{self.p}:alerts:mute:{k}" for k in kinds)))

    async def mutes(self) -> dict[str, float]:
        """Active mutes: type → seconds left."""
        out = {}
        for kind in MUTE_TYPES:
            ms = await self.redis.pttl(f"{self.p}:alerts:mute:{kind}")
            if ms and ms > 0:
                out[kind] = ms / 1000
        return out


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
