"""The daemon under faults (issue 9): late data restates, a restarted follower alerts what it computed,
SIGTERM interrupts a cycle stuck in retries, and a broken data dir is contained. Real Redis, real ccxt
against the fake exchange, the simulated clock."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path

import pandas as pd
import pytest

from riskd.clock import SimClock
from riskd.contract.keys import Keys
from riskd.daemon.wiring import drain_outbox, runtime
from riskd.sinks.redis import read_history
from riskd.testing.fake_exchange import FakeExchange
from tests.test_daemon import (
    CASCADE,
    GRACE,
    HOUR,
    T0,
    VENUES,
    Recorder,
    _assert_matches_batch,
    _drive,
    _market,
    _settings,
)


class Stallable:
    """The fake exchange's clock: follows the daemon's, or stands still while the exchange is stalled
    (it then serves nothing newer than the moment it froze, as a frozen matching engine would)."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.frozen_at: pd.Timestamp | None = None

    def __call__(self) -> pd.Timestamp:
        return self.frozen_at if self.frozen_at is not None else self.clock.now()


async def test_late_candles_restate_the_hours_and_raise_the_missed_cascade(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """The exchange stalls across the planted cascade: those hours go out stale, never ok. When the candles
    arrive late, the hours are recomputed and republished as revisions, the cascade alert goes out marked
    late, and the stream (newest revision per hour) equals the batch path over the store (finding 3)."""
    clock = SimClock(T0)
    fx_now = Stallable(clock)
    rec = Recorder()
    async with FakeExchange(_market(), now=fx_now) as fx:
        settings = _settings(tmp_path, fx, redis_url, prefix)
        async with runtime(settings, clock=clock, channel=rec, commands=False) as rt:
            rt.daemon.load()
            rt.pipeline.start()
            before = await _drive(rt, clock, list(pd.date_range(T0 + 20 * HOUR, CASCADE - HOUR, freq="h")))
            fx_now.frozen_at = CASCADE + GRACE  # nothing from the cascade hour on
            stalled = await _drive(rt, clock, list(pd.date_range(CASCADE, CASCADE + 3 * HOUR, freq="h")))
            assert [s.data_quality.status for s in stalled] == ["stale"] * 4
            assert not any("Cascade started" in t for t in rec.sent)
            fx_now.frozen_at = None
            after = await _drive(rt, clock, [CASCADE + 4 * HOUR])
            await drain_outbox(rt.pipeline, 10)
            stream = await read_history(rt.client, prefix, 100)
            raw = await rt.client.xrange(Keys(prefix).history)
    restated = [s for s in after if s.restated]
    assert [s.as_of for s in restated] == [CASCADE + h * HOUR for h in range(1, 5)]
    assert all(s.revision == 1 and not s.live for s in restated)
    assert len(raw) == len(before) + 4 + 4 + 1  # every revision is kept in the stream
    assert [s.as_of for s in stream] == [s.as_of for s in before] + [CASCADE + h * HOUR for h in range(1, 6)]
    assert all(s.data_quality.status == "ok" for s in stream)
    cascade = [t for t in rec.sent if "Cascade started" in t]
    assert len(cascade) == 1, rec.sent
    assert re.search(r"LATE by \d+ h", cascade[0])
    _assert_matches_batch(stream, settings, VENUES)


async def test_a_restarted_follower_alerts_the_hours_it_caught_up_once_it_leads(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """kill -9 then restart under a new instance id: the dead process's lease still stands, so the new one
    catches up as a follower; when the lease lapses it publishes those hours and raises their alerts,
    each once (finding 2: 0 of 3 alerts)."""
    clock = SimClock(T0)
    rec = Recorder()
    async with FakeExchange(_market(), now=clock.now) as fx:
        settings = _settings(tmp_path, fx, redis_url, prefix, instance_id="first")
        async with runtime(settings, clock=clock, channel=Recorder(), commands=False) as rt:
            rt.daemon.load()
            first = await _drive(rt, clock, list(pd.date_range(T0 + 20 * HOUR, T0 + 26 * HOUR, freq="h")))
        # "first" died hard: its lease is still in Redis for the TTL; the restart gets a new id
        await_lease = Keys(prefix).leader
        restarted = _settings(tmp_path, fx, redis_url, prefix, instance_id="second")
        async with runtime(restarted, clock=clock, channel=rec, commands=False) as rt:
            await rt.client.set(await_lease, "first", px=1500)
            rt.daemon.load()
            clock.set(CASCADE + 4 * HOUR + HOUR + GRACE)
            assert await rt.daemon.sinks.lease.tick() is False
            caught_up = await rt.daemon.run_once()  # as a follower: computed, spooled, not published
            assert any(s.episode_id for s in caught_up)
            assert rec.sent == []
            stop = asyncio.Event()
            loop = asyncio.create_task(rt.daemon.lease_loop(stop))
            rt.pipeline.start()
            for _ in range(100):
                await asyncio.sleep(0.1)
                if rt.daemon.sinks.lease.is_leader and any("Cascade started" in t for t in rec.sent):
                    break
            await drain_outbox(rt.pipeline, 10)
            stop.set()
            await loop
            stream = await read_history(rt.client, prefix, 100)
    assert [s.as_of for s in stream] == [s.as_of for s in first + caught_up]
    assert len([t for t in rec.sent if "Cascade started" in t]) == 1
    assert len(rec.sent) == len(set(rec.sent))


async def test_sigterm_interrupts_a_cycle_stuck_in_retries(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """Every venue unreachable and long back-offs: a stop request ends run_forever within seconds, not
    after the retries run out (finding 6)."""
    clock = SimClock(T0 + GRACE)
    async with FakeExchange(_market(), now=clock.now) as fx:
        settings = _settings(tmp_path, fx, redis_url, prefix)
    dead = settings.model_copy(deep=True)
    for venue in VENUES:
        getattr(dead.venues, venue).api_url = "http://127.0.0.1:9"  # nothing listens there
    dead.retry.attempts = 50
    dead.retry.initial_backoff_s = 2.0
    dead.retry.max_backoff_s = 5.0
    async with runtime(dead, clock=clock, channel=Recorder(), commands=False) as rt:
        rt.daemon.load()
        stop = asyncio.Event()
        task = asyncio.create_task(rt.daemon.run_forever(stop))
        await asyncio.sleep(1.0)
        assert not task.done()
        t0 = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 8.0)
        assert time.monotonic() - t0 < 6.0


async def test_a_broken_state_dir_is_logged_once_and_publishing_goes_on(
    tmp_path: Path, redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The state folder cannot be written (a file stands where it must be): every hour is still published,
    the fault is logged once (not a traceback per hour) and counted under stage=state; once the folder
    works again, the state is saved and that is logged (finding 9)."""
    clock = SimClock(T0)
    async with FakeExchange(_market(40), now=clock.now) as fx:
        settings = _settings(tmp_path, fx, redis_url, prefix)
        async with runtime(settings, clock=clock, channel=Recorder(), commands=False) as rt:
            rt.daemon.load()
            await _drive(rt, clock, [T0])
            state_dir = settings.data_dir / "state"
            moved = state_dir.with_name("state-moved")
            state_dir.rename(moved)
            state_dir.write_text("not a folder")
            with caplog.at_level(logging.ERROR, logger="riskd.daemon"):
                snaps = await _drive(rt, clock, [T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR])
            assert len(snaps) == 3
            errors = [r for r in caplog.records if "state file" in r.getMessage()]
            assert len(errors) == 1
            assert errors[0].exc_info is None
            failures = rt.metrics.registry.get_sample_value("riskd_stage_failures_total", {"stage": "state"})
            assert failures == 3
            state_dir.unlink()
            moved.rename(state_dir)
            await _drive(rt, clock, [T0 + 4 * HOUR])
    assert (state_dir / "fragility.json").exists()
