"""``riskd run`` (the daemon until SIGTERM/SIGINT) and ``riskd once`` (one cycle, print the snapshot)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable
from typing import Any

from riskd.clock import Clock
from riskd.config import Settings, redact_url
from riskd.contract.alerts import blind
from riskd.daemon.shutdown import install_signal_handlers
from riskd.daemon.wiring import Runtime, drain_outbox, runtime
from riskd.errors import EXIT_BLIND

log = logging.getLogger("riskd")


def add_parser(sub: Any) -> None:
    """The ``run`` and ``once`` sub-commands (no arguments of their own)."""
    sub.add_parser("run", help="the daemon: every hour at candle close, fetch, compute, publish")
    sub.add_parser("once", help="one cycle now, print the newest snapshot, exit (3: unknown or stale)")


async def run(
    settings: Settings,
    *,
    once: bool,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
    ready: Callable[[Runtime], None] | None = None,
) -> int:
    """``riskd run`` (``once=False``) or ``riskd once``.

    Redis unreachable at start: ``riskd once`` stops with one line and exit 4 (nothing it computes could
    be published); ``riskd run`` says so in one line and runs on degraded — it computes, spools its hours
    and publishes them when Redis answers, while /healthz says degraded. ``riskd once`` exits 3 when the
    snapshot it published is unknown or stale (it printed it all the same)."""
    stop = stop or asyncio.Event()
    install_signal_handlers(stop, settings.daemon.shutdown_deadline_s)
    async with runtime(settings, clock=clock, commands=not once, require_redis=once) as rt:
        d = rt.daemon
        await asyncio.to_thread(d.load)
        await rt.start_publishing()
        if ready is not None:
            ready(rt)
        if once:
            snaps = await d.run_once()
            await drain_outbox(rt.pipeline, 10.0)
            last = snaps[-1] if snaps else d.last
            if last is not None:
                print(last.to_json())
            return EXIT_BLIND if last is None or blind(last) else 0
        rt.tasks.append(asyncio.create_task(d.lease_loop(stop), name="riskd-lease"))
        if settings.streams.enabled:  # the minute side: its own task, never inside the hourly cycle
            from riskd.streams.task import MinuteStreams

            streams = MinuteStreams(
                settings,
                client=rt.client,
                pipeline=rt.pipeline,
                clock=d.clock,
                store=d.store,
                metrics=rt.metrics,
            )
            rt.tasks.append(asyncio.create_task(streams.run(stop), name="riskd-streams"))
        if rt.commands is not None:
            rt.tasks.append(rt.commands.start())
        if rt.escalation is not None:
            rt.tasks.append(asyncio.create_task(rt.escalation.run(stop), name="riskd-escalation"))
        log.info(
            "riskd running: venues %s, redis %s, leader=%s",
            ", ".join(d.venues),
            redact_url(rt.url),
            d.sinks.lease.is_leader if d.sinks.lease is not None else "n/a",
        )
        await d.run_forever(stop)
    log.info("riskd stopped")
    return 0


def cli_run(settings: Settings, args: argparse.Namespace) -> int:
    """``riskd run``: the daemon until SIGTERM/SIGINT."""
    return asyncio.run(run(settings, once=False))


def cli_once(settings: Settings, args: argparse.Namespace) -> int:
    """``riskd once``: one cycle, print the newest snapshot, exit."""
    return asyncio.run(run(settings, once=True))
