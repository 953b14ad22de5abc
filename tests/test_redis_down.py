"""A daemon whose Redis does not answer says so (issue 17, finding 8): /healthz degraded with the reason,
the failure counted, one log line per outage; and before its first cycle /healthz says starting."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import aiohttp
import pytest

from riskd.clock import SimClock
from riskd.daemon.embedded import free_port
from riskd.daemon.wiring import runtime
from riskd.http.server import MetricsServer
from riskd.sinks.metrics import Metrics, parse_exposition
from riskd.testing.fake_exchange import FakeExchange
from tests.test_daemon import GRACE, HOUR, T0, Recorder, _market, _settings


async def _get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as resp:
        return resp.status, await resp.text()


async def test_healthz_says_starting_before_the_first_cycle() -> None:
    """A process that has not completed a cycle nor published anything is 'starting' (200: alive), not 'ok'."""
    server = await MetricsServer(Metrics(), "127.0.0.1", 0).start()
    try:
        status, body = await _get(server.port, "/healthz")
    finally:
        await server.stop()
    assert status == 200
    assert json.loads(body)["status"] == "starting"


async def test_redis_unreachable_is_degraded_counted_and_logged_once(
    tmp_path: Path, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """riskd started with its Redis down computes and spools its hour; /healthz says degraded and names
    Redis, riskd_stage_failures_total{stage="redis"} counts it, and the outbox's retries log one line for
    the outage, not one a second (before: /healthz ok, the counter 0, a warning every second)."""
    caplog.set_level(logging.INFO, logger="riskd")
    clock = SimClock(T0)
    async with FakeExchange(_market(), now=clock.now) as fx:
        settings = _settings(tmp_path, fx, f"redis://127.0.0.1:{free_port()}/0", prefix)
        settings.metrics.port = free_port()
        async with runtime(settings, clock=clock, channel=Recorder(), commands=False) as rt:
            rt.daemon.load()
            rt.pipeline._poll_s = 0.05  # the outbox retries every 50 ms: many retries within the test
            await rt.start_publishing()
            clock.set(T0 + HOUR + GRACE)
            (snap,) = await rt.daemon.run_once()
            await asyncio.sleep(1.0)
            status, body = await _get(settings.metrics.port, "/healthz")
            _, scrape = await _get(settings.metrics.port, "/metrics")
            spooled = rt.daemon.sinks.redis.pending if rt.daemon.sinks.redis is not None else 0
    health = json.loads(body)
    assert status == 200
    assert health["status"] == "degraded"
    assert any("redis" in r for r in health["reasons"]), health
    assert parse_exposition(scrape)[("riskd_stage_failures_total", (("stage", "redis"),))] >= 1
    assert spooled >= 1, "the hour waits in the spool for Redis"
    assert snap.as_of is not None
    outbox_lines = [r for r in caplog.records if "alert outbox unreachable" in r.getMessage()]
    assert len(outbox_lines) == 1, [r.getMessage() for r in outbox_lines]
    start_lines = [r for r in caplog.records if "did not answer" in r.getMessage()]
    assert len(start_lines) == 1
