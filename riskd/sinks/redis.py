"""Publishing the regime to Redis: the key bots read, the hourly history stream, the pub/sub ping.

One Lua script writes all three atomically, so a reader never sees the stream ahead of the key.
A new hour's entry id is the hour (``<as_of ms>-0``); an hour restated after late data is appended as a
revision (``revision`` n > 0, ``restated: true``) after the newest entry. Publishing is idempotent and
ordered: the same hour and revision twice is one entry, and an older hour never overwrites the key of a
newer one. Snapshots that could not be written (Redis down) wait in an fsynced spool file, in order, and
are flushed before anything newer: the stream ends up with every hour.

What Redis took is also kept in a local record (``<data_dir>/state/redis-published.<prefix>.jsonl``, fsynced
once per cycle: the newest revision of each recent hour). Redis restored from an older snapshot (an RDB or AOF from hours
before) forgets hours riskd published and shows an old hour on the key; :meth:`RedisSink.repair_rollback`
compares the record with ``<prefix>:regime:revisions`` and publishes every lost hour again, unchanged, as
a revision (``restated``, ``restate_reason: redis_rollback``), so the stream has every hour and the key
the newest.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from pathlib import Path

import pandas as pd
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from riskd.config import RedisSettings, check
from riskd.contract.codec import latest_revisions, read_entry, read_snapshot
from riskd.contract.fence import Fence, fenced, fenced_set, with_fence
from riskd.contract.keys import Keys
from riskd.contract.models import RegimeEvent, Snapshot, rfc3339
from riskd.errors import SinkError
from riskd.store.files import write_durably

log = logging.getLogger("riskd.redis")

CYCLE_SECONDS = 3600

_PUBLISH = fenced("""
local key, stream, channel, revs = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local body, as_of, ttl, maxlen, rev = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local ms = tonumber(as_of)
local have = redis.call('HGET', revs, as_of)
if have and tonumber(have) >= rev then return {0, 0} end
local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
local last_ms, last_seq = -1, 0
if #last > 0 then
  local a, b = string.match(last[1][1], '^(%d+)-(%d+)$')
  last_ms, last_seq = tonumber(a), tonumber(b)
end
local id
if ms > last_ms then
  id = as_of .. '-0'
elseif rev > 0 then
  id = last_ms .. '-' .. (last_seq + 1)
else
  return {0, 0}
end
redis.call('XADD', stream, 'MAXLEN', '~', maxlen, id, 'json', body)
redis.call('HSET', revs, as_of, rev)
local current = 0
if ms >= last_ms then
  redis.call('SET', key, body, 'PX', ttl)
  current = 1
end
redis.call('PUBLISH', channel, ARGV[6])
return {1, current}
""")
"""Writes one hour (or one revision of it) atomically, and only when it is news.

