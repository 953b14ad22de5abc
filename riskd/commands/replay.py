"""``riskd replay``: stored history through the daemon's publish stage, as fast as it goes.

The panel comes from the store (``store_panel``, the input every path shares) and the core runs once
over it with the batch path — which the test suite proves equal, hour by hour, to the live ``step``
the daemon uses — then every hour goes through ``Daemon.publish`` exactly as a live cycle's would:
Redis key, history stream, events, metrics, alerts. The clock is simulated: each hour is "computed"
at its close plus the configured grace, and the clock does not move on while that hour's alerts are
still being delivered, so an alert is late only when its delivery really was held up.

A replay is not the market now, so it stays out of the production keys unless told otherwise: it
writes under ``riskd-replay:v1`` (the configured prefix's first part + ``-replay``) (alert de-duplication included; wiped at the start so an
earlier replay's fingerprints do not swallow this one's alerts), ``--prefix P`` picks another
namespace and ``--production-keys`` the configured one. Its snapshots say ``live: false``. It holds
the leader lease of its namespace and renews it for as long as it runs, so ``riskd_leader`` and
``/healthz`` say what Redis holds.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from riskd.alerting.channel import Channel
from riskd.clock import SimClock
from riskd.commands._args import hour_arg, port_arg
from riskd.config import Settings
from riskd.config.check import key_prefix as check_key_prefix
from riskd.contract.models import Snapshot
from riskd.contract.snapshot import to_snapshot
from riskd.core import Panel, compute_fragility
from riskd.core.schedule import HOUR
from riskd.daemon.shutdown import install_signal_handlers
from riskd.daemon.wiring import Runtime, drain_outbox, local_records, runtime
from riskd.errors import ConfigError, DataError
from riskd.market import assess_row, store_panel
from riskd.store import HistoryStore
from riskd.store.model_file import load_crash_model

log = logging.getLogger("riskd.commands.replay")


def add_parser(sub: Any) -> None:
    """``riskd replay``'s arguments."""
    rp = sub.add_parser("replay", help="stored history through compute and publish on a simulated clock")
    rp.add_argument("--from", dest="start", help="first hour (open time, UTC ISO); default: the first stored")
    rp.add_argument("--to", dest="end", help="last hour (open time, UTC ISO); default: the last stored")
    rp.add_argument(
        "--alerts",
        choices=["configured", "console", "none"],
        default="configured",
        help="alert sink: the configured one (Telegram or console), the console, or none",
    )
    rp.add_argument("--metrics-port", type=port_arg, help="override metrics.port (0: any free port)")
    keys = rp.add_mutually_exclusive_group()
    keys.add_argument(
        "--prefix",
        help="Redis key prefix to write under (default: redis.key_prefix's first part "
        "+ '-replay', riskd:v1 -> riskd-replay:v1, cleared at the start; the production keys are "
        "never touched)",
    )
    keys.add_argument(
        "--production-keys",
        action="store_true",
        help="write into the configured redis.key_prefix, as the live daemon does (its consumers "
        "will read the replay; snapshots say live: false)",
    )
    rp.add_argument(
        "--hold", action="store_true", help="keep serving metrics after the last hour until SIGTERM"
    )


def replay_prefix(prefix: str) -> str:
    """A replay's own namespace beside the configured one, never inside it (``riskd:v1`` ->
    ``riskd-replay:v1``): a consumer scanning ``riskd:v1:*`` never meets a replay's keys."""
    head, sep, tail = prefix.partition(":")
    return f"{head}-replay{sep}{tail}"


DELIVERY_WAIT_S = 30.0
"""How long the simulated clock waits for one hour's alerts to be delivered before moving on."""


@dataclass
class ReplayResult:
    """What a replay published."""

    snapshots: list[Snapshot]
    seconds: float

    @property
    def hours_per_second(self) -> float:
        """Replay speed, hours per wall-clock second."""
        return len(self.snapshots) / self.seconds if self.seconds else float("inf")


