"""Publishing the regime to Redis: the key bots read, the hourly history stream, the pub/sub ping.

One Lua script writes all three atomically, so a reader never sees the stream ahead of the key.
The stream entry id *is* the hour (``<as_of ms>-0``), which makes publishing idempotent and ordered:
the same hour twice is one entry, and an older hour never overwrites the key of a newer one.
Snapshots that could not be written (Redis down) wait in a spool file, in order, and are flushed
before anything newer: the stream ends up with every hour.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from riskd.errors import SinkError
from riskd.models import Snapshot
from riskd.settings import RedisSettings

log = logging.getLogger("riskd.redis")

CYCLE_SECONDS = 3600

_PUBLISH = """
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local last_ms = -1
if #last > 0 then last_ms = tonumber(string.match(last[1][1], '^(%d+)')) end
local ms = tonumber(ARGV[2])
local added = 0
if ms > last_ms then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], ARGV[2] .. '-0', 'json', ARGV[1])
  added = 1
end
local current = 0
if ms >= last_ms then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  current = 1
end
redis.call('PUBLISH', KEYS[3], ARGV[5])
return {added, current}
"""


def keys(prefix: str) -> dict[str, str]:
    """Every name riskd publishes under, from one prefix (``riskd:v1``)."""
    return {
        "regime": f"{prefix}:regime",
        "history": f"{prefix}:regime:history",
        "events": f"{prefix}:events",
        "leader": f"{prefix}:leader",
    }


def client_from_settings(settings: RedisSettings, url: str) -> aioredis.Redis:
    """An asyncio client; AUTH and TLS come from the URL (``rediss://user:password@host:port/db``)."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=settings.socket_timeout_s,
        health_check_interval=30,
    )


class RedisSink:
    """Publishes snapshots in hour order; keeps what failed in a spool until Redis is back."""

    name = "redis"

    def __init__(self, client: aioredis.Redis, settings: RedisSettings, spool: Path | None = None) -> None:
        self._client = client
        self._settings = settings
        self._keys = keys(settings.key_prefix)
        self._ttl_ms = int(settings.key_ttl_cycles * CYCLE_SECONDS * 1000)
        self._spool = spool
        self._pending: deque[Snapshot] = deque(self._load_spool())
        self._spooled = bool(self._pending)  # the spool file holds something that must be cleared
        self._script = client.register_script(_PUBLISH)

    @property
    def pending(self) -> int:
        """Snapshots computed but not yet in Redis."""
        return len(self._pending)

    def enqueue(self, snapshot: Snapshot, keep: int = 24 * 7) -> None:
        """Hold a snapshot without writing (a standby replica): a takeover flushes it; the script's
        hour-ordering makes hours the old leader already wrote no-ops. Only the newest ``keep`` stay."""
        self._pending.append(snapshot)
        while len(self._pending) > keep:
            self._pending.popleft()

    async def publish(self, snapshot: Snapshot) -> int:
        """Queue ``snapshot`` and write everything queued, oldest first; returns how many were written.

        Raises SinkError when Redis is unreachable; the snapshot stays queued (and spooled to disk).
        """
        self._pending.append(snapshot)
        if len(self._pending) > 1:  # a backlog exists: keep it on disk before trying
            self._save_spool()
        try:
            return await self.flush()
        except SinkError:
            self._save_spool()
            raise

    async def flush(self) -> int:
        """Write the queue in order; stop at the first failure and keep the rest."""
        written = 0
        try:
            while self._pending:
                await self._write(self._pending[0])
                self._pending.popleft()
                written += 1
        except (RedisError, OSError) as err:
            raise SinkError(f"redis unavailable, {len(self._pending)} hour(s) queued: {err}") from err
        finally:
            if written and self._spooled:
                self._save_spool()
        return written

    async def _write(self, snap: Snapshot) -> None:
        body = snap.to_json()
        ms = int(snap.as_of.timestamp() * 1000)
        event = json.dumps({"type": "regime", "as_of": snap.as_of.isoformat(), "state": snap.state})
        await self._script(
            keys=[self._keys["regime"], self._keys["history"], self._keys["events"]],
            args=[body, ms, self._ttl_ms, self._settings.history_maxlen, event],
        )

    def _load_spool(self) -> list[Snapshot]:
        if self._spool is None or not self._spool.exists():
            return []
        out = []
        for line in self._spool.read_text().splitlines():
            if line.strip():
                out.append(Snapshot.model_validate_json(line))
        if out:
            log.warning("%d unpublished hour(s) found in %s; they go out first", len(out), self._spool)
        return out

    def _save_spool(self) -> None:
        if self._spool is None:
            return
        self._spooled = bool(self._pending)
        self._spool.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._spool.with_suffix(".tmp")
        tmp.write_text("".join(s.to_json() + "\n" for s in self._pending))
        tmp.replace(self._spool)


async def read_history(client: aioredis.Redis, prefix: str, count: int) -> list[Snapshot]:
    """The last ``count`` hours from the history stream, oldest first."""
    rows: list[tuple[Any, dict[bytes, bytes]]] = await client.xrevrange(keys(prefix)["history"], count=count)
    return [Snapshot.model_validate_json(fields[b"json"]) for _, fields in reversed(rows)]
