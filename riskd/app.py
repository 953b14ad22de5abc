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
from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from riskd.alerts import blind
from riskd.clock import Clock, WallClock
from riskd.config_check import check_listen
from riskd.daemon import Daemon, Sinks
from riskd.errors import EXIT_BLIND, Unreachable
from riskd.http.history import RedisHistory
from riskd.lease import LeaderLease, default_instance_id
from riskd.models import Keys
from riskd.redis_server import RedisServer, answers
from riskd.settings import Settings, redact_url, source_of
from riskd.sinks.alert_feed import AlertFeed
from riskd.sinks.funding import FundingSink
from riskd.sinks.metrics import Metrics, MetricsServer
from riskd.sinks.redis import RedisSink, client_from_settings
from riskd.sources import VENUES, make_source
from riskd.store import HistoryStore
from riskd.telegram.escalation import EscalationLoop

log = logging.getLogger("riskd")


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
    extra: list[Any] = field(default_factory=list)  # more alert pipelines (webhooks), each its own outbox
    escalation: EscalationLoop | None = None  # unacknowledged critical alerts, on the leader
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def start_publishing(self) -> None:
        """Take (or learn we cannot take) the leader lease and start the alert delivery workers."""
        await self.daemon.sinks.lease.tick()  # type: ignore[union-attr]
        self.tasks.append(self.pipeline.start())
        self.tasks += [p.start() for p in self.extra]


@asynccontextmanager
async def runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    channel: Any | None = None,
    metrics_port: int | None = None,
    with_sources: bool = True,
    commands: bool = True,
    require_redis: bool = False,
) -> AsyncIterator[Runtime]:
    """Build and start every part; tear all of it down on exit, whatever happened.

    Redis unreachable at start: with ``require_redis`` (the one-shot commands) :class:`Unreachable` is
    raised before anything starts; otherwise it is logged once and the daemon runs degraded."""
    from riskd.sinks.alerting import AlertPipeline
    from riskd.telegram.channel import build_channel
    from riskd.telegram.format import Links

    if settings.metrics.enabled:  # a port already taken: exit 2 with one line, before anything starts
        flag = metrics_port is not None
        check_listen(settings.metrics.host, metrics_port if metrics_port is not None else settings.metrics.port,
                     host_source=source_of(settings, "metrics", "host"),
                     port_source="--metrics-port" if flag else source_of(settings, "metrics", "port"))  # fmt: skip
    clock = clock or WallClock()
    url, embedded = resolve_redis(settings)
    client = client_from_settings(settings.redis, url)
    down = await redis_answers(client, url, settings.redis.socket_timeout_s)
    if down is not None and require_redis:  # before anything starts: one line, nothing to tear down
        await client.aclose()
        if embedded is not None:
            embedded.stop()
        raise Unreachable(down)
    metrics = Metrics(clock=lambda: clock.now().timestamp())
    if down is not None:
        log.error("%s; running degraded: hours are spooled and published when it answers", down)
        metrics.service_down("redis", down)
    server = None
    if settings.metrics.enabled:
        port = settings.metrics.port if metrics_port is None else metrics_port
        server = await MetricsServer(
            metrics, settings.metrics.host, port, settings=settings.metrics, grace_s=settings.daemon.grace_s,
            history=RedisHistory(client, settings.redis.key_prefix),
        ).start()  # fmt: skip
    sources = {}
    if with_sources:
        for venue in settings.venues.enabled():
            sources[venue] = make_source(venue, settings, clock=clock.now, hook=metrics.request_hook)
            metrics.declare_endpoints(venue, list(VENUES[venue].endpoints))
    links = Links.from_settings(settings)
    channel = channel or build_channel(settings.telegram, links)
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
    publishers, pipelines = _webhooks(settings, client, clock, metrics)
    lease = LeaderLease(
        client,
        Keys(prefix).leader,
        settings.daemon.instance_id or default_instance_id(),
        settings.daemon.lease_ttl_s,
    )
    spool = settings.data_dir / "state" / "redis-spool.jsonl"
    sinks = Sinks(
        metrics=metrics,
        redis=RedisSink(client, settings.redis, spool=spool),
        publishers=publishers,
        alerts=pipeline,
        lease=lease,
        charts=getattr(channel, "bot", None) is not None,  # Telegram shows the chart; a console cannot
    )
    store = HistoryStore(settings.store_dir)
    daemon = Daemon(settings, sources=sources, store=store, sinks=sinks, clock=clock)
    sinks.publishers.append(FundingSink(client, prefix, lambda: daemon.cache.frames))
    sinks.feed = AlertFeed(
        client,
        prefix,
        [pipeline, *pipelines],
        clock=lambda: clock.now().to_pydatetime(warn=False),
        lookback=timedelta(hours=settings.daemon.max_catchup_hours),
        chart=daemon.chart,
    )
    bot = None
    channel_bot = getattr(channel, "bot", None)  # the Telegram channel's Bot; the console has none
    if commands and channel_bot is not None:
        from riskd.telegram.bot import CommandBot
        from riskd.telegram.status import RedisStatusSource

        now = lambda: clock.now().to_pydatetime(warn=False)  # noqa: E731 - the one clock, as a callable
        source = RedisStatusSource(client, prefix, outbox=pipeline, chart_frame=daemon.chart_frame, clock=now)
        bot = CommandBot(channel_bot, settings.telegram, source, pipeline, links=links, clock=now)
    rt = Runtime(daemon, client, url, metrics, server, pipeline, channel, bot, embedded, extra=pipelines)
    rt.escalation = EscalationLoop(pipeline, lease)
    try:
        yield rt
    finally:
        await _shutdown(rt, sources.values())


