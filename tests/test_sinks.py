"""The sink contract: any SnapshotSink registers with one line and fails alone; the signed webhook proves
it (a real loopback receiver that checks every signature; real Redis; real ccxt against the fake)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
from aiohttp import web

from riskd.clock import SimClock
from riskd.config import load_settings
from riskd.contract.keys import Keys
from riskd.contract.models import Snapshot
from riskd.daemon.wiring import drain_outbox, runtime
from riskd.sinks.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from riskd.testing.fake_exchange import FakeExchange
from tests.test_daemon import CASCADE, HOUR, T0, Recorder, _drive, _market, _settings

SECRET = "s3cret-for-tests"


class Exploding:
    """A sink that raises on every call."""

    name = "exploding"
    leader_only = False

    def __init__(self) -> None:
        self.calls = 0

    async def publish(self, snapshot: Snapshot) -> None:
        self.calls += 1
        raise RuntimeError("this sink always fails")


class Receiver:
    """A webhook receiver on loopback: verifies each signature, answers 500 to the first ``fail_first``
    requests, or never answers while ``hang`` is set."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.hang = False
        self.requests = 0
        self.bad_signatures = 0
        self.snapshots: list[dict[str, object]] = []
        self.alerts: list[dict[str, object]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        if not verify(
            SECRET.encode(), request.headers[TIMESTAMP_HEADER], body, request.headers[SIGNATURE_HEADER]
        ):
            self.bad_signatures += 1
            return web.Response(status=401)
        if self.hang:
            await asyncio.sleep(30)
        if self.requests <= self.fail_first:
            return web.Response(status=500)
        payload = json.loads(body)
        (self.alerts if payload.get("type") == "alert" else self.snapshots).append(payload)
        return web.Response(status=204)


@contextlib.asynccontextmanager
async def serve(receiver: Receiver) -> AsyncIterator[Receiver]:
    """Run the receiver on a free loopback port."""
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def test_a_signature_is_verified_and_a_forged_one_refused() -> None:
    """verify() accepts what sign() made, refuses another body, another key and an old timestamp."""
    from riskd.sinks.webhook import sign

    sig = sign(b"k", "1000.000", b"{}")
    assert verify(b"k", "1000.000", b"{}", sig, now=1010)
    assert not verify(b"k", "1000.000", b"{ }", sig, now=1010)
    assert not verify(b"other", "1000.000", b"{}", sig, now=1010)
    assert not verify(b"k", "1000.000", b"{}", sig, now=5000)


async def test_a_sink_that_always_raises_fails_alone_and_is_counted_by_name(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """Registering a sink that raises on every call: Redis and metrics still get every hour; its
    failures are counted under its own name."""
    clock = SimClock(T0)
    async with FakeExchange(_market(40), now=clock.now) as fx:
        settings = _settings(tmp_path, fx, redis_url, prefix)
        async with runtime(settings, clock=clock, channel=Recorder(), commands=False) as rt:
            rt.daemon.load()
            bad = Exploding()
            rt.daemon.sinks.publishers.append(bad)
            snaps = await _drive(rt, clock, [T0, T0 + HOUR])
            key = Snapshot.model_validate_json(await rt.client.get(Keys(prefix).regime))
            failures = rt.metrics.registry.get_sample_value(
                "riskd_stage_failures_total", {"stage": "exploding"}
            )
            scraped = rt.metrics.state.snapshot
    assert bad.calls == 2
    assert key == snaps[-1]
    assert scraped == snaps[-1]
    assert failures == 2


async def test_webhook_signs_retries_a_500_and_carries_snapshots_and_alerts(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """Every snapshot and the planted cascade's alerts reach the receiver, signed; a 500 is retried."""
    clock = SimClock(T0)
    async with serve(Receiver(fail_first=1)) as rx, FakeExchange(_market(), now=clock.now) as fx:
        base = _settings(tmp_path, fx, redis_url, prefix)
        settings = load_settings(
            **{
                **base.model_dump(mode="python", exclude={"webhook"}),
                "webhook": {"urls": [rx.url], "secret": SECRET, "initial_backoff_s": 0.05},
            }
        )
        settings.redis.url = base.redis.url
        async with runtime(settings, clock=clock, channel=Recorder(), commands=False) as rt:
            rt.daemon.load()
            await rt.start_publishing()
            hours = list(pd.date_range(CASCADE - 2 * HOUR, CASCADE + HOUR, freq="h"))
            snaps = await _drive(rt, clock, hours)
            assert await rt.daemon.sinks.publishers[0].drain(10)
            for extra in rt.extra:
                await drain_outbox(extra, 10)
    assert rx.bad_signatures == 0
    assert rx.requests > len(snaps)  # the first answer was a 500, and it was tried again
    assert [s["as_of"] for s in rx.snapshots] == [s.model_dump(mode="json")["as_of"] for s in snaps]
    kinds = {a["alert"]["kind"] for a in rx.alerts}  # type: ignore[index]
    assert "cascade_start" in kinds


async def test_a_dead_receiver_never_delays_the_redis_publish(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """A receiver that never answers: the cycle returns and the key is written while the webhook is
    still waiting on it."""
    clock = SimClock(T0)
    rx = Receiver()
    rx.hang = True
    async with serve(rx), FakeExchange(_market(40), now=clock.now) as fx:
        base = _settings(tmp_path, fx, redis_url, prefix)
        settings = load_settings(
            **{
                **base.model_dump(mode="python", exclude={"webhook"}),
                "webhook": {"urls": [rx.url], "secret": SECRET, "timeout_s": 20},
            }
        )
        settings.redis.url = base.redis.url
        async with runtime(settings, clock=clock, channel=Recorder(), commands=False) as rt:
            rt.daemon.load()
            snaps = await _drive(rt, clock, [T0])
            key = Snapshot.model_validate_json(await rt.client.get(Keys(prefix).regime))
            assert key == snaps[-1]
            assert rt.daemon.sinks.publishers[0].pending == 1
