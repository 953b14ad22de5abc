"""``riskd replay``: stored history through the daemon's publish stage, as fast as it goes.

The panel comes from the store (``store_panel``, the input every path shares) and the core runs once
over it with the batch path — which the test suite proves equal, hour by hour, to the live ``step``
the daemon uses — then every hour goes through ``Daemon.publish`` exactly as a live cycle's would:
Redis key, history stream, events, metrics, alerts. The clock is simulated: each hour is "computed"
at its close plus the configured grace.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from riskd.app import drain_outbox, install_signal_handlers, runtime
from riskd.cli import hour_arg
from riskd.clock import SimClock
from riskd.core import compute_fragility
from riskd.core.schedule import HOUR
from riskd.errors import ConfigError, DataError
from riskd.live import assess_row, store_panel
from riskd.models import Snapshot
from riskd.settings import Settings
from riskd.snapshot import to_snapshot
from riskd.store import HistoryStore

log = logging.getLogger("riskd.replay")


@dataclass
class ReplayResult:
    """What a replay published."""

    snapshots: list[Snapshot]
    seconds: float

    @property
    def hours_per_second(self) -> float:
        """Replay speed, hours per wall-clock second."""
        return len(self.snapshots) / self.seconds if self.seconds else float("inf")


async def replay(
    settings: Settings,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    *,
    channel: object | None = None,
    metrics_port: int | None = None,
    hold: asyncio.Event | None = None,
    on_snapshot: Callable[[Snapshot], None] | None = None,
) -> ReplayResult:
    """Publish every stored hour in [start, end] (open times); with ``hold``, keep serving until it is set."""
    store = HistoryStore(settings.store_dir)
    venues = settings.venues.enabled()
    last = end or max((store.last_ts("ohlcv", v, "BTC") for v in venues[:1]), default=None)
    if last is None:
        raise DataError(f"no BTC candles in the store at {settings.store_dir}: import or backfill first")
    panel = store_panel(store, settings.fragility, settings.universe.symbols, venues, last)
    if panel is None:
        raise DataError(f"no BTC candles before {last} in the store at {settings.store_dir}")
    start = max(start or panel.index[0], panel.index[0])
    i0 = int(panel.index.searchsorted(start))
    p = settings.fragility
    frame = compute_fragility(panel, p)
    grace = pd.Timedelta(seconds=settings.daemon.grace_s)
    clock = SimClock(panel.index[i0] + HOUR + grace)
    published: list[Snapshot] = []
    async with runtime(settings, clock=clock, channel=channel, metrics_port=metrics_port,
                       with_sources=False, commands=False) as rt:  # fmt: skip
        d = rt.daemon
        await rt.start_publishing()
        if on_snapshot is not None:
            d.sinks.on_snapshot.append(on_snapshot)
        records = frame.to_dict("records")
        t0 = time.perf_counter()
        for i in range(i0, len(panel.index)):
            row_panel = panel.rows(i, i + 1)
            hour = panel.index[i]
            clock.set(hour + HOUR + grace)
            now = clock.now().to_pydatetime(warn=False)
            quality = assess_row(row_panel, venues, p)
            snap = to_snapshot(hour, records[i], computed_at=now, quality=quality, live=True)
            d._remember_chart(hour, row_panel, records[i])
            await d.publish(snap, now)
            published.append(snap)
        seconds = time.perf_counter() - t0
        await drain_outbox(rt.pipeline, 10.0)
        log.info(
            "replayed %d hours in %.2fs (%.0f hours/s)",
            len(published),
            seconds,
            len(published) / max(seconds, 1e-9),
        )
        if hold is not None:
            await hold.wait()
    return ReplayResult(published, seconds)


def cli_replay(settings: Settings, args: argparse.Namespace) -> int:
    """``riskd replay --from … --to …``: exit 0 when every hour was published."""
    start, end = hour_arg(args.start, "--from"), hour_arg(args.end, "--to")
    if start is not None and end is not None and start > end:
        raise ConfigError("invalid argument --from: after --to")
    channel = None
    if args.alerts == "none":
        channel = _NullChannel()
    elif args.alerts == "console":
        from riskd.sinks.telegram import ConsoleChannel

        channel = ConsoleChannel()

    async def main() -> ReplayResult:
        stop = asyncio.Event()
        install_signal_handlers(stop, settings.daemon.shutdown_deadline_s)
        return await replay(settings, start, end, channel=channel, metrics_port=args.metrics_port,
                            hold=stop if args.hold else None)  # fmt: skip

    result = asyncio.run(main())
    print(
        f"replayed {len(result.snapshots)} hours in {result.seconds:.2f}s ({result.hours_per_second:,.0f} hours/s)"
    )
    return 0


class _NullChannel:
    """Alerts are derived, de-duplicated and counted, but delivered nowhere (``--alerts none``)."""

    name = "console"

    def __init__(self) -> None:
        self.destinations = ["none"]

    max_per_minute: int | None = None

    async def send(self, dest: str, text: str, *, silent: bool, chart: bytes | None) -> str:
        return "0"

    async def aclose(self) -> None:
        return None
