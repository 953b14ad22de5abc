"""The hourly cycle: wait -> fetch -> compute -> publish -> alert -> store. ``run_once`` for tests and
``riskd once``; the loop around it is :mod:`riskd.daemon.loop`.

The history store is written last: the key is what bots wait for, and the rows it was computed from
are already in memory; a store write that fails is kept and retried, and never holds up a cycle.

Every replica fetches and computes (a standby stays warm); only the holder of the Redis lease
publishes and alerts. Alerts are derived from the published history stream by a cursor in Redis
(:mod:`riskd.alerting.feed`), never from the cycle's memory, so whoever leads after a crash, a
restart or a Redis outage raises every hour's alerts exactly once. Late data restates
(:mod:`riskd.daemon.restate`); the history origin is shared (:mod:`riskd.daemon.origin`).

The core's state is saved after each cycle (:mod:`riskd.daemon.book`), so a restart continues exactly
where the last cycle ended; hours missed while down are computed in order and published as late. Each
sink fails alone (:mod:`riskd.daemon.faults`). Disk reads and writes run in threads, off the event loop.

Why this module is just over 400 lines: it is the one orchestrator, the order of a cycle's steps in one
class; each step's substance already lives beside it (book, restate, origin, skew, loop, faults, chart).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from riskd.alerting.feed import AlertFeed
from riskd.clock import Clock
from riskd.config import Settings
from riskd.contract.models import Snapshot
from riskd.contract.snapshot import to_snapshot
from riskd.core import FragilityState, compute_fragility_with_state, step
from riskd.core.liquidations import hourly_market
from riskd.core.schedule import HOUR
from riskd.daemon import loop
from riskd.daemon.book import StateBook
from riskd.daemon.chart import ChartRows
from riskd.daemon.faults import Faults, kind_of
from riskd.daemon.lease import LeaderLease
from riskd.daemon.origin import Origin
from riskd.daemon.restate import Minutes, late_hour, restate
from riskd.daemon.skew import ClockSkew
from riskd.errors import RiskdError, SinkError
from riskd.market import (
    FetchReport,
    MarketCache,
    assess,
    fetch_recent,
    liquidation_minutes,
    persist,
    store_panel,
)
from riskd.sinks.base import HoldingSink, HookSink, SnapshotSink
from riskd.sinks.metrics import Metrics
from riskd.sinks.redis import RedisSink
from riskd.sources import VenueSource
from riskd.store import HistoryStore
from riskd.store.model_file import load_crash_model

log = logging.getLogger("riskd.daemon")


@dataclass
class Sinks:
    """Where snapshots go; each may be absent (tests, replay) and each may fail alone.

    ``publishers`` are further :class:`~riskd.sinks.base.SnapshotSink` s (the webhook, or any new one):
    one more sink is one more entry here, nothing else in the daemon changes."""

    metrics: Metrics
    redis: RedisSink | None = None
    publishers: list[SnapshotSink] = field(default_factory=list)
    alerts: Any | None = None  # the alert pipeline (riskd.alerting.pipeline.AlertPipeline): duck-typed
    feed: AlertFeed | None = None  # derives alerts from the history stream (leader only)
    lease: LeaderLease | None = None
    on_snapshot: list[Any] = field(default_factory=list)  # callables(snapshot), e.g. the demo's printer
    charts: bool = True  # draw the PNG chart for alerts (only channels that can show one want it)


class Daemon:
    """One riskd replica: its data, its memory (the book) and its sinks."""

    def __init__(
        self,
        settings: Settings,
        *,
        sources: Mapping[str, VenueSource],
        store: HistoryStore,
        sinks: Sinks,
        clock: Clock,
    ) -> None:
        d = settings.daemon
        self.settings = settings
        self.params = settings.fragility
        self.sources = dict(sources)
        self.venues = list(self.sources)
        self.store = store
        self.sinks = sinks
        self.clock = clock
        self.cache = MarketCache(settings.universe.symbols, self.params, keep_hours=d.max_catchup_hours + 48)
        self.book = StateBook(
            settings.data_dir / "state" / "fragility.json",
            self.params,
            keep_states=d.restate_hours + 1,
            keep_published_hours=d.max_catchup_hours + 24,
        )
        self.origins = Origin(
            self.book, store, self.params, settings.universe.symbols, sinks.redis, sinks.metrics.state
        )
        self.faults = Faults(sinks.metrics)
        self.skew = ClockSkew(self.sources, clock, sinks.metrics, d.max_clock_skew_s)  # riskd.daemon.skew
        self.trading = settings.trading.table()  # the trading-state table every snapshot carries
        # The calibrated crash model (riskd calibrate), read once at start: live and batch use the same
        # one, so a new model file takes effect at the next restart. None: crash_prob_24h is null.
        self.crash_model = load_crash_model(settings)
        self.charts = ChartRows(settings.alerts.chart_hours)
        self.timings: dict[str, float] = {}  # seconds per stage of the last cycle (benchmarks, logs)
        self.unsaved: list[tuple[str, str, str, pd.DataFrame]] = []  # fetched, not yet in the store

    # ---- what the book holds, by its old names -------------------------------------------------------
    @property
    def state(self) -> FragilityState | None:
        """The core state after the last computed hour."""
        return self.book.state

    @property
    def origin(self) -> pd.Timestamp | None:
        """The hour the expanding statistics start from (shared by the replicas)."""
        return self.book.origin

    @property
    def last(self) -> Snapshot | None:
        """The newest snapshot this replica computed."""
        return self.book.last

    @property
    def state_path(self) -> Path:
        """Where the book is saved."""
        return self.book.path

    # ---- start-up and saving ---------------------------------------------------------------------------
    def load(self) -> None:
        """Restore the saved book; fill the cache from the store. Blocking: run it in a thread."""
        self.book.load()
        self.cache.load(self.store, self.venues, self.clock.now())

    async def _save(self) -> None:
        """Save the book (fsynced, in a thread), and the Redis sink's record of what Redis took (beside it,
        in the state dir: one stage). A disk fault is contained: logged once, counted, retried."""
        try:
            if self.sinks.redis is not None:
                await self.sinks.redis.save_record()
            if self.book.state is not None:
                await asyncio.to_thread(self.book.save, self.book.body())
        except OSError as err:
            self.faults.fault(
                "state", f"state files in {self.book.path.parent} not saved: {err}", kind_of(err)
            )
        else:
            self.faults.recovered("state")

    async def rebuild(self, through: pd.Timestamp) -> FragilityState | None:
        """The core state after hour ``through`` by the batch path over the store (cold start, long
        outage, a restatement after a restart); what was fetched is stored first."""
        await self._persist()
        return await asyncio.to_thread(self._rebuild, through)

    def _rebuild(self, through: pd.Timestamp) -> FragilityState | None:
        panel = store_panel(
            self.store,
            self.params,
            self.settings.universe.symbols,
            self.venues,
            through,
            start=self.book.origin,
        )
        if panel is None:
            return None
        _, state = compute_fragility_with_state(panel, self.params, crash_model=self.crash_model)
        log.info("core state rebuilt from the store through %s (%d hours)", through, len(panel.index))
        return state

    async def liquidations(self, first: pd.Timestamp, last: pd.Timestamp) -> Minutes:
        """riskd's own liquidation minutes for hours ``first`` .. ``last``, read in a thread (None: off)."""
        return await asyncio.to_thread(liquidation_minutes, self.store, self.params, first, last + HOUR)

    # ---- one cycle -------------------------------------------------------------------------------------
    async def run_once(self) -> list[Snapshot]:
        """Fetch up to the last closed hour, restate what late data changed, compute every hour not yet
        computed, publish them (revisions first, in hour order), derive their alerts, store, save."""
        # the venue's time, after its hour close: a fast local clock never fetches a still-open candle
        now, newest = await self.skew.cycle_time(pd.Timedelta(seconds=self.settings.daemon.grace_s))
        t0 = time.perf_counter()
        report = await self._fetch(newest)
        await self.repair_rollback()  # before computing: a restatement numbers after the repair's revisions
        t_compute = time.perf_counter()
        out = await self._compute_hours(newest, now, report)
        t_publish = time.perf_counter()
        for snap in out:
            await self.publish(snap)
        await self.derive_alerts()
        t_persist = time.perf_counter()
        await self._persist()
        self.timings = {
            "fetch": t_compute - t0,
            "compute": t_publish - t_compute,
            "publish": t_persist - t_publish,
            "persist": time.perf_counter() - t_persist,
        }
        await self._save()
        self._log_cycle(out, newest, time.perf_counter() - t0)
        return out

    async def _fetch(self, newest: pd.Timestamp) -> FetchReport:
        d = self.settings.daemon
        await self.origins.follow()
        origin = await self.origins.settle(newest - pd.Timedelta(hours=d.warmup_hours))
        report = await fetch_recent(
            self.sources,
            self.store,
            self.cache,
            until=newest + HOUR,
            warm_start=origin,
            deadline_s=d.fetch_deadline_s,
            health=self.sinks.metrics.state.venue_health,
        )
        await self.origins.claim_after_fetch(self.cache, origin)
        self._note_fetch(report)
        self.unsaved.extend(report.fetched)
        return report

    async def _compute_hours(
        self, newest: pd.Timestamp, now: pd.Timestamp, report: FetchReport
    ) -> list[Snapshot]:
        """Restatements of late hours first, then every hour not yet computed (a cold start or a long
        outage rebuilds the state from the store first)."""
        d = self.settings.daemon
        first_pub = newest - pd.Timedelta(hours=d.max_catchup_hours - 1)
        last_done = self.book.last_ts
        out: list[Snapshot] = []
        if last_done is not None and last_done >= first_pub - HOUR:
            late = late_hour(
                report, last_done, floor=max(first_pub, newest - pd.Timedelta(hours=d.restate_hours))
            )
            if late is not None:
                out += await restate(self, late, last_done, now, report)
        if last_done is None or last_done < first_pub - HOUR:
            warm_until = newest - HOUR if last_done is None else first_pub - HOUR
            self.book.forget()
            state = await self.rebuild(warm_until)
            if state is not None:
                self.book.keep(warm_until, state)
        pending = list(
            pd.date_range(newest if self.book.last_ts is None else self.book.last_ts + HOUR, newest, freq="h")
        )
        minutes = await self.liquidations(pending[0], pending[-1]) if pending else None
        for hour in pending:
            out.append(self.compute(hour, now, report if hour == newest else None, minutes))
        self.sinks.metrics.success("compute")
        return out

    def compute(
        self, hour: pd.Timestamp, now: pd.Timestamp, report: FetchReport | None, minutes: Minutes
    ) -> Snapshot:
        """Step the core over one hour from the book's state; remember the state after it. ``minutes``:
        the liquidation record of a span holding the hour (read beforehand, in a thread)."""
        panel = self.cache.panel(hour, self.venues)
        if minutes is not None:  # fragility.liquidations.enabled: the hour's record, as store_panel reads it
            panel = replace(panel, liquidations=hourly_market(minutes, panel.index))
        rows, state = step(self.book.state, panel, self.params, crash_model=self.crash_model)
        row = rows.iloc[-1].to_dict()
        late = (now - (hour + HOUR)) > HOUR
        quality = assess(self.cache, hour, self.venues, report)
        snap = to_snapshot(
            hour,
            row,
            computed_at=now.to_pydatetime(warn=False),
            quality=quality,
            live=not late,
            trading=self.trading,
        )
        self.remember_chart(hour, panel, row)
        self.book.keep(hour, state)
        return snap

    async def _persist(self) -> None:
        """Write what was fetched to the history store (in a thread). A failure (disk full, permissions) is
        logged and retried next cycle; it never stops publishing, which runs from the in-memory cache."""
        if not self.unsaved:
            return
        try:
            await asyncio.to_thread(persist, self.store, self.unsaved)
        except (OSError, RiskdError) as err:
            self.faults.fault(
                "store", f"history store: {err}; partition writes kept for the next cycle", kind_of(err)
            )
        else:
            self.faults.recovered("store")

    def _note_fetch(self, report: FetchReport) -> None:
        if not report.failed:
            self.sinks.metrics.success("fetch")
        for (dataset, venue, _), frame in self.cache.frames.items():
            if len(frame) and dataset not in ("spot_ohlcv", "ohlcv_1d"):
                ts = frame.index[-1] + (HOUR if dataset == "ohlcv" else pd.Timedelta(0))
                self.sinks.metrics.observe_data(venue, dataset, ts.timestamp())

    def _log_cycle(self, out: list[Snapshot], newest: pd.Timestamp, duration: float) -> None:
        outcome = "ok" if all(s.data_quality.status == "ok" for s in out) else "degraded"
        self.sinks.metrics.observe_cycle(duration, outcome)
        restated = sum(1 for s in out if s.restated)
        log.info(
            "cycle: %d hour(s) through %s%s in %.3fs (compute %.1f ms)",
            len(out) - restated,
            newest,
            f", {restated} restated" if restated else "",
            duration,
            self.timings["compute"] * 1e3,
        )

    # ---- the alert chart (riskd.daemon.chart) ------------------------------------------------------------
    def remember_chart(self, hour: pd.Timestamp, panel: Any, row: Mapping[str, Any]) -> None:
        """Keep the hour's BTC close and CFI for the alert chart."""
        self.charts.remember(hour, panel, row)

    def chart_frame(self) -> pd.DataFrame:
        """BTC close and CFI of the recent hours, for the alert chart."""
        return self.charts.frame()

    async def chart(self) -> bytes | None:
        """The alert's PNG, or None (no channel shows pictures, or it could not be drawn)."""
        return await self.charts.png() if self.sinks.charts else None

    # ---- publishing --------------------------------------------------------------------------------------
    async def publish(self, snap: Snapshot) -> None:
        """Every sink in turn; leader-only ones only on the leader (a standby lets them hold it). Each sink
        fails alone: logged once per change of error, counted under its name."""
        self.book.note_published(snap)
        leader = await self.is_leader()
        for sink in self._sinks():
            if sink.leader_only and not leader:
                if isinstance(sink, HoldingSink):
                    sink.hold(snap)
                continue
            try:
                await sink.publish(snap)
            except Exception as err:  # the one broad except around a sink (STYLE.md): it fails alone
                self.faults.fault(sink.name, f"sink {sink.name}: {err}")
            else:
                self.faults.recovered(sink.name)

    def _sinks(self) -> list[SnapshotSink]:
        sinks: list[SnapshotSink] = [self.sinks.metrics]
        if self.sinks.redis is not None:
            sinks.append(self.sinks.redis)
        sinks += self.sinks.publishers
        sinks += [HookSink(getattr(h, "__name__", "hook"), h) for h in self.sinks.on_snapshot]
        return sinks

    async def repair_rollback(self) -> None:
        """The leader publishes again what a rolled-back Redis lost (:meth:`RedisSink.repair_rollback`);
        the book takes the new revisions, so a later restatement of those hours numbers after them. Redis
        unreachable: nothing to compare with now; the next check (every lease tick) does it."""
        redis = self.sinks.redis
        if redis is None or not await self.is_leader():
            return
        try:
            again = await redis.repair_rollback()
        except SinkError as err:
            log.debug("rollback check skipped: %s", err)
            return
        for snap in again:
            self.book.note_published(snap)
        if again:
            self.sinks.metrics.redis_rollback_hours.inc(len(again))

    async def derive_alerts(self) -> None:
        """The leader raises the alerts of every published hour it has not derived yet (from the stream)."""
        feed = self.sinks.feed
        if feed is None or not await self.is_leader():
            return
        try:
            await feed.run()
            self.faults.recovered("alerts")
        except Exception as err:  # the one broad except around a sink: alerts retry from the cursor
            self.faults.fault(
                "alerts", f"alerts not derived yet (they will be, from the stream cursor): {err}"
            )

    async def is_leader(self) -> bool:
        """Leader, or Redis unreachable (leadership unknown): then publish to the spool and derive alerts
        anyway — the hour-keyed stream and the alert fingerprints in Redis drop whatever a second
        replica doing the same sends once Redis is back."""
        lease = self.sinks.lease
        self.sinks.metrics.set_leader(True if lease is None else lease.is_leader)
        return lease is None or lease.is_leader or lease.unknown

    # ---- the loop (riskd.daemon.loop) --------------------------------------------------------------------
    async def run_forever(self, stop: asyncio.Event) -> None:
        """Cycle at every hour close plus grace until ``stop`` is set (:func:`riskd.daemon.loop.run_forever`)."""
        await loop.run_forever(self, stop)

    async def lease_loop(self, stop: asyncio.Event) -> None:
        """Keep the leader lease renewed (:func:`riskd.daemon.loop.lease_loop`)."""
        await loop.lease_loop(self, stop)