def _webhooks(
    settings: Settings, client: aioredis.Redis, clock: Clock, metrics: Metrics
) -> tuple[list[Any], list[Any]]:
    """The webhook snapshot sink and alert pipeline, when ``webhook.urls`` is set (else none)."""
    hooks = settings.webhook
    if not hooks.urls or hooks.secret is None:
        return [], []
    from riskd.sinks.alerting import AlertPipeline
    from riskd.sinks.webhook import WebhookChannel, WebhookSink

    urls = [str(u) for u in hooks.urls]
    secret = hooks.secret.get_secret_value().encode()
    sink = WebhookSink(urls, secret, timeout_s=hooks.timeout_s, attempts=hooks.attempts,
                       initial_backoff_s=hooks.initial_backoff_s)  # fmt: skip
    channel = WebhookChannel(urls, secret, timeout_s=hooks.timeout_s)
    pipeline = AlertPipeline.from_settings(
        client, channel, settings,
        on_sent=lambda ch, sev: metrics.alerts_sent.labels(ch, sev).inc(),
        on_suppressed=lambda reason: metrics.alerts_suppressed.labels(reason).inc(),
        clock=lambda: clock.now().timestamp(),
        key_prefix=f"{settings.redis.key_prefix}:webhook",
    )  # fmt: skip
    return [sink], [pipeline]


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
    for extra in rt.extra:
        await _step(f"alert delivery ({extra.channel.name})", extra.stop(grace_s=2), 3.0)
        await _step(f"alert channel ({extra.channel.name})", extra.channel.aclose(), 3.0)
    for sink in rt.daemon.sinks.publishers:
        if hasattr(sink, "aclose"):
            await _step(f"sink {sink.name}", sink.aclose(), 3.0)
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
                faulthandler.dump_traceback_later(deadline_s, exit=True, file=sys.__stderr__ or sys.stderr)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)


async def drain_outbox(pipeline: Any, timeout_s: float) -> None:
    """Deliver what the outbox holds (``riskd once``, demo) for at most ``timeout_s``; a Redis that
    stopped answering ends the wait (what is queued stays queued for the next run)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        try:
            if await pipeline.outbox_size() == 0:
                return
        except RedisError as err:
            log.warning("alert outbox not drained (redis): %s", err)
            return
        await asyncio.sleep(0.1)


async def redis_answers(client: aioredis.Redis, url: str, timeout_s: float) -> str | None:
    """None when Redis answers a PING within ``timeout_s``; else one line naming the URL (password
    redacted) and the error, for the start-up check."""
    try:
        await asyncio.wait_for(client.ping(), timeout_s)
    except (RedisError, OSError, TimeoutError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        return f"redis at {redact_url(url)} did not answer: {reason}"
    return None


async def run(settings: Settings, *, once: bool, clock: Clock | None = None,
              stop: asyncio.Event | None = None, ready: Callable[[Runtime], None] | None = None) -> int:  # fmt: skip
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
            from riskd.streams.orchestrator import MinuteStreams

            streams = MinuteStreams(settings, client=rt.client, pipeline=rt.pipeline, clock=d.clock,
                                    store=d.store, metrics=rt.metrics)  # fmt: skip
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
