"""Fencing (issue 19, case 1): a leader deposed while it was paused writes nothing when it resumes.

Real Redis, the real lease and writers. Replica A leads, "pauses" (its lease is left to expire, as a
SIGSTOP past the lease does), replica B takes the lease; A, still believing it leads, then writes through
every fenced path: the regime, the funding table, the history origin, the alert cursor, alert submissions,
outbox claims and escalations. Redis refuses each, A steps down at the first, and the refusals are
counted by kind.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pandas as pd
from redis.asyncio import Redis

from riskd.alerting.feed import AlertFeed
from riskd.alerting.pipeline import AlertPipeline
from riskd.config import AlertSettings, RedisSettings
from riskd.contract.alerts import derive_alerts
from riskd.contract.fence import Fence
from riskd.contract.keys import Keys
from riskd.daemon.lease import LeaderLease
from riskd.sinks.funding import FundingSink
from riskd.sinks.redis import RedisSink
from tests.test_redis_sink import snap

TTL_S = 0.4


class _Dest:
    name = "telegram"
    max_per_minute = None

    def __init__(self) -> None:
        self.destinations = ["1"]

    async def send(self, dest: str, text: str, *, silent: bool, chart: bytes | None) -> str:
        return "1"


def _frames() -> dict[tuple[str, str, str], pd.DataFrame]:
    ts = pd.DatetimeIndex([pd.Timestamp(snap(0).as_of)], name="ts")
    frame = pd.DataFrame({"rate": [0.0001], "interval_hours": [8.0], "rate_per_hour": [0.0001 / 8]}, index=ts)
    return {("funding", "binance", "BTC"): frame}


async def _deposed(redis: Redis, prefix: str) -> tuple[LeaderLease, LeaderLease, list[str]]:
    """A led with epoch 1, then paused past its lease; B took it (epoch 2). A still believes it leads."""
    refused: list[str] = []
    key = Keys(prefix).leader
    a = LeaderLease(redis, key, "a", TTL_S, on_fenced=refused.append)
    b = LeaderLease(redis, key, "b", TTL_S)
    assert await a.tick()
    assert a.fence.epoch == 1
    await asyncio.sleep(TTL_S + 0.2)  # A "paused": no renewal
    assert await b.tick()
    assert b.fence.epoch == 2
    assert a.is_leader  # A has not noticed
    return a, b, refused


async def test_the_lease_hands_each_term_a_higher_epoch(redis: Redis, prefix: str) -> None:
    """Every acquisition is a new term: renewals keep the epoch, a takeover and a return raise it."""
    key = Keys(prefix).leader
    a = LeaderLease(redis, key, "a", TTL_S)
    b = LeaderLease(redis, key, "b", TTL_S)
    assert await a.tick()
    assert await a.tick()  # a renewal
    assert a.fence.epoch == 1
    assert not await b.tick()
    await asyncio.sleep(TTL_S + 0.2)
    assert await b.tick()
    assert b.fence.epoch == 2
    await b.release()
    assert await a.tick()
    assert a.fence.epoch == 3


async def test_a_deposed_leader_cannot_publish_and_steps_down(redis: Redis, prefix: str) -> None:
    """A's hour is refused, B's stands; A stops leading at the refusal and the kind is counted."""
    a, b, refused = await _deposed(redis, prefix)
    settings = RedisSettings(key_prefix=prefix)
    assert await RedisSink(redis, settings, fence=b.fence).publish(snap(2)) == 1
    zombie = RedisSink(redis, settings, fence=a.fence)
    assert await zombie.publish(snap(1, state="elevated")) == 0
    assert zombie.pending == 1  # kept, as a standby keeps what it computed
    assert not a.is_leader
    assert refused == ["regime"]
    key = json.loads(await redis.get(Keys(prefix).regime))
    assert key["as_of"].startswith(snap(2).as_of.strftime("%Y-%m-%dT%H"))
    assert len(await redis.xrange(Keys(prefix).history)) == 1


async def test_a_deposed_leader_cannot_overwrite_funding_origin_or_cursor(redis: Redis, prefix: str) -> None:
    """The plain SETs the zombie once made (a funding table two hours old, the alert cursor moved back)."""
    a, b, refused = await _deposed(redis, prefix)
    keys = Keys(prefix)
    await FundingSink(redis, prefix, _frames, fence=b.fence).publish(snap(3))
    fresh = await redis.get(keys.funding)
    await FundingSink(redis, prefix, _frames, fence=a.fence).publish(snap(1))
    assert await redis.get(keys.funding) == fresh

    settings = RedisSettings(key_prefix=prefix)
    assert await RedisSink(redis, settings, fence=a.fence).claim_origin(pd.Timestamp("2020-01-01", tz="UTC"))
    assert await redis.get(keys.history_origin) is None

    await RedisSink(redis, settings, fence=b.fence).publish(snap(0))
    await RedisSink(redis, settings, fence=b.fence).publish(snap(1, state="elevated"))
    await redis.set(keys.alert_cursor, "9999999999999-0")  # B's cursor, past both hours
    feed = AlertFeed(
        redis,
        prefix,
        _pipeline(redis, prefix, a.fence),
        clock=lambda: snap(1).as_of,
        lookback=timedelta(hours=6),
        fence=a.fence,
    )
    feed._cursor_held = "0-0"  # what A held in memory when it paused
    await feed.run()
    assert await redis.get(keys.alert_cursor) == b"9999999999999-0"
    assert await redis.zcard(f"{prefix}:alerts:due") == 0  # A's alerts were refused too
    assert refused == ["funding"]  # counted at the first refusal; A then knows it does not lead
    assert not a.is_leader


async def test_a_deposed_leader_cannot_claim_or_escalate(redis: Redis, prefix: str) -> None:
    """Outbox items queued by B are claimed by B's worker only; A's claim and escalation are refused."""
    a, b, _ = await _deposed(redis, prefix)
    queued = derive_alerts(snap(0), snap(1, state="elevated"), now=snap(1).as_of)
    assert await _pipeline(redis, prefix, b.fence).submit(queued) == ["queued"]
    zombie = _pipeline(redis, prefix, a.fence)
    assert await zombie.outbox.claim(10**13, 60_000) is None
    assert await zombie.outbox.escalate("fp", now_ms=10**13, minutes=15, dests=["1"]) == "fenced"
    live = _pipeline(redis, prefix, b.fence)
    item = await live.outbox.claim(10**13, 60_000)
    assert item is not None
    assert await live.outbox.start(item)


async def test_unfenced_writers_write_as_before(redis: Redis, prefix: str) -> None:
    """Token -1 (a delivery-only process, a replay in its own namespace): no fence, whatever the epoch."""
    _, _, _ = await _deposed(redis, prefix)
    assert await RedisSink(redis, RedisSettings(key_prefix=prefix), fence=Fence.off()).publish(snap(5)) == 1


def _pipeline(redis: Redis, prefix: str, fence: Fence) -> Any:
    return AlertPipeline(redis, _Dest(), alerts=AlertSettings(cooldown_s=0.0), key_prefix=prefix, fence=fence)
