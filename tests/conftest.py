"""Shared fixtures: a real Redis server for the whole session, settings pointed at tmp dirs."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from riskd.config import Settings, load_settings
from riskd.daemon.embedded import RedisServer, answers


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: RISKD_TEST_REDIS_URL when it answers, else a private redis-server we start."""
    given = os.environ.get("RISKD_TEST_REDIS_URL")
    if given:
        host_port = given.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
        host, port = host_port.split(":") if ":" in host_port else (host_port, "6379")
        if answers(host, int(port)):
            yield given
            return
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server per test, for tests that stop and restart it."""
    with RedisServer(data_dir=tmp_path / "redis", persist=True) as server:
        yield server


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """An async client on the session Redis (every test that talks to Redis directly)."""
    client = Redis.from_url(redis_url, socket_timeout=2)
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    """A Redis key prefix no other test uses (tests share the session Redis)."""
    return f"riskd-test-{uuid.uuid4().hex[:10]}:v1"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with the data dir in a tmp dir and fast retries (tests must not wait long)."""
    return load_settings(
        data_dir=tmp_path / "data",
        retry={"attempts": 4, "initial_backoff_s": 0.01, "max_backoff_s": 0.05, "jitter_s": 0.01},
    )
