"""The suite's Redis is a real server over a real connection."""

from __future__ import annotations

import pytest
import redis

from riskd.daemon.embedded import RedisServer, answers


def test_session_redis_answers_real_commands(redis_url: str) -> None:
    """SET/GET/XADD round-trip through redis-py against the session server."""
    client = redis.Redis.from_url(redis_url)
    client.set("riskd:test:fixture", "1")
    assert client.get("riskd:test:fixture") == b"1"
    assert client.xadd("riskd:test:stream", {"a": "1"})
    client.delete("riskd:test:fixture", "riskd:test:stream")
    client.close()


def test_private_server_stops_and_restarts_with_its_data(redis_server: RedisServer) -> None:
    """A persisted private server keeps its keys across a stop and start (the daemon tests rely on it)."""
    client = redis.Redis.from_url(redis_server.url)
    client.set("k", "v")
    client.close()
    redis_server.stop()
    assert not answers("127.0.0.1", redis_server.port)
    redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    assert client.get("k") == b"v"
    client.close()


def test_password_protected_server_requires_auth() -> None:
    """AUTH from the URL works and a missing password is refused."""
    with RedisServer(password="s3cret") as server:
        assert redis.Redis.from_url(server.url).ping()
        bare = redis.Redis(host="127.0.0.1", port=server.port)
        with pytest.raises(redis.AuthenticationError):
            bare.ping()
