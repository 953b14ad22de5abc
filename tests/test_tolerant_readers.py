"""Every reader of what riskd published ignores fields it does not know (issue 17, finding 4).

A newer v1 writer may add fields at the top level and inside nested objects; an older leader in a rolling
upgrade must still derive that hour's alerts, answer /status and /history, settle its minute episodes and
reload its spool, state and outbox. Each reader here is fed such a payload through a real Redis.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from redis.asyncio import Redis

from riskd.alerting.feed import AlertFeed
from riskd.alerting.pipeline import AlertPipeline
from riskd.client import interpret
from riskd.clock import SimClock
from riskd.config import AlertSettings, RedisSettings, load_settings
from riskd.contract.keys import Keys
from riskd.contract.models import Alert, Snapshot
from riskd.core import Panel, compute_fragility_with_state
from riskd.daemon import Daemon, Sinks
from riskd.http.history import RedisHistory
from riskd.sinks.metrics import Metrics
from riskd.sinks.redis import RedisSink, read_history
from riskd.store import HistoryStore
from riskd.streams.task import MinuteStreams
from riskd.telegram.status import RedisStatusSource
from tests.test_alerts import H0, snap


def widened(s: Snapshot) -> dict[str, Any]:
    """``s`` as a newer v1 writer might publish it: added fields at the top and in nested objects."""
    body = json.loads(s.to_json())
    body["added_by_a_newer_riskd"] = {"nested": [1, 2]}
    body["data_quality"]["added_nested_field"] = "x"
    return body


class Console:
    """A channel that keeps what it was asked to send."""

    name = "console"
    max_per_minute: int | None = None

    def __init__(self) -> None:
        self.destinations = ["desk"]
        self.sent: list[str] = []

    async def send(self, dest: str, text: str, *, silent: bool, chart: bytes | None) -> str:
        self.sent.append(text)
        return str(len(self.sent))


async def publish_widened(redis: Redis, prefix: str, snaps: list[Snapshot]) -> None:
    """Write the key and the stream as a newer writer would (entry id = the hour, as riskd writes it)."""
    keys = Keys(prefix)
    for s in snaps:
        body = json.dumps(widened(s))
        await redis.xadd(keys.history, {"json": body}, id=f"{int(s.as_of.timestamp() * 1000)}-0")
        await redis.set(keys.regime, body)


async def test_every_stream_and_key_reader_ignores_added_fields(redis: Redis, tmp_path: Path) -> None:
    """The alert feed derives the cascade alert, /history and /status read the hours, the minute side finds
    the hour's snapshot, and the bots' reader judges the key: all from widened payloads."""
    prefix = f"riskd:test:{uuid.uuid4().hex[:10]}"
    hours = [snap(0), snap(1, "elevated"), snap(2, "cascade", episode="E1")]
    await publish_widened(redis, prefix, hours)
    channel = Console()
    pipeline = AlertPipeline(redis, channel, alerts=AlertSettings(cooldown_s=0), key_prefix=prefix)
    now = hours[-1].as_of + timedelta(minutes=1)
    feed = AlertFeed(redis, prefix, pipeline, clock=lambda: now, lookback=timedelta(hours=48))
    assert await feed.run() == 3
    while await pipeline.deliver_next():
        pass
    assert any("Cascade started" in t for t in channel.sent), channel.sent
    assert [s.as_of for s in await read_history(redis, prefix, 3)] == [s.as_of for s in hours]
    assert len(await RedisHistory(redis, prefix).between(hours[0].as_of, hours[-1].as_of)) == 3
    status = RedisStatusSource(redis, prefix, clock=lambda: now)
    latest = await status.latest()
    assert latest is not None
    assert latest.state == "cascade"
    assert [s.state for s in await status.history(3)] == ["calm", "elevated", "cascade"]
    settings = load_settings(data_dir=tmp_path, redis={"key_prefix": prefix})
    streams = MinuteStreams(settings, client=redis, pipeline=pipeline, clock=SimClock(pd.Timestamp(now)))
    found = await streams.episodes.snapshot(int(hours[-1].as_of.timestamp() * 1000))
    assert found is not None
    assert found.episode_id == "E1"
    reading = interpret(json.dumps(widened(hours[-1])), now=now)
    assert reading.ok, reading.reason


async def test_spool_state_and_outbox_reload_widened_records(redis: Redis, tmp_path: Path) -> None:
    """A spool line, a saved state's last snapshot and a queued alert written by a newer riskd are read back."""
    spool = tmp_path / "spool.jsonl"
    spool.write_text(json.dumps(widened(snap(0))) + "\n")
    sink = RedisSink(redis, RedisSettings(key_prefix=f"riskd:test:{uuid.uuid4().hex[:10]}"), spool=spool)
    assert sink.pending == 1

    settings = load_settings(data_dir=tmp_path / "data")
    daemon = Daemon(
        settings,
        sources={},
        store=HistoryStore(settings.store_dir),
        sinks=Sinks(metrics=Metrics()),
        clock=SimClock(pd.Timestamp(H0)),
    )
    daemon.state_path.parent.mkdir(parents=True)
    idx = pd.date_range("2024-01-01", periods=30, freq="h", tz="UTC", name="ts")
    panel = Panel(idx, ("BTC", "ETH"), np.full((30, 2), 100.0), np.ones((30, 2)), np.ones((30, 2)))
    _, state = compute_fragility_with_state(panel, settings.fragility)
    daemon.state_path.write_text(json.dumps({"state": state.to_dict(), "last": widened(snap(1, "fragile"))}))
    daemon.load()
    assert daemon.last is not None
    assert daemon.last.state == "fragile"

    prefix = f"riskd:test:{uuid.uuid4().hex[:10]}"
    pipeline = AlertPipeline(redis, Console(), alerts=AlertSettings(cooldown_s=0), key_prefix=prefix)
    alert = Alert(
        kind="data_stale", severity="warning", as_of=H0, title="t", body="Hour ending x", figures={}
    )
    await pipeline.submit([alert])
    (item_key,) = await redis.keys(f"{prefix}:alerts:item:*")
    raw = json.loads(await redis.hget(item_key, "alert"))
    await redis.hset(item_key, "alert", json.dumps({**raw, "added_field": 1}))
    assert await pipeline.deliver_next()
    delivered, copies = await pipeline.outbox.delivered(alert.fingerprint)
    assert delivered is not None
    assert copies == {"desk": "1"}
