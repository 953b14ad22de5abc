"""Alerts derived from the published history stream by a cursor in Redis: exactly once per hour and kind,
whoever leads and whatever failed (real Redis; the console channel records what a human would read)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from riskd.alerting.feed import AlertFeed
from riskd.alerting.pipeline import AlertPipeline
from riskd.config import AlertSettings, RedisSettings
from riskd.contract.keys import Keys
from riskd.contract.models import Snapshot
from riskd.daemon.embedded import RedisServer
from riskd.errors import SinkError
from riskd.sinks.redis import RedisSink
from riskd.telegram.channel import ConsoleChannel
from tests.test_alerts import H0, snap


class Rig:
    """A sink, a pipeline and a feed on one prefix, sharing a console that records every delivery."""

    def __init__(self, redis: Redis, prefix: str, tmp: object, now: datetime, **alerts: str) -> None:
        self.out = io.StringIO()
        self.now = now
        self.sink = RedisSink(redis, RedisSettings(key_prefix=prefix), spool=None)
        self.pipeline = AlertPipeline(
            redis,
            ConsoleChannel(self.out),
            alerts=AlertSettings(**alerts),
            key_prefix=prefix,
            lease_s=2,
            poll_s=0.05,
        )
        self.feed = AlertFeed(
            redis, prefix, self.pipeline, clock=lambda: self.now, lookback=timedelta(hours=48)
        )

    async def deliver(self) -> list[str]:
        """Send everything queued; returns the titles in delivery order."""
        while await self.pipeline.deliver_next():
            pass
        heads = [line.split(" · ", 1) for line in self.out.getvalue().splitlines() if " · " in line]
        return [h[1] for h in heads if h[0].split()[-1] in ("INFO", "WARNING", "CRITICAL")]


def count(titles: list[str], text: str) -> int:
    """How many delivered titles end with ``text`` (a late one starts with its [LATE by …] tag)."""
    return sum(t.endswith(text) for t in titles)


def hours() -> list[Snapshot]:
    """calm, fragile, cascade (episode E2), cascade, recovery: three alert-worthy steps."""
    return [
        snap(0),
        snap(1, "fragile"),
        snap(2, "cascade", episode="E2"),
        snap(3, "cascade", episode="E2"),
        snap(4, "recovery"),
    ]


async def test_each_published_hour_raises_its_alerts_once(
    redis: Redis, prefix: str, tmp_path: object
) -> None:
    """Publishing then reading the stream raises every alert; reading again (or a new feed) raises none."""
    rig = Rig(redis, prefix, tmp_path, H0 + timedelta(hours=4, seconds=30))
    for s in hours():
        await rig.sink.publish(s)
    assert await rig.feed.run() == 5
    titles = await rig.deliver()
    assert count(titles, "Regime calm → fragile") == 1
    assert count(titles, "Cascade started") == 1
    assert count(titles, "Cascade episode ended") == 1
    assert await rig.feed.run() == 0
    again = Rig(redis, prefix, tmp_path, rig.now)  # a restarted process: new feed, same cursor
    assert await again.feed.run() == 0
    await redis.delete(Keys(prefix).alert_cursor)  # a crash between submit and cursor: re-derived
    third = Rig(redis, prefix, tmp_path, rig.now)
    assert await third.feed.run() == 5
    assert await third.deliver() == []  # ... and every one was a duplicate


async def test_hours_published_while_redis_was_down_are_alerted_after(
    redis_server: RedisServer, prefix: str, tmp_path: object
) -> None:
    """Redis killed mid-run: hours wait in the spool, the feed fails without losing its place, and once
    Redis is back every critical alert is delivered (finding 1: both CRITICAL alerts were lost)."""
    redis = Redis.from_url(redis_server.url, socket_timeout=1)
    rig = Rig(redis, prefix, tmp_path, H0 + timedelta(hours=4, seconds=30))
    await rig.sink.publish(hours()[0])
    await rig.feed.run()
    redis_server.stop()
    for s in hours()[1:3]:
        with pytest.raises(SinkError):
            await rig.sink.publish(s)
        with pytest.raises(RedisError):
            await rig.feed.run()
    redis_server.start()
    for s in hours()[3:]:
        await rig.sink.publish(s)
    await rig.feed.run()
    titles = await rig.deliver()
    assert sum("CRITICAL" in line for line in rig.out.getvalue().splitlines()) == 3
    assert count(titles, "Cascade started") == 1
    assert count(titles, "Regime fragile → cascade") == 1
    await redis.aclose()


async def test_a_restated_hour_raises_what_it_implies_marked_late(
    redis: Redis, prefix: str, tmp_path: object
) -> None:
    """Hour 2 first published stale, then restated as a cascade: the cascade alerts go out, marked late,
    and the unchanged hour after it is re-derived against the restated one (no false 'calm' step)."""
    rig = Rig(redis, prefix, tmp_path, H0 + timedelta(hours=3, seconds=30))
    first = [snap(0), snap(1), snap(2, dq="stale", state="calm"), snap(3, "cascade", episode="E2")]
    for s in first:
        await rig.sink.publish(s)
    await rig.feed.run()
    before = await rig.deliver()
    assert count(before, "Data stale: regime not trustworthy") == 1
    rig.now = H0 + timedelta(hours=6)
    revised = snap(2, "cascade", episode="E2").model_copy(
        update={"revision": 1, "restated": True, "live": False}
    )
    await rig.sink.publish(revised)
    await rig.feed.run()
    after = (await rig.deliver())[len(before) :]
    assert any(t.startswith("[LATE by") and t.endswith("Regime calm → cascade") for t in after)
    assert not any("cascade → calm" in t for t in after)


async def test_superseded_revisions_in_one_batch_raise_nothing(
    redis: Redis, prefix: str, tmp_path: object
) -> None:
    """Two revisions of one hour read in one batch: only the newest one counts."""
    rig = Rig(redis, prefix, tmp_path, H0 + timedelta(hours=3))
    for s in [snap(0), snap(1), snap(2)]:
        await rig.sink.publish(s)
    wrong = snap(1, "fragile").model_copy(update={"revision": 1, "restated": True})
    right = snap(1).model_copy(update={"revision": 2, "restated": True})
    await rig.sink.publish(wrong)
    await rig.sink.publish(right)
    await rig.feed.run()
    assert await rig.deliver() == []


async def test_stream_refuses_repeats_and_old_first_publications_without_events(
    redis: Redis, prefix: str, tmp_path: object
) -> None:
    """Only accepted writes announce themselves; a revision is appended after the newest entry and the key
    keeps following the newest hour."""
    k = Keys(prefix)
    rig = Rig(redis, prefix, tmp_path, H0)
    pubsub = redis.pubsub()
    await pubsub.subscribe(k.events)
    await pubsub.get_message(timeout=1)
    for s in [snap(0), snap(1), snap(2)]:
        await rig.sink.publish(s)
    await rig.sink.publish(snap(2))  # a repeat
    await rig.sink.publish(snap(1))  # an old hour's first publication (a replay of an older span)
    await rig.sink.publish(snap(1, "fragile").model_copy(update={"revision": 1, "restated": True}))
    events = []
    while (msg := await pubsub.get_message(timeout=0.5)) is not None:
        events.append(msg["data"].decode())
    assert len(events) == 4
    assert '"type":"revision"' in events[-1]
    assert '"as_of":"2021-05-19T14:00:00Z"' in events[-1]
    ids = [i.decode() for i, _ in await redis.xrange(k.history)]
    assert len(ids) == 4
    assert ids[-1].endswith("-1")
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    current = Snapshot.model_validate_json(await redis.get(k.regime))
    assert current.as_of == snap(2).as_of
    await pubsub.aclose()
