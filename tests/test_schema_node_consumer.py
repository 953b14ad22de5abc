"""A Node.js consumer written from docs/redis.md (tests/node/consumer.mjs, no npm dependencies) reads what
riskd's real Redis sink writes: the key, the stream (XREAD) and the events, each validated against the
shipped schemas."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from datetime import timedelta
from importlib import resources
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from _contract import T0, week

from riskd.config import RedisSettings
from riskd.sinks.redis import RedisSink

NODE = shutil.which("node")
CONSUMER = Path(__file__).resolve().parent / "node" / "consumer.mjs"
HOURS = 101

pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not installed (Node.js >= 18 runs the consumer)"
)


async def test_node_consumer_reads_key_stream_and_events(redis_url: str) -> None:
    """101 hours published by the real sink reach the Node consumer as 101 valid stream entries and 101
    valid events, the key is valid and is the newest hour; its validator rejects a broken payload and
    accepts one with an added field (the compatibility rule, in another language)."""
    prefix = f"riskd-node-{uuid.uuid4().hex[:8]}:v1"
    schema_dir = str(resources.files("riskd.schemas"))
    proc = await asyncio.create_subprocess_exec(
        NODE,
        str(CONSUMER),
        redis_url,
        prefix,
        schema_dir,
        str(HOURS),
        "60000",  # type: ignore[arg-type]
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert json.loads(first) == {"ready": True}  # subscribed before anything is published
    client = aioredis.Redis.from_url(redis_url)
    sink = RedisSink(client, RedisSettings(key_prefix=prefix))
    hours = week(T0 + timedelta(hours=HOURS - 1), hours=HOURS)
    for snap in hours:
        await sink.publish(snap)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    await client.aclose()
    assert proc.returncode == 0, err.decode() + out.decode()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["invalid"] == []
    assert summary["stream_entries"] == HOURS
    assert summary["hours"] == HOURS
    assert summary["events"] == HOURS
    assert summary["event_types"] == ["regime"]
    newest = json.loads(hours[-1].to_json())
    assert summary["key"] == {"as_of": newest["as_of"], "state": "cascade", "schema_version": 1}
    assert (summary["newest_hour"], summary["newest_state"]) == (newest["as_of"], "cascade")
    assert summary["rejects_broken"] is True
    assert summary["accepts_added_field"] is True
