"""The sink contract: any SnapshotSink registers with one line and fails alone; the signed webhook proves
it (a real loopback receiver that checks every signature; real Redis; real ccxt against the fake)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import pytest
from aiohttp import web

from riskd.clock import SimClock
from riskd.config import load_settings
from riskd.contract.keys import Keys
from riskd.contract.models import Snapshot
from riskd.daemon.wiring import drain_outbox, runtime
from riskd.sinks.webhook import ALERT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
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
        self.headers: list[dict[str, str]] = []
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
        self.headers.append(dict(request.headers))
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


async def test_a_failing_and_a_dead_receiver_never_hold_a_healthy_one_back(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """Three receivers (issue 19, case 5): one answers 500 to everything, one is down (nothing listens),
    one is healthy. The healthy one gets every snapshot and every alert as they happen, each alert once
    with a stable ``alert_id`` (body and header) and an integer-seconds timestamp; the failing ones'
    snapshots and alerts wait in their own queues."""
    from riskd.daemon.embedded import free_port
    from riskd.sinks.webhook import url_id

    clock = SimClock(T0)
    failing, healthy = Receiver(fail_first=10**6), Receiver()
    down = f"http://127.0.0.1:{free_port()}/hook"
    async with serve(failing), serve(healthy), FakeExchange(_market(), now=clock.now) as fx:
        base = _settings(tmp_path, fx, redis_url, prefix)
        hooks = {
            "urls": [failing.url, down, healthy.url],
            "secret": SECRET,
            "initial_backoff_s": 0.5,
            "attempts": 50,
            "timeout_s": 2,
        }
        settings = load_settings(**{**base.model_dump(mode="python", exclude={"webhook"}), "webhook": hooks})
        settings.redis.url = base.redis.url
        async with runtime(settings, clock=clock, channel=Recorder(), commands=False) as rt:
            rt.daemon.load()
            await rt.start_publishing()
            sink = rt.daemon.sinks.publishers[0]
            hours = list(pd.date_range(CASCADE - 2 * HOUR, CASCADE + 2 * HOUR, freq="h"))
            snaps: list[Snapshot] = []
            for hour in hours:
                snaps += await _drive(rt, clock, [hour])
                assert await sink.drain(3.0, url=healthy.url), f"the healthy receiver fell behind at {hour}"
            assert sink.pending_for(failing.url) > 0
            assert sink.pending_for(down) > 0
            (to_healthy,) = [p for p in rt.extra if p.channel.destinations == [url_id(healthy.url)]]
            await drain_outbox(to_healthy, 5.0)
            stuck = [p for p in rt.extra if p.channel.destinations in ([url_id(failing.url)], [url_id(down)])]
            assert all([await p.outbox_size() > 0 for p in stuck])
    assert [s["as_of"] for s in healthy.snapshots] == [s.model_dump(mode="json")["as_of"] for s in snaps]
    kinds = [a["alert"]["kind"] for a in healthy.alerts]  # type: ignore[index]
    assert "cascade_start" in kinds
    ids = [a["alert_id"] for a in healthy.alerts]
    assert len(ids) == len(set(ids))  # each alert once
    alert_headers = [h for h in healthy.headers if h["X-Riskd-Event"] == "alert"]
    assert [h[ALERT_ID_HEADER] for h in alert_headers] == ids
    assert all(h[TIMESTAMP_HEADER].isdigit() for h in healthy.headers)
    assert healthy.bad_signatures == 0


def test_the_documented_receiver_verifies_riskd_signatures_and_drops_repeats(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The receiver example in docs/api.md, run as written: it accepts what riskd signs (integer-seconds
    timestamp), refuses a forged body, and handles an alert id once."""
    import re
    import time as _time

    from riskd.sinks.webhook import sign

    doc = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    section = doc[doc.index("## Webhooks") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "docs/api.md: the webhook receiver example is missing"
    space: dict[str, object] = {}
    exec(code.group(1).replace('b"the webhook.secret"', repr(SECRET.encode())), space)
    receive = space["receive"]
    body = json.dumps({"type": "alert", "alert_id": "fp1", "text": "CRITICAL cascade"}).encode()
    ts = str(int(_time.time()))
    headers = {
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: sign(SECRET.encode(), ts, body),
        "X-Riskd-Event": "alert",
    }
    assert receive(headers, body) == 204  # type: ignore[operator]
    assert receive(headers, body) == 204  # type: ignore[operator]
    assert receive(headers, body + b" ") == 401  # type: ignore[operator]
    assert capsys.readouterr().out.count("CRITICAL cascade") == 1
