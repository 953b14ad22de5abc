"""Wiring: Settings in, a running daemon out. ``riskd run`` and ``riskd once`` live here.

Everything that touches the world is built here and handed to the Daemon: the Redis client (the
configured one, one answering on localhost:6379, or an embedded redis-server we start), the venue
sources, the metrics server, the alert pipeline and the Telegram command bot. SIGTERM/SIGINT set a
stop event; every task winds down and the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from riskd.alerting.escalation import EscalationLoop
from riskd.alerting.feed import AlertFeed
from riskd.alerting.receipts import Receipts
from riskd.clock import Clock, WallClock
from riskd.config import Settings, redact_url, source_of
from riskd.config.check import check_listen
from riskd.contract.keys import Keys
from riskd.daemon.cycle import Daemon, Sinks
from riskd.daemon.embedded import RedisServer, answers
from riskd.daemon.lease import LeaderLease, default_instance_id
from riskd.daemon.shutdown import shutdown
from riskd.daemon.webhooks import legacy_webhook_outbox, webhooks
from riskd.errors import Unreachable
from riskd.http.history import RedisHistory
from riskd.http.server import MetricsServer
from riskd.market.sources import make_source
from riskd.sinks.funding import FundingSink
from riskd.sinks.metrics import Metrics
from riskd.sinks.redis import RedisSink, client_from_settings
from riskd.sources import VENUES, VenueSource
from riskd.store import HistoryStore

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
    _check_port(settings, metrics_port)
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
    server = await _server(settings, metrics, client, metrics_port)
    sources = _sources(settings, metrics, clock) if with_sources else {}
    rt = _assemble(settings, clock, client, url, metrics, server, sources, channel, embedded, commands)
    try:
        yield rt
    finally:
        await shutdown(rt, sources.values())


def _check_port(settings: Settings, metrics_port: int | None) -> None:
    """A metrics port already taken: exit 2 with one line, before anything starts."""
    if not settings.metrics.enabled:
        return
    port = metrics_port if metrics_port is not None else settings.metrics.port
    source = "--metrics-port" if metrics_port is not None else source_of(settings, "metrics", "port")
    check_listen(
        settings.metrics.host, port, host_source=source_of(settings, "metrics", "host"), port_source=source
    )


async def _server(
    settings: Settings, metrics: Metrics, client: aioredis.Redis, metrics_port: int | None
) -> MetricsServer | None:
    """The HTTP server on the metrics port (None when metrics are off)."""
    if not settings.metrics.enabled:
        return None
    port = settings.metrics.port if metrics_port is None else metrics_port
    return await MetricsServer(
        metrics,
        settings.metrics.host,
        port,
        settings=settings.metrics,
        grace_s=settings.daemon.grace_s,
        history=RedisHistory(client, settings.redis.key_prefix),
        fail_safe=settings.trading.fail_safe,
    ).start()


def _sources(settings: Settings, metrics: Metrics, clock: Clock) -> dict[str, VenueSource]:
    """One adapter per enabled venue, its request counters declared at 0."""
    sources = {}
    for venue in settings.venues.enabled():
        sources[venue] = make_source(venue, settings, clock=clock.now, hook=metrics.request_hook)
        metrics.declare_endpoints(venue, [*VENUES[venue].endpoints, "time"])  # time: the clock-skew reading
    return sources


def _assemble(
    settings: Settings,
    clock: Clock,
    client: aioredis.Redis,
    url: str,
    metrics: Metrics,
    server: MetricsServer | None,
    sources: dict[str, VenueSource],
    channel: Any | None,
    embedded: RedisServer | None,
    commands: bool,
) -> Runtime:
    """The daemon, its sinks, the alert pipelines and feed, and the command bot, wired to one another."""
    from riskd.alerting.pipeline import AlertPipeline
    from riskd.telegram.channel import build_channel
    from riskd.telegram.format import Links

    links = Links.from_settings(settings)
    channel = channel or build_channel(settings.telegram, links)
    prefix = settings.redis.key_prefix
    lease = LeaderLease(
        client,
        Keys(prefix).leader,
        settings.daemon.instance_id or default_instance_id(),
        settings.daemon.lease_ttl_s,
        on_fenced=lambda kind: metrics.fenced_writes.labels(kind).inc(),
    )
    fence = lease.fence
    receipts_path, record_path = local_records(settings)
    receipts = Receipts(receipts_path, keep_s=30 * 86400)
    hooks = {**_counting(metrics, clock), "fence": fence, "receipts": receipts}
    pipeline = AlertPipeline.from_settings(client, channel, settings, **hooks)
    metrics.state.outbox_size = lambda: pipeline.stats.outbox_size
    publishers, pipelines = webhooks(settings, client, hooks)
    spool = settings.data_dir / "state" / "redis-spool.jsonl"
    sinks = Sinks(
        metrics=metrics,
        redis=RedisSink(
            client,
            settings.redis,
            spool=spool,
            fence=fence,
            record=record_path,
            record_hours=settings.daemon.max_catchup_hours + 24,
        ),
        publishers=publishers,
        alerts=pipeline,
        lease=lease,
        charts=getattr(channel, "bot", None) is not None,  # Telegram shows the chart; a console cannot
    )
    daemon = Daemon(
        settings, sources=sources, store=HistoryStore(settings.store_dir), sinks=sinks, clock=clock
    )
    sinks.publishers.append(FundingSink(client, prefix, lambda: daemon.cache.frames, fence=fence))
    now = lambda: clock.now().to_pydatetime(warn=False)  # noqa: E731  (the one clock, as a callable)
    sinks.feed = AlertFeed(
        client,
        prefix,
        [pipeline, *pipelines],
        clock=now,
        lookback=timedelta(hours=settings.daemon.max_catchup_hours),
        chart=daemon.chart,
        fence=fence,
    )
    bot = _command_bot(settings, channel, client, pipeline, daemon, links, now) if commands else None
    extra = [*pipelines, *legacy_webhook_outbox(settings, client, hooks)]
    rt = Runtime(daemon, client, url, metrics, server, pipeline, channel, bot, embedded, extra=extra)
    rt.escalation = EscalationLoop(pipeline, lease)
    return rt


def local_records(settings: Settings) -> tuple[Path, Path]:
    """The replica's local records of what it delivered and what Redis took (alert receipts, published
    hours), which repair a Redis restored from an older snapshot. One pair per key prefix: a replay or a
    demo under its own prefix keeps its own, and ``riskd replay --fresh`` deletes its prefix's with its
    keys (else a fresh replay would be taken for a Redis that forgot)."""
    state = settings.data_dir / "state"
    ns = re.sub(r"[^A-Za-z0-9_.-]", "_", settings.redis.key_prefix)
    return state / f"alert-receipts.{ns}.json", state / f"redis-published.{ns}.jsonl"


def _counting(metrics: Metrics, clock: Clock) -> dict[str, Any]:
    """A pipeline's hooks into the metrics and the one clock."""
    return {
        "on_sent": lambda ch, sev: metrics.alerts_sent.labels(ch, sev).inc(),
        "on_suppressed": lambda reason: metrics.alerts_suppressed.labels(reason).inc(),
        "on_unconfirmed": lambda ch, sev: metrics.alerts_unconfirmed.labels(ch, sev).inc(),
        "clock": lambda: clock.now().timestamp(),
    }


