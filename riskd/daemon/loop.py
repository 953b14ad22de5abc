"""The daemon's two loops: the hourly cycle at every hour close plus grace, and the leader lease.

Kept apart from the cycle (arq's ``run()`` vs ``async_run()``): the cycle is one testable step, the loops
only decide when it runs and what a stop request does to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

import pandas as pd

from riskd.clock import Clock
from riskd.config import Settings
from riskd.contract.models import Snapshot
from riskd.core.schedule import next_run
from riskd.daemon.book import StateBook
from riskd.daemon.faults import Faults
from riskd.daemon.lease import LeaderLease
from riskd.errors import SinkError

log = logging.getLogger("riskd.daemon")


class Daemon(Protocol):
    """What the loops need of :class:`riskd.daemon.cycle.Daemon` (the cycle imports this module)."""

    settings: Settings
    clock: Clock
    book: StateBook
    sinks: Any  # riskd.daemon.cycle.Sinks
    faults: Faults

    async def run_once(self) -> list[Snapshot]: ...

    async def derive_alerts(self) -> None: ...

    async def repair_rollback(self) -> None: ...


async def run_forever(daemon: Daemon, stop: asyncio.Event) -> None:
    """Cycle at every hour close plus grace until ``stop`` is set; a failed cycle is retried with back-off."""
    grace = pd.Timedelta(seconds=daemon.settings.daemon.grace_s)
    backoff = 5.0
    while not stop.is_set():
        due = next_run(daemon.clock.now(), grace, daemon.book.last_ts)
        await daemon.clock.sleep_until(due, stop)
        if stop.is_set():
            break
        try:
            if not await cycle_until(daemon, stop):
                break
            backoff = 5.0
        except Exception as err:  # keep running whatever broke: the next attempt may succeed
            log.exception("cycle failed, retrying in %.0fs: %s", backoff, err)
            daemon.sinks.metrics.observe_cycle(0.0, "failed")
            await daemon.clock.sleep_until(daemon.clock.now() + pd.Timedelta(seconds=backoff), stop)
            backoff = min(backoff * 2, 300.0)


async def cycle_until(daemon: Daemon, stop: asyncio.Event) -> bool:
    """Run one cycle, cancelled at once when ``stop`` is set (in-flight fetches and retries end there;
    what was published stays published). False when it was stopped."""
    cycle = asyncio.ensure_future(daemon.run_once())
    halt = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({cycle, halt}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        halt.cancel()
    if cycle.done():
        cycle.result()  # re-raise the cycle's error
        return True
    cycle.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):  # it was cancelled: how it ended is moot
        await asyncio.wait_for(cycle, 5.0)
    log.info("cycle interrupted by the stop request")
    return False


async def lease_loop(daemon: Daemon, stop: asyncio.Event) -> None:
    """Keep the leader lease renewed (or keep trying to take it); a new leader writes what it holds at
    once and raises the alerts of hours published by anyone (a dead leader, its own spool)."""
    lease = daemon.sinks.lease
    if lease is None:
        return
    while not stop.is_set():
        was = lease.is_leader
        now_leader = await lease.tick()
        daemon.sinks.metrics.set_leader(now_leader)
        note_redis(daemon, lease)
        if now_leader and not was and daemon.sinks.redis is not None:
            try:  # so the key does not lapse while it waits for its next cycle
                await daemon.sinks.redis.flush()
            except SinkError as err:
                log.error("redis: %s", err)
        if now_leader:
            await daemon.repair_rollback()  # a Redis restored from an older snapshot, seen within a tick
            await daemon.derive_alerts()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=lease.interval_s)


def note_redis(daemon: Daemon, lease: LeaderLease) -> None:
    """Redis's reachability as the lease saw it: an outage is logged and counted once, when it begins
    and when it ends, and /healthz says degraded meanwhile."""
    metrics = daemon.sinks.metrics
    if lease.unknown:
        if metrics.service_down("redis", f"redis unreachable: {lease.last_error}"):
            log.error("redis unreachable: %s (logged once until it answers)", lease.last_error)
    elif "redis" in metrics.state.down and "redis" not in daemon.faults.failing:
        metrics.service_up("redis")
        log.warning("redis answers again")