``<prefix>:regime:revisions`` (hash: as_of ms -> highest revision written) refuses a repeat or an older
revision, and the first publication (revision 0) of an hour older than the stream's newest: a replay of an
old span, or a second replica, writes nothing and announces nothing. A new hour is appended as
``<as_of ms>-0``; a revision of an earlier hour is appended after the newest entry
(``<newest ms>-<seq+1>``), so the stream stays in publication order and an entry id never goes back. The
key follows the newest hour only; the event goes out only for what was written. Behind the fence
(:mod:`riskd.contract.fence`): a deposed leader's hour is refused.
"""


def client_from_settings(settings: RedisSettings, url: str) -> aioredis.Redis:
    """An asyncio client; AUTH and TLS come from the URL (``rediss://user:password@host:port/db``). A
    ``redis+sentinel://`` URL gives redis-py's Sentinel-managed client for the service's primary: every new
    connection asks the sentinels where the primary is, and a connection to a demoted one raises a
    ConnectionError (riskd then spools and retries, as for any Redis outage) and reconnects to the new one."""
    if url.startswith(check.SENTINEL_SCHEME + "://"):
        return _sentinel_client(settings, check.sentinel_target(url))
    return aioredis.Redis.from_url(
        url,
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=settings.socket_timeout_s,
        health_check_interval=30,
    )


def _sentinel_client(settings: RedisSettings, target: check.SentinelTarget) -> aioredis.Redis:
    from redis.asyncio.sentinel import Sentinel

    timeout = settings.socket_timeout_s
    asked = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "password": target.sentinel_password,
    }
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=asked, socket_timeout=timeout)
    return sentinel.master_for(
        target.service,
        db=target.db,
        username=target.username,
        password=target.password,
        health_check_interval=30,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )


class RedisSink:
    """Publishes snapshots in hour order; keeps what failed in a spool until Redis is back."""

    name = "redis"
    leader_only = True

    def __init__(
        self,
        client: aioredis.Redis,
        settings: RedisSettings,
        spool: Path | None = None,
        *,
        fence: Fence | None = None,
        record: Path | None = None,
        record_hours: int = 72,
    ) -> None:
        self._client = client
        self._fence = fence or Fence.off()
        self._settings = settings
        self._keys = Keys(settings.key_prefix)
        self._ttl_ms = int(settings.key_ttl_cycles * CYCLE_SECONDS * 1000)
        self._spool = spool
        self._pending: deque[Snapshot] = deque(self._load_spool())
        self._spooled = bool(self._pending)  # the spool file holds something that must be cleared
        self._spool_error: str | None = None
        self._script = client.register_script(_PUBLISH)
        self._record_path = record
        self._record_hours = record_hours
        self._record: dict[int, Snapshot] = self._load_record()
        """as_of ms → the newest revision of that hour Redis took (or already held)."""
        self._record_dirty = False

    @property
    def pending(self) -> int:
        """Snapshots computed but not yet in Redis."""
        return len(self._pending)

    def enqueue(self, snapshot: Snapshot, keep: int = 24 * 7) -> None:
        """Hold a snapshot without writing (a standby replica): a takeover flushes it; the script makes
        hours the old leader already wrote no-ops. Only the newest ``keep`` stay.

        The queue is spooled to disk: a standby that computed hours nobody published (it restarted while
        the dead leader's lease ran out) must not lose them if it dies too, since its saved state says
        they are done."""
        self._pending.append(snapshot)
        while len(self._pending) > keep:
            self._pending.popleft()
        self._save_spool()

    def hold(self, snapshot: Snapshot) -> None:
        """The SnapshotSink standby side: keep it (spooled) for a takeover."""
        self.enqueue(snapshot)

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

    async def claim_origin(self, candidate: pd.Timestamp) -> pd.Timestamp:
        """The hour every replica's expanding statistics start from: ``candidate`` when no replica has set
        one yet (SET NX, no expiry), else the one set. Raises SinkError when Redis is unreachable.

        CFI v2 ranks each component against its whole past, so two replicas agree only if their past
        starts at the same hour; a standby started later would otherwise rank against a shorter past.
        Only a replica whose store holds data claims (an empty store must not pin the history)."""
        try:
            when = rfc3339(candidate.to_pydatetime())
            await fenced_set(self._client, self._fence, "origin", self._keys.history_origin, when, "NX")
        except (RedisError, OSError) as err:
            raise SinkError(f"history origin not shared (redis unavailable): {err}") from err
        return await self.shared_origin() or candidate  # deleted between the two calls: ours stands

    async def shared_origin(self) -> pd.Timestamp | None:
        """The history origin the replicas share (None: none set yet). Raises SinkError when Redis is
        unreachable or the key holds something that is not a time."""
        return await read_origin(self._client, self._keys)

    async def flush(self) -> int:
        """Write the queue in order; stop at the first failure and keep the rest."""
        written = 0
        try:
            while self._pending:
                if await self._write(self._pending[0]) is None:
                    break  # fenced: a newer leader publishes; ours stay queued, as a standby's do
                self._note(self._pending.popleft())
                written += 1
        except (RedisError, OSError) as err:
            raise SinkError(f"redis unavailable, {len(self._pending)} hour(s) queued: {err}") from err
        finally:
            if written and self._spooled:
                self._save_spool()
        return written

    async def repair_rollback(self) -> list[Snapshot]:
        """Publish again every recorded hour Redis no longer holds at the revision riskd gave it (Redis
        restored from an older snapshot, or emptied), in hour order, each as the next revision marked
        ``restate_reason: redis_rollback`` with the content unchanged; returns what was republished (the
        caller's book takes the new revisions). Hours still queued here are not lost, only late: skipped.
        Raises SinkError when Redis is unreachable."""
        queued = {int(s.as_of.timestamp() * 1000) for s in self._pending}
        hours = [ms for ms in sorted(self._record) if ms not in queued]
        if not hours:
            return []
        try:
            held = await self._client.hmget(self._keys.revisions, [str(ms) for ms in hours])
            lost = [
                (ms, -1 if h is None else int(h))
                for ms, h in zip(hours, held, strict=True)
                if h is None or int(h) < self._record[ms].revision
            ]
            out = []
            for ms, have in lost:
                snap = self._record[ms]
                again = snap.model_copy(
                    update={
                        "revision": max(snap.revision, have) + 1,
                        "restated": True,
                        "restate_reason": "redis_rollback",
                        "live": False,
                    }
                )
                if await self._write(again) is None:
                    break  # fenced: the newer leader repairs
                self._note(again)
                out.append(again)
        except (RedisError, OSError) as err:
            raise SinkError(f"redis unavailable, rollback check not done: {err}") from err
        if out:
            log.error(
                "redis rollback: Redis had lost %d hour(s) riskd published (%s .. %s; restored from an older "
                "snapshot?); published again from riskd's record as revisions (restate_reason redis_rollback)",
                len(out),
                out[0].as_of.isoformat(),
                out[-1].as_of.isoformat(),
            )
        return out

    def _note(self, snap: Snapshot) -> None:
        """Redis holds ``snap`` (written now, or already at that revision): record it; only the newest
        ``record_hours`` hours are kept."""
        if self._record_path is None:
            return
        ms = int(snap.as_of.timestamp() * 1000)
        held = self._record.get(ms)
        if held is None or snap.revision >= held.revision:
            self._record[ms] = snap
            self._record_dirty = True
        cutoff = max(self._record) - self._record_hours * CYCLE_SECONDS * 1000
        for old in [k for k in self._record if k <= cutoff]:
            del self._record[old]

    def _load_record(self) -> dict[int, Snapshot]:
        if self._record_path is None or not self._record_path.exists():
            return {}
        try:
            lines = self._record_path.read_text().splitlines()
            snaps = [read_snapshot(line) for line in lines if line.strip()]
        except (OSError, ValueError) as err:
            log.warning(
                "redis publication record %s unusable (%s): starting a new one", self._record_path, err
            )
            return {}
        return {int(s.as_of.timestamp() * 1000): s for s in snaps}

    async def save_record(self) -> None:
        """Write the record if it changed, fsynced, in a thread: the daemon calls it once per cycle with its
        state (a replay, publishing hundreds of hours a second, never waits on an fsync per hour). Raises
        OSError on a disk fault (the daemon logs it once with its state's); the record stays in memory and is
        written at the next call."""
        if self._record_path is None or not self._record_dirty:
            return
        body = "".join(self._record[k].to_json() + "\n" for k in sorted(self._record))  # as the spool
        await asyncio.to_thread(write_durably, self._record_path, body)
        self._record_dirty = False

    async def _write(self, snap: Snapshot) -> bool | None:
        """One hour or revision through the script; True when Redis took it (not a repeat), None when it was
        refused by the fence."""
        body = snap.to_json()
        ms = int(snap.as_of.timestamp() * 1000)
        event = RegimeEvent(
            type="revision" if snap.revision else "regime",
            as_of=snap.as_of,
            state=snap.state,
            revision=snap.revision,
        ).model_dump_json()
        res = await self._script(
            keys=[self._keys.regime, self._keys.history, self._keys.events, self._keys.revisions],
            args=with_fence(
                [body, ms, self._ttl_ms, self._settings.history_maxlen, snap.revision, event], self._fence
            ),
        )
        if self._fence.refused(res, "regime"):
            return None
        return bool(res[0])

    def _load_spool(self) -> list[Snapshot]:
        if self._spool is None or not self._spool.exists():
            return []
        out = []
        for line in self._spool.read_text().splitlines():
            if line.strip():
                out.append(read_snapshot(line))
        if out:
            log.warning("%d unpublished hour(s) found in %s; they go out first", len(out), self._spool)
        return out

    def _save_spool(self) -> None:
        """Write the queue to the spool file, fsynced: what Redis has not taken must outlive a crash.

        A disk fault (full, read-only) is logged once per change and never raised: the queue is still
        held in memory, and publishing goes on."""
        if self._spool is None:
            return
        try:
            write_durably(self._spool, "".join(s.to_json() + "\n" for s in self._pending))
        except OSError as err:
            if self._spool_error is None:
                log.error(
                    "redis spool %s not written (%s); %d hour(s) held in memory only",
                    self._spool,
                    err,
                    len(self._pending),
                )
            self._spool_error = str(err)
            return
        if self._spool_error is not None:
            log.warning("redis spool %s writable again", self._spool)
            self._spool_error = None
        self._spooled = bool(self._pending)


async def read_history(client: aioredis.Redis, prefix: str, count: int) -> list[Snapshot]:
    """The last ``count`` hours from the history stream, oldest first, each at its highest revision."""
    rows = await client.xrevrange(Keys(prefix).history, count=count * 2) or []
    return latest_revisions(read_entry(fields) for _, fields in rows if fields)[-count:]


async def read_origin(client: aioredis.Redis, keys: Keys) -> pd.Timestamp | None:
    """``<prefix>:history:origin`` as a UTC hour (None when unset); SinkError when Redis is unreachable or
    the key is not a time (RFC 3339; an older riskd wrote ``+00:00``, read too)."""
    try:
        raw = await client.get(keys.history_origin)
    except (RedisError, OSError) as err:
        raise SinkError(f"history origin not readable (redis unavailable): {err}") from err
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    try:
        return pd.Timestamp(text).tz_convert("UTC")
    except (ValueError, TypeError) as err:
        raise SinkError(f"{keys.history_origin} holds {text!r}, not an RFC 3339 time: {err}") from err


async def write_origin(client: aioredis.Redis, keys: Keys, origin: pd.Timestamp) -> None:
    """Move the shared history origin (``riskd origin --set``): every replica rebuilds from it at its next
    cycle. Raises SinkError when Redis is unreachable."""
    try:
        await client.set(keys.history_origin, rfc3339(origin.to_pydatetime()))
    except (RedisError, OSError) as err:
        raise SinkError(f"history origin not written (redis unavailable): {err}") from err
