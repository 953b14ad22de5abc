"""Wiring: Settings in, a running daemon out. ``riskd run`` and ``riskd once`` live here.

Everything that touches the world is built here and handed to the Daemon: the Redis client (the
configured one, one answering on localhost:6379, or an embedded redis-server we start), the venue
sources, the metrics server, the alert pipeline and the Telegram command bot. SIGTERM/SIGINT set a
stop event; every task winds down and the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from riskd.clock import Clock, WallClock
from riskd.daemon import Daemon, Sinks
from riskd.lease import LeaderLease, default_instance_id
from riskd.settings import Settings, redact_url
from riskd.sinks.metrics import Metrics, MetricsServer
from riskd.sinks.redis import RedisSink, client_from_settings, keys
from riskd.sources import make_source
from riskd.store import HistoryStore
from riskd.testing.redis_server import RedisServer, answers

log = logging.getLogger("riskd")

_ENDPOINTS = {
    "binance": ["markets", "fundingInfo", "klines", "fundingRate", "openInterestHist", "funding_rates"],
    "bybit": ["markets", "kline", "funding/history", "open-interest", "funding_rates"],
    "hyperliquid": ["markets", "candleSnapshot", "fundingHistory", "funding_rates"],
}


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def resolve_redis(settings: Settings, default_port: int = 6379) -> tuple[str, RedisServer | None]:
    """The Redis URL to use, starting an embedded redis-server when none is configured or answering."""
    if settings.redis.url is not None:
        return settings.redis.url.get_secret_value(), None
    if answers("127.0.0.1", default_port):
        log.info("redis.url not set: using the Redis answering on 127.0.0.1:%d", default_port)
        return f"redis://127.0.0.1:{default_port}/0", None
    data = settings.data_dir / "redis"
    port = default_port if _port_free(default_port) else None
    server = RedisServer(port=port, data_dir=data, persist=True).start()
    log.warning(
        "redis.url not set and nothing answers on 127.0.0.1:%d: started an embedded redis-server (%s) "
        "at %s with persistence in %s",
        default_port,
        server.binary,
        server.url,
        data,
    )
    return server.url, server


@dataclass
class Runtime:
    """Everything a running riskd owns, for orderly shutdown."""

    daemon: Daemon
    client: aioredis.Redis
    url: str
    metrics: Metrics
    server: MetricsServer | None
    pipeline: Any
    channel: Any
    commands: Any | None
    embedded: RedisServer | None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def start_publishing(self) -> None:
        """Take (or learn we cannot take) the leader lease and start the alert delivery worker."""
        await self.daemon.sinks.lease.tick()  # type: ignore[union-attr]
        self.tasks.append(self.pipeline.start())


@asynccontextmanager
async def runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    channel: Any | None = None,
    metrics_port: int | None = None,
    with_sources: bool = True,
    commands: bool = True,
) -> AsyncIterator[Runtime]:
    """Build and start every part; tear all of it down on exit, whatever happened."""
    from riskd.sinks.alerting import AlertPipeline
    from riskd.sinks.telegram import build_channel

    clock = clock or WallClock()
    url, embedded = resolve_redis(settings)
    client = client_from_settings(settings.redis, url)
    metrics = Metrics(clock=lambda: clock.now().timestamp())
    server = None
    if settings.metrics.enabled:
        port = settings.metrics.port if metrics_port is None else metrics_port
        server = await MetricsServer(metrics, settings.metrics.host, port).start()
    sources = {}
    if with_sources:
        for venue in settings.venues.enabled():
            sources[venue] = make_source(venue, settings, clock=clock.now, hook=metrics.request_hook)
            metrics.declare_endpoints(venue, _ENDPOINTS[venue])
    channel = channel or build_channel(settings.telegram)
    pipeline = AlertPipeline.from_settings(
        client,
        channel,
        settings,
        on_sent=lambda ch, sev: metrics.alerts_sent.labels(ch, sev).inc(),
        on_suppressed=lambda reason: metrics.alerts_suppressed.labels(reason).inc(),
        clock=lambda: clock.now().timestamp(),
    )
    metrics.state.outbox_size = lambda: pipeline.stats.outbox_size
    prefix = settings.redis.key_prefix
    lease = LeaderLease(
        client,
        keys(prefix)["leader"],
        settings.daemon.instance_id or default_instance_id(),
        settings.daemon.lease_ttl_s,
    )
    spool = settings.data_dir / "state" / "redis-spool.jsonl"
    sinks = Sinks(
        metrics=metrics,
        redis=RedisSink(client, settings.redis, spool=spool),
        alerts=pipeline,
        lease=lease,
        charts=getattr(channel, "bot", None) is not None,  # Telegram shows the chart; a console cannot
    )
    store = HistoryStore(settings.store_dir)
    daemon = Daemon(settings, sources=sources, store=store, sinks=sinks, clock=clock)
    bot = None
    if commands and getattr(channel, "bot", None) is not None:
        from riskd.sinks.commands import CommandBot, RedisStatusSource

        bot = CommandBot(
            channel.bot, settings.telegram, RedisStatusSource(client, prefix, outbox=pipeline), pipeline
        )
    rt = Runtime(daemon, client, url, metrics, server, pipeline, channel, bot, embedded)
    try:
        yield rt
    finally:
        await _shutdown(rt, sources.values())


async def _shutdown(rt: Runtime, sources: Any) -> None:
    """Stop every part in order. Each step has its own deadline so one stuck peer (a Redis that stopped
    answering, a Telegram call hanging in TLS) cannot keep a SIGTERMed riskd alive until systemd or
    the orchestrator kills it; a step that runs out is logged by name and skipped."""
    for task in rt.tasks:
        task.cancel()
    if rt.tasks:
        _, pending = await asyncio.wait(rt.tasks, timeout=5.0)
        for task in pending:
            log.warning("shutdown: task %s ignored cancellation for 5s; leaving it behind", task.get_name())
    if rt.commands is not None:
        await _step("telegram commands", rt.commands.stop(), 5.0)
    await _step("alert delivery", rt.pipeline.stop(grace_s=5), 7.0)
    if rt.daemon.sinks.lease is not None:
        await _step("leader lease release", rt.daemon.sinks.lease.release(), 3.0)
    await _step("alert channel", rt.channel.aclose(), 5.0)
    for source in sources:
        await _step(f"source {getattr(source, 'venue', source)}", source.close(), 3.0)
    await _step("redis client", rt.client.aclose(), 3.0)
    if rt.server is not None:
        await _step("metrics server", rt.server.stop(), 3.0)
    if rt.embedded is not None:
        rt.embedded.stop()
    log.debug("shutdown complete")


async def _step(name: str, aw: Awaitable[Any], timeout_s: float) -> None:
    """Await one shutdown step for at most ``timeout_s``; its failure is logged, never raised."""
    try:
        await asyncio.wait_for(aw, timeout_s)
    except TimeoutError:
        log.warning("shutdown: %s did not finish within %.0fs; leaving it behind", name, timeout_s)
    except Exception as exc:
        log.warning("shutdown: %s failed: %s", name, exc)


def install_signal_handlers(stop: asyncio.Event, deadline_s: float) -> None:
    """SIGTERM and SIGINT end the run cleanly (exit status 0). A shutdown that is still going after
    ``deadline_s`` is diagnosed, not waited out: faulthandler prints every thread's stack and exits 1."""
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if not stop.is_set():
            log.info("stop requested; shutting down (deadline %.0fs)", deadline_s)
            with contextlib.suppress(AttributeError, ValueError, OSError):  # no real stderr: no deadline
                faulthandler.dump_traceback_later(deadline_s, exit=True, file=sys.__stderr__)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)