def _command_bot(
    settings: Settings,
    channel: Any,
    client: aioredis.Redis,
    pipeline: Any,
    daemon: Daemon,
    links: Any,
    now: Any,
) -> Any:
    """The Telegram command bot, when the channel is Telegram (the console has no Bot)."""
    channel_bot = getattr(channel, "bot", None)
    if channel_bot is None:
        return None
    from riskd.telegram.bot import CommandBot
    from riskd.telegram.status import RedisStatusSource

    source = RedisStatusSource(
        client, settings.redis.key_prefix, outbox=pipeline, chart_frame=daemon.chart_frame, clock=now
    )
    return CommandBot(channel_bot, settings.telegram, source, pipeline, links=links, clock=now)


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


async def run_delivery(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    with_bot: bool = False,
    escalation_interval_s: float = 5.0,
    **pipeline_kw: float,
) -> None:
    """Deliver the alert outbox of ``settings`` until stopped, escalating what nobody acknowledged; with
    ``with_bot`` also answer commands and buttons: a delivery-only process (one replica: no lease), built
    from the same parts as :func:`runtime` (the tests kill it mid-send to prove exactly-once delivery)."""
    from riskd.alerting.pipeline import AlertPipeline
    from riskd.telegram.bot import CommandBot
    from riskd.telegram.channel import TelegramChannel, build_channel
    from riskd.telegram.format import Links
    from riskd.telegram.status import RedisStatusSource

    stop = stop or asyncio.Event()
    url, embedded = resolve_redis(settings)
    redis = client_from_settings(settings.redis, url)
    links = Links.from_settings(settings)
    channel = build_channel(settings.telegram, links)
    pipeline = AlertPipeline.from_settings(redis, channel, settings, **pipeline_kw)
    bot = None
    if with_bot and isinstance(channel, TelegramChannel):
        source = RedisStatusSource(redis, settings.redis.key_prefix, outbox=pipeline)
        bot = CommandBot(channel.bot, settings.telegram, source, pipeline, links=links, poll_timeout_s=1)
        bot.start()
    escalation = asyncio.create_task(
        EscalationLoop(pipeline, None, interval_s=escalation_interval_s).run(stop)
    )
    try:
        await pipeline.run(stop)
    finally:
        stop.set()
        await escalation
        if bot is not None:
            await bot.stop()
        await channel.aclose()
        await redis.aclose()
        if embedded is not None:
            embedded.stop()


def delivery_main(*, with_bot: bool = False, escalation_interval_s: float = 5.0, **pipeline_kw: Any) -> None:
    """Entry point of a standalone delivery process (settings from the environment, as ``riskd``)."""
    from riskd.config import load_settings
    from riskd.logs import setup_logging

    settings = load_settings()
    setup_logging(settings.log_level)
    asyncio.run(
        run_delivery(settings, with_bot=with_bot, escalation_interval_s=escalation_interval_s, **pipeline_kw)
    )
