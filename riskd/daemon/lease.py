"""Leader election between replicas: a renewed lease in Redis.

The leader holds ``<prefix>:leader`` (value: its instance id, expiry ``ttl``) and renews it every
``ttl / 3``. A standby tries to take it as often; when the leader dies the key expires and a standby
holds it within ``ttl`` seconds, far inside one hourly cycle. Renewal and release are compare-and-set
scripts, so a replica that paused past its lease can never extend or delete the new leader's.

Taking the lease increments ``<prefix>:leader:epoch`` in the same script: the new leader's fencing
token (:mod:`riskd.contract.fence`), which every write to shared state carries, so a leader that paused
past its lease and resumes writes nothing (Redis refuses it) and steps down at its first refused write.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from riskd.contract.fence import Fence

log = logging.getLogger("riskd.daemon.lease")

_ACQUIRE_OR_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  local epoch = tonumber(redis.call('GET', KEYS[2]) or '0')
  if tonumber(ARGV[3]) ~= epoch then  -- ours again after a lapse (or a Redis that forgot): a new term
    epoch = redis.call('INCR', KEYS[2])
  end
  return epoch
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return redis.call('INCR', KEYS[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def default_instance_id() -> str:
    """host:pid, unique enough among replicas."""
    return f"{socket.gethostname()}:{os.getpid()}"


class LeaderLease:
    """One replica's view of the lease; ``is_leader`` is True only while the lease is ours."""

    def __init__(
        self,
        client: aioredis.Redis,
        key: str,
        instance_id: str,
        ttl_s: float,
        *,
        on_fenced: Callable[[str], None] | None = None,
    ) -> None:
        self._client = client
        self.key = key
        self.fence = Fence(f"{key}:epoch")
        """The fencing token every shared write carries (-1 until this replica first leads)."""
        self.fence.on_fenced.append(self._fenced)
        self._on_fenced = on_fenced
        self.instance_id = instance_id
        self._ttl_ms = int(ttl_s * 1000)
        self.is_leader = False
        self.unknown = False  # Redis unreachable at the last tick: nobody can know who leads
        self.last_error = ""  # why, then
        self._acquire = client.register_script(_ACQUIRE_OR_RENEW)
        self._release = client.register_script(_RELEASE)

    @property
    def interval_s(self) -> float:
        """How often to call ``tick``: three times per lease."""
        return self._ttl_ms / 3000

    async def tick(self) -> bool:
        """Renew the lease if ours (also after a restart of ours or Redis's), else take it if free.

        False (not leader) whenever Redis fails, with ``unknown`` set.
        """
        was = self.is_leader
        try:
            epoch = int(
                await self._acquire(
                    keys=[self.key, self.fence.key], args=[self.instance_id, self._ttl_ms, self.fence.epoch]
                )
            )
            self.is_leader = epoch > 0
            if self.is_leader:
                self.fence.epoch = epoch
            self.unknown = False
        except (RedisError, OSError) as err:
            self.unknown = True
            self.last_error = " ".join(str(err).split()) or type(err).__name__
            if self.is_leader:
                log.warning("lease renewal failed, stepping down: %s", err)
            self.is_leader = False
        if self.is_leader != was:
            log.warning(
                "%s is %s", self.instance_id, "now the leader" if self.is_leader else "no longer the leader"
            )
        return self.is_leader

    def _fenced(self, kind: str) -> None:
        """A write carrying our token was refused: a newer leader holds the lease. Stop leading now, not at
        the next renewal. Refusals while not leading (a standby's delivery worker polling the outbox with
        an old token) are expected and stay quiet."""
        if not self.is_leader:
            return
        log.warning(
            "%s was fenced (its %s write was refused: a newer leader holds the lease, our epoch %d is old): "
            "no longer the leader",
            self.instance_id,
            kind,
            self.fence.epoch,
        )
        self.is_leader = False
        if self._on_fenced is not None:
            self._on_fenced(kind)

    async def release(self) -> None:
        """Give the lease up on a clean shutdown so a standby takes over at once."""
        if not self.is_leader:
            return
        try:
            await self._release(keys=[self.key], args=[self.instance_id])
        except (RedisError, OSError) as err:
            log.warning("could not release the lease (it will expire): %s", err)
        self.is_leader = False