async def drain_outbox(pipeline: Any, timeout_s: float) -> None:
    """Deliver what the outbox holds (``riskd once``, demo) for at most ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if await pipeline.outbox_size() == 0:
            return
        await asyncio.sleep(0.1)


async def run(settings: Settings, *, once: bool, clock: Clock | None = None,
              stop: asyncio.Event | None = None, ready: Callable[[Runtime], None] | None = None) -> int:  # fmt: skip
    """``riskd run`` (``once=False``) or ``riskd once``."""
    stop = stop or asyncio.Event()
    install_signal_handlers(stop, settings.daemon.shutdown_deadline_s)
    async with runtime(settings, clock=clock, commands=not once) as rt:
        d = rt.daemon
        await asyncio.to_thread(d.load)
        await rt.start_publishing()
        if ready is not None:
            ready(rt)
        if once:
            snaps = await d.run_once()
            await drain_outbox(rt.pipeline, 10.0)
            for s in snaps[-1:]:
                print(s.to_json())
            return 0
        rt.tasks.append(asyncio.create_task(d.lease_loop(stop), name="riskd-lease"))
        if rt.commands is not None:
            rt.tasks.append(rt.commands.start())
        log.info(
            "riskd running: venues %s, redis %s, leader=%s",
            ", ".join(d.venues),
            redact_url(rt.url),
            d.sinks.lease.is_leader,
        )  # type: ignore[union-attr]
        await d.run_forever(stop)
    log.info("riskd stopped")
    return 0


def cli_run(settings: Settings, args: argparse.Namespace) -> int:
    """``riskd run``: the daemon until SIGTERM/SIGINT."""
    return asyncio.run(run(settings, once=False))


def cli_once(settings: Settings, args: argparse.Namespace) -> int:
    """``riskd once``: one cycle, print the newest snapshot, exit."""
    return asyncio.run(run(settings, once=True))
