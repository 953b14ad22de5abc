"""The Redis sink and the consumer client, against a real Redis server."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from riskd.client import aread_regime, read_regime
from riskd.config import RedisSettings
from riskd.contract.keys import Keys
from riskd.contract.models import DataQuality, Snapshot
from riskd.daemon.embedded import RedisServer, free_port, redis_binary
from riskd.daemon.lease import LeaderLease
from riskd.errors import SinkError
from riskd.sinks.redis import RedisSink, client_from_settings, read_history

T0 = datetime(2021, 5, 19, 12, tzinfo=UTC)


def snap(hour: int, state: str = "calm", mult: float = 1.0) -> Snapshot:
    as_of = T0 + timedelta(hours=hour)
    return Snapshot(
        as_of=as_of,
        computed_at=as_of + timedelta(seconds=20),
        live=True,
        state=state,  # type: ignore[arg-type]
        state_code=0,
        risk_multiplier=mult,
        cfi=0.1 * hour,
        cfi_percentile=0.5,
        cascade_level="none",
        cascade_level_code=0,
        data_quality=DataQuality(status="ok", coverage=1.0),
    )


async def test_publish_writes_key_stream_and_event(redis_url: str, prefix: str) -> None:
    """One publish sets the key (with expiry), appends the hour to the stream and notifies subscribers."""
    client = aioredis.Redis.from_url(redis_url)
    sub = client.pubsub()
    await sub.subscribe(Keys(prefix).events)
    await sub.get_message(timeout=1)  # the subscribe confirmation
    sink = RedisSink(client, RedisSettings(key_prefix=prefix))
    assert await sink.publish(snap(0)) == 1
    raw = await client.get(Keys(prefix).regime)
    assert Snapshot.model_validate_json(raw) == snap(0)
    ttl = await client.pttl(Keys(prefix).regime)
    assert 2.4 * 3600_000 < ttl <= 2.5 * 3600_000
    entries = await client.xrange(Keys(prefix).history)
    assert [e[0] for e in entries] == [f"{int(snap(0).as_of.timestamp() * 1000)}-0".encode()]
    msg = await sub.get_message(timeout=2, ignore_subscribe_messages=True)
    assert msg is not None
    assert b'"calm"' in msg["data"]
    await sub.aclose()
    await client.aclose()


async def test_publishing_an_hour_twice_is_idempotent(redis_url: str, prefix: str) -> None:
    """Re-publishing the same hour adds no second stream entry."""
    client = aioredis.Redis.from_url(redis_url)
    sink = RedisSink(client, RedisSettings(key_prefix=prefix))
    await sink.publish(snap(0))
    await sink.publish(snap(0))
    assert await client.xlen(Keys(prefix).history) == 1
    await client.aclose()


async def test_an_older_hour_never_replaces_a_newer_key(redis_url: str, prefix: str) -> None:
    """A late write of hour 1 after hour 2 leaves the key at hour 2."""
    client = aioredis.Redis.from_url(redis_url)
    sink = RedisSink(client, RedisSettings(key_prefix=prefix))
    await sink.publish(snap(2, "fragile", 0.5))
    await sink.publish(snap(1))
    current = Snapshot.model_validate_json(await client.get(Keys(prefix).regime))
    assert current.as_of == snap(2).as_of
    await client.aclose()


async def test_redis_down_queues_hours_in_order_and_catches_up(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """With Redis stopped, publishes fail loudly but queue; after restart every hour lands, in order."""
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    settings = RedisSettings(key_prefix="riskd:v1")
    sink = RedisSink(client, settings, spool=tmp_path / "spool.jsonl")
    await sink.publish(snap(0))
    redis_server.stop()
    for h in (1, 2, 3):
        with pytest.raises(SinkError):
            await sink.publish(snap(h))
    assert sink.pending == 3
    # a restart of riskd itself while Redis is down keeps the queue (spool on disk)
    sink2 = RedisSink(client, settings, spool=tmp_path / "spool.jsonl")
    assert sink2.pending == 3
    redis_server.start()
    await sink2.publish(snap(4))
    hist = await read_history(client, "riskd:v1", 10)
    assert [s.as_of for s in hist] == [snap(h).as_of for h in range(5)]
    assert sink2.pending == 0
    await client.aclose()


def test_read_regime_returns_fresh_state(redis_url: str, prefix: str) -> None:
    """A fresh key reads back as ok with its state and multiplier."""
    client = redis.Redis.from_url(redis_url)
    client.set(Keys(prefix).regime, snap(0, "fragile", 0.4).to_json())
    reading = read_regime(client, prefix=prefix, now=T0 + timedelta(minutes=30))
    assert reading.ok
    assert (reading.state, reading.risk_multiplier) == ("fragile", 0.4)
    client.close()


@pytest.mark.parametrize(
    ("value", "age", "status"),
    [
        (None, timedelta(0), "unknown"),  # key gone: the daemon died and the expiry ran out
        ("{not json", timedelta(0), "unknown"),
        ("FRESH", timedelta(hours=3), "stale"),  # present but old: never served as current
    ],
)
def test_read_regime_never_serves_an_old_or_broken_state(
    redis_url: str, prefix: str, value: str | None, age: timedelta, status: str
) -> None:
    """Missing, malformed or old keys read as unknown/stale with the fallback multiplier."""
    client = redis.Redis.from_url(redis_url)
    if value == "FRESH":
        value = snap(0, "calm", 1.0).to_json()
    if value is not None:
        client.set(Keys(prefix).regime, value)
    reading = read_regime(client, prefix=prefix, now=T0 + age, fallback_multiplier=0.25)
    assert reading.status == status
    assert reading.snapshot is None
    assert (reading.state, reading.risk_multiplier) == ("unknown", 0.25)
    client.close()


async def test_async_reader_and_unreachable_redis(prefix: str) -> None:
    """An unreachable Redis reads as unknown instead of raising."""
    client = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    reading = await aread_regime(client, prefix=prefix)
    assert reading.status == "unknown"
    assert "redis error" in reading.reason
    await client.aclose()


async def test_key_expires_so_a_dead_daemon_reads_unknown(redis_url: str, prefix: str) -> None:
    """With a short cycle expiry the key vanishes and the reader reports unknown."""
    client = aioredis.Redis.from_url(redis_url)
    sink = RedisSink(client, RedisSettings(key_prefix=prefix, key_ttl_cycles=1.0001))
    sink._ttl_ms = 200  # the expiry logic is Redis's own; shorten it rather than wait 2.5 hours
    await sink.publish(snap(0))
    assert (await aread_regime(client, prefix=prefix, now=T0)).ok
    await asyncio.sleep(0.4)
    assert (await aread_regime(client, prefix=prefix, now=T0)).status == "unknown"
    await client.aclose()


async def test_one_leader_and_takeover_after_its_lease_lapses(redis_url: str, prefix: str) -> None:
    """Two replicas: exactly one leads; when it stops renewing, the other takes over within the TTL."""
    a_client, b_client = aioredis.Redis.from_url(redis_url), aioredis.Redis.from_url(redis_url)
    key = Keys(prefix).leader
    a = LeaderLease(a_client, key, "a", ttl_s=0.6)
    b = LeaderLease(b_client, key, "b", ttl_s=0.6)
    assert await a.tick() is True
    assert await b.tick() is False
    assert await a.tick() is True  # renewal keeps it
    await asyncio.sleep(0.8)  # a "dies": no renewal
    assert await b.tick() is True
    assert await a.tick() is False  # the old leader cannot renew the new leader's lease
    await b.release()
    assert await a.tick() is True
    await a_client.aclose()
    await b_client.aclose()


def _tls_server(tmp: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    """A TLS-only redis-server with a throwaway CA (openssl), password-protected."""
    run = lambda *a: subprocess.run(a, cwd=tmp, check=True, capture_output=True)  # noqa: E731  (a one-line local helper reads best as a lambda)
    run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=riskd-test-ca",
    )
    run(
        "openssl",
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    (tmp / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "openssl",
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "1",
        "-extfile",
        "ext",
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            redis_binary(),
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.crt",
            "--tls-auth-clients",
            "no",
            "--requirepass",
            "s3cret",
            "--save",
            "",
            "--bind",
            "127.0.0.1",
        ],
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, port, tmp / "ca.crt"


async def test_tls_and_auth_come_from_the_url(tmp_path: Path) -> None:
    """rediss://:password@host with the CA in the URL: publishing and reading work over TLS."""
    if shutil.which("openssl") is None or redis_binary() is None:
        pytest.skip("needs openssl and a redis-server binary to start a TLS server")
    proc, port, ca = _tls_server(tmp_path)
    try:
        url = f"rediss://:s3cret@127.0.0.1:{port}/0?ssl_ca_certs={ca}"
        settings = RedisSettings(key_prefix="riskd-tls:v1")
        client = client_from_settings(settings, url)
        for _ in range(50):  # the server takes a moment to listen
            try:
                await client.ping()
                break
            except Exception:
                await asyncio.sleep(0.1)
        await RedisSink(client, settings).publish(snap(0, "fragile", 0.5))
        reading = await aread_regime(client, prefix="riskd-tls:v1", now=T0)
        assert reading.ok
        assert reading.state == "fragile"
        plain = aioredis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
        with pytest.raises(Exception):  # noqa: B017, PT011 - any failure: a plain connection must not work
            await plain.ping()
        await plain.aclose()
        await client.aclose()
    finally:
        proc.terminate()
        proc.wait(timeout=5)