def replay_range(
    start: pd.Timestamp | None, end: pd.Timestamp | None, first: pd.Timestamp, last: pd.Timestamp
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The hours to replay: [start, end] clipped to the stored [first, last]; ConfigError naming the flag
    when the range is inverted or has no stored hour in it."""
    shown = f"stored: {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} UTC"
    if start is not None and end is not None and start > end:
        raise ConfigError(
            f"invalid argument --from: {start:%Y-%m-%d %H:%M} is after --to {end:%Y-%m-%d %H:%M}"
        )
    if start is not None and start > last:
        raise ConfigError(
            f"invalid argument --from: {start:%Y-%m-%d %H:%M} is after the last stored hour ({shown})"
        )
    if end is not None and end < first:
        raise ConfigError(
            f"invalid argument --to: {end:%Y-%m-%d %H:%M} is before the first stored hour ({shown})"
        )
    return max(start or first, first), min(end or last, last)


def replay_settings(settings: Settings, prefix: str | None, *, production_keys: bool) -> Settings:
    """The settings a replay runs with: its own key namespace unless ``production_keys``."""
    if production_keys:
        return settings
    chosen = prefix or replay_prefix(settings.redis.key_prefix)
    redis = settings.redis.model_copy(update={"key_prefix": chosen})
    return settings.model_copy(update={"redis": redis})


async def replay(
    settings: Settings,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    *,
    channel: object | None = None,
    metrics_port: int | None = None,
    hold: asyncio.Event | None = None,
    on_snapshot: Callable[[Snapshot], None] | None = None,
    fresh: bool = False,
) -> ReplayResult:
    """Publish every stored hour in [start, end] (open times) under ``settings.redis.key_prefix``.

    With ``fresh`` the prefix's keys are deleted first (only for a namespace the replay owns); with
    ``hold``, keep serving (and renewing the lease) until it is set.
    """
    venues = settings.venues.enabled()
    panel, frame, i0 = _batch(settings, venues, start, end)
    grace = pd.Timedelta(seconds=settings.daemon.grace_s)
    clock = SimClock(panel.index[i0] + HOUR + grace)
    if fresh:  # the namespace starts over: so do this replica's records of it (they would repair it back)
        for path in local_records(settings):
            path.unlink(missing_ok=True)
    async with runtime(
        settings, clock=clock, channel=channel, metrics_port=metrics_port, with_sources=False, commands=False
    ) as rt:
        d = rt.daemon
        prefix = settings.redis.key_prefix
        if fresh:
            await _forget(rt.client, prefix)
        await rt.start_publishing()
        lease_stop = asyncio.Event()
        rt.tasks.append(asyncio.create_task(d.lease_loop(lease_stop), name="riskd-replay-lease"))
        if not d.sinks.lease.is_leader:  # type: ignore[union-attr]
            log.warning("another riskd holds the lease on %s: this replay publishes nothing to Redis", prefix)
        if on_snapshot is not None:
            d.sinks.on_snapshot.append(on_snapshot)
        t0 = time.perf_counter()
        published = await _publish_hours(rt, settings, clock, panel, frame, i0)
        seconds = time.perf_counter() - t0
        await drain_outbox(rt.pipeline, 10.0)
        rate = len(published) / max(seconds, 1e-9)
        log.info("replayed %d hours in %.2fs (%.0f hours/s) under %s", len(published), seconds, rate, prefix)
        if hold is not None:
            await hold.wait()
        lease_stop.set()
    return ReplayResult(published, seconds)


async def _publish_hours(
    rt: Runtime, settings: Settings, clock: SimClock, panel: Panel, frame: pd.DataFrame, i0: int
) -> list[Snapshot]:
    """Each hour from row ``i0`` through the daemon's publish stage as the clock reaches its close + grace:
    the snapshot, its alerts, and their delivery before the clock moves on."""
    d = rt.daemon
    venues = settings.venues.enabled()
    grace = pd.Timedelta(seconds=settings.daemon.grace_s)
    records = frame.to_dict("records")
    published: list[Snapshot] = []
    for i in range(i0, len(panel.index)):
        row_panel = panel.rows(i, i + 1)
        hour = panel.index[i]
        clock.set(hour + HOUR + grace)
        now = clock.now().to_pydatetime(warn=False)
        quality = assess_row(row_panel, venues, settings.fragility)
        snap = to_snapshot(
            hour, records[i], computed_at=now, quality=quality, live=False, trading=settings.trading.table()
        )
        d.remember_chart(hour, row_panel, records[i])
        await d.publish(snap)
        await d.derive_alerts()
        await _deliver_before_the_clock_moves(rt.pipeline, DELIVERY_WAIT_S)
        published.append(snap)
    return published


def _batch(
    settings: Settings, venues: list[str], start: pd.Timestamp | None, end: pd.Timestamp | None
) -> tuple[Panel, pd.DataFrame, int]:
    """The batch path over the stored history through ``end``: the panel, the core's frame, and the row of
    ``start`` (the replay publishes from there). DataError / ConfigError name what is missing."""
    store = HistoryStore(settings.store_dir)
    first = min((t for v in venues[:1] if (t := store.first_ts("ohlcv", v, "BTC")) is not None), default=None)
    last = max((t for v in venues[:1] if (t := store.last_ts("ohlcv", v, "BTC")) is not None), default=None)
    if first is None or last is None:
        raise DataError(f"no BTC candles in the store at {settings.store_dir}: import or backfill first")
    start, end = replay_range(start, end, first.floor("h"), last.floor("h"))
    panel = store_panel(store, settings.fragility, settings.universe.symbols, venues, end)
    if panel is None:
        raise DataError(f"no BTC candles before {end} in the store at {settings.store_dir}")
    i0 = int(panel.index.searchsorted(start))
    if i0 >= len(panel.index):
        raise ConfigError(f"invalid argument --from: no stored hour from {start:%Y-%m-%d %H:%M} on")
    return panel, compute_fragility(panel, settings.fragility, load_crash_model(settings)), i0


async def _deliver_before_the_clock_moves(pipeline: Any, timeout_s: float) -> None:
    """Wait (wall clock, at most ``timeout_s``) until the outbox is empty, so this hour's alerts go out at
    this hour's simulated time: racing ahead would stamp them "[DELAYED …]" although nothing held them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if await pipeline.outbox_size() == 0:
            return
        await asyncio.sleep(0.002)  # the outbox lives in Redis: there is no event to wait on


async def _forget(client: Any, prefix: str) -> None:
    """Delete a replay namespace's keys (an earlier replay's alert fingerprints would suppress this one's)."""
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
    for i in range(0, len(keys), 1000):
        await client.delete(*keys[i : i + 1000])
    if keys:
        log.info("replay: cleared %d keys of an earlier replay under %s", len(keys), prefix)


def cli_replay(settings: Settings, args: argparse.Namespace) -> int:
    """``riskd replay --from … --to …``: exit 0 when every hour was published."""
    start, end = hour_arg(args.start, "--from"), hour_arg(args.end, "--to")
    if start is not None and end is not None and start > end:
        raise ConfigError(
            f"invalid argument --from: {start:%Y-%m-%d %H:%M} is after --to {end:%Y-%m-%d %H:%M}"
        )
    if args.prefix is not None:
        try:
            check_key_prefix(args.prefix)
        except ValueError as err:
            raise ConfigError(f"invalid argument --prefix: {err}") from None
    cfg = replay_settings(settings, args.prefix, production_keys=args.production_keys)
    channel: Channel | None = None
    if args.alerts == "none":
        channel = _NullChannel()
    elif args.alerts == "console":
        from riskd.telegram.channel import ConsoleChannel

        channel = ConsoleChannel()

    async def main() -> ReplayResult:
        stop = asyncio.Event()
        install_signal_handlers(stop, settings.daemon.shutdown_deadline_s)
        return await replay(
            cfg,
            start,
            end,
            channel=channel,
            metrics_port=args.metrics_port,
            hold=stop if args.hold else None,
            fresh=not args.production_keys and not args.prefix,
        )

    result = asyncio.run(main())
    print(
        f"replayed {len(result.snapshots)} hours in {result.seconds:.2f}s ({result.hours_per_second:,.0f} hours/s) "
        f"under Redis prefix {cfg.redis.key_prefix}"
    )
    return 0


class _NullChannel:
    """Alerts are derived, de-duplicated and counted, but delivered nowhere (``--alerts none``)."""

    name = "console"

    def __init__(self) -> None:
        self.destinations = ["none"]

    max_per_minute: int | None = None

    async def send(
        self, dest: str, text: str, *, silent: bool, chart: bytes | None, reply_to: str | None = None
    ) -> str:
        return "0"

    async def aclose(self) -> None:
        return None
