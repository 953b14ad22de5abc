"""The hourly cycle: wait -> fetch -> compute -> publish -> store. ``run_once`` for tests and ``riskd once``.

The history store is written last: the key is what bots wait for, and the rows it was computed from
are already in memory; a store write that fails is kept and retried, and never holds up a cycle.

Every replica fetches and computes (a standby stays warm); only the holder of the Redis lease
publishes and alerts. The core's state is saved after each cycle, so a restart continues exactly
where the last cycle ended; hours missed while down are computed in order and published as late.
Each sink fails alone: a Redis or Telegram outage is logged, counted and retried later, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from riskd.alerts import derive_alerts
from riskd.clock import Clock
from riskd.core import FragilityState, compute_fragility_with_state, step
from riskd.core.schedule import HOUR, last_closed_hour, next_run
from riskd.errors import RiskdError, SinkError
from riskd.lease import LeaderLease
from riskd.live import FetchReport, MarketCache, assess, fetch_recent, persist, store_panel
from riskd.models import Snapshot
from riskd.settings import Settings
from riskd.sinks.metrics import Metrics
from riskd.sinks.redis import RedisSink
from riskd.snapshot import to_snapshot
from riskd.sources import VenueSource
from riskd.store import HistoryStore

log = logging.getLogger("riskd.daemon")


@dataclass
class Sinks:
    """Where snapshots go; each may be absent (tests, replay) and each may fail alone."""

    metrics: Metrics
    redis: RedisSink | None = None
    alerts: Any | None = None  # riskd.sinks.alerting.AlertPipeline
    lease: LeaderLease | None = None
    on_snapshot: list[Any] = field(default_factory=list)  # callables(snapshot), e.g. the demo's printer
    charts: bool = True  # draw the PNG chart for alerts (only channels that can show one want it)


class Daemon:
    """One riskd replica."""

    def __init__(
        self,
        settings: Settings,
        *,
        sources: Mapping[str, VenueSource],
        store: HistoryStore,
        sinks: Sinks,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.params = settings.fragility
        self.sources = dict(sources)
        self.venues = list(self.sources)
        self.store = store
        self.sinks = sinks
        self.clock = clock
        self.cache = MarketCache(
            settings.universe.symbols, self.params, keep_hours=settings.daemon.max_catchup_hours + 48
        )
        self.state: FragilityState | None = None
        self.last: Snapshot | None = None
        self.chart_rows: deque[tuple[pd.Timestamp, float, float]] = deque(maxlen=settings.alerts.chart_hours)
        self.state_path = settings.data_dir / "state" / "fragility.json"
        self.timings: dict[str, float] = {}  # seconds per stage of the last cycle (benchmarks, logs)
        self.unsaved: list[tuple[str, str, str, pd.DataFrame]] = []  # fetched, not yet in the store

    # ---- start-up --------------------------------------------------------------------------------

    def load(self) -> None:
        """Restore the saved core state and last snapshot; fill the cache from the store."""
        if self.state_path.exists():
            try:
                saved = json.loads(self.state_path.read_text())
                self.state = FragilityState.from_dict(saved["state"], self.params)
                if saved.get("last"):
                    self.last = Snapshot.model_validate(saved["last"])
                log.info("resumed from %s (last hour %s)", self.state_path, self.state.last_ts)
            except (ValueError, KeyError, TypeError) as err:
                log.warning("saved state unusable (%s): rebuilding from the store", err)
                self.state = None
        self.cache.load(self.store, self.venues, self.clock.now())

    def _save(self) -> None:
        if self.state is None:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        body = {
            "state": self.state.to_dict(),
            "last": self.last.model_dump(mode="json") if self.last else None,
        }
        tmp.write_text(json.dumps(body))
        os.replace(tmp, self.state_path)

    def _rebuild(self, through: pd.Timestamp) -> FragilityState | None:
        """The core state after hour ``through`` by the batch path over the store (cold start, long outage)."""
        panel = store_panel(self.store, self.params, self.settings.universe.symbols, self.venues, through)
        if panel is None:
            return None
        _, state = compute_fragility_with_state(panel, self.params)
        log.info("core state rebuilt from the store through %s (%d hours)", through, len(panel.index))
        return state

    # ---- one cycle ---------------------------------------------------------------------------------

    async def run_once(self) -> list[Snapshot]:
        """Fetch up to the last closed hour, compute every hour not yet computed, publish them."""
        t0 = time.perf_counter()
        now = self.clock.now()
        newest = last_closed_hour(now)
        d = self.settings.daemon
        report = await fetch_recent(
            self.sources, self.store, self.cache, until=newest + HOUR,
            warm_start=newest - pd.Timedelta(hours=d.warmup_hours),
        )  # fmt: skip
        self._note_fetch(report, now)
        self.unsaved.extend(report.fetched)
        first_pub = newest - pd.Timedelta(hours=d.max_catchup_hours - 1)
        last_done = self.state.last_ts if self.state is not None else None
        if last_done is not None and last_done >= newest:
            await self._persist()
            return []
        if last_done is None or last_done < first_pub - HOUR:
            warm_until = newest - HOUR if last_done is None else first_pub - HOUR
            await self._persist()  # the rebuild reads the store
            self.state = await asyncio.to_thread(self._rebuild, warm_until)
        t_compute = time.perf_counter()
        fetch_s = t_compute - t0
        hours = self._pending(newest)
        out = []
        for hour in hours:
            panel = self.cache.panel(hour, self.venues)
            rows, self.state = step(self.state, panel, self.params)
            row = rows.iloc[-1].to_dict()
            late = (now - (hour + HOUR)) > HOUR
            quality = assess(self.cache, hour, self.venues, report if hour == newest else None)
            snap = to_snapshot(
                hour, row, computed_at=now.to_pydatetime(warn=False), quality=quality, live=not late
            )
            self._remember_chart(hour, panel, row)
            out.append(snap)
        self.sinks.metrics.success("compute")
        compute_s = time.perf_counter() - t_compute
        t_publish = time.perf_counter()
        for snap in out:
            await self.publish(snap, now.to_pydatetime(warn=False))
        t_persist = time.perf_counter()
        publish_s = t_persist - t_publish
        await self._persist()
        self.timings = {
            "fetch": fetch_s, "compute": compute_s, "publish": publish_s,
            "persist": time.perf_counter() - t_persist,
        }  # fmt: skip
        self._save()
        duration = time.perf_counter() - t0
        self.sinks.metrics.cycle_duration.observe(duration)
        outcome = "ok" if all(s.data_quality.status == "ok" for s in out) else "degraded"
        self.sinks.metrics.cycles.labels(outcome).inc()
        self.sinks.metrics.state.last_cycle_ok = time.time()
        self.sinks.metrics.success("cycle")
        log.info(
            "cycle: %d hour(s) through %s in %.3fs (compute %.1f ms)",
            len(out),
            newest,
            duration,
            compute_s * 1e3,
        )
        return out

    async def _persist(self) -> None:
        """Write what was fetched to the history store. A failure (disk full, permissions) is logged and
        retried next cycle; it never stops publishing, which runs from the in-memory cache."""
        if not self.unsaved:
            return
        try:
            await asyncio.to_thread(persist, self.store, self.unsaved)
            self.sinks.metrics.success("store")
        except (OSError, RiskdError) as err:
            log.error(
                "history store: %s; %d partition write(s) kept for the next cycle", err, len(self.unsaved)
            )

    def _pending(self, newest: pd.Timestamp) -> list[pd.Timestamp]:
        last_done = self.state.last_ts if self.state is not None else None
        first = newest if last_done is None else last_done + HOUR
        return list(pd.date_range(first, newest, freq="h"))

    def _note_fetch(self, report: FetchReport, now: pd.Timestamp) -> None:
        if not report.failed:
            self.sinks.metrics.success("fetch")
        newest = self.sinks.metrics.state.newest_data
        for (dataset, venue, _), frame in self.cache.frames.items():
            if len(frame) and dataset != "spot_ohlcv":
                ts = frame.index[-1] + (HOUR if dataset == "ohlcv" else pd.Timedelta(0))
                newest[(venue, dataset)] = max(newest.get((venue, dataset), 0.0), ts.timestamp())

    def _remember_chart(self, hour: pd.Timestamp, panel: Any, row: Mapping[str, Any]) -> None:
        symbols = list(panel.symbols)
        btc = float(panel.close[0, symbols.index("BTC")]) if "BTC" in symbols else float("nan")
        cfi = row.get("cfi")
        self.chart_rows.append((hour + HOUR, btc, float(cfi) if cfi is not None else float("nan")))

    def chart_frame(self) -> pd.DataFrame:
        """BTC close and CFI of the recent hours, for the alert chart."""
        if not self.chart_rows:
            return pd.DataFrame(columns=["btc_close", "cfi"])
        ts, btc, cfi = zip(*self.chart_rows, strict=True)
        return pd.DataFrame({"btc_close": btc, "cfi": cfi}, index=pd.DatetimeIndex(ts, name="ts"))

    # ---- publishing -----------------------------------------------------------------------------

    async def publish(self, snap: Snapshot, now: datetime) -> None:
        """Metrics always; Redis and alerts only on the leader. Each sink fails alone."""
        prev, self.last = self.last, snap
        self.sinks.metrics.state.snapshot = snap
        for hook in self.sinks.on_snapshot:
            hook(snap)
        if not await self._is_leader():
            if self.sinks.redis is not None:
                self.sinks.redis.enqueue(snap)
            return
        if self.sinks.redis is not None:
            try:
                await self.sinks.redis.publish(snap)
                self.sinks.metrics.success("redis")
            except SinkError as err:
                log.error("redis: %s", err)
        if self.sinks.alerts is not None:
            await self._alert(prev, snap, now)

    async def _alert(self, prev: Snapshot | None, snap: Snapshot, now: datetime) -> None:
        alerts = derive_alerts(prev, snap, now=now)
        if not alerts:
            return
        chart = await self._chart() if self.sinks.charts else None
        try:
            await self.sinks.alerts.submit(alerts, chart=chart)
        except Exception as err:  # the one broad except around a sink: alerts must never stop the cycle
            log.error("alerts: %s", err)

    async def _chart(self) -> bytes | None:
        """The alert's PNG (matplotlib is imported only when a channel shows pictures)."""
        from riskd.sinks.chart import render_chart

        try:
            return await asyncio.to_thread(
                render_chart, self.chart_frame(), hours=self.settings.alerts.chart_hours
            )
        except Exception as err:  # a chart is a nicety: the alert goes out without it
            log.warning("alert chart not drawn: %s", err)
            return None

    async def _is_leader(self) -> bool:
        """Leader, or Redis unreachable (leadership unknown): then publish to the spool and derive alerts
        anyway — the hour-keyed stream and the alert fingerprints in Redis drop whatever a second
        replica doing the same sends once Redis is back."""
        lease = self.sinks.lease
        self.sinks.metrics.state.leader = True if lease is None else lease.is_leader
        return lease is None or lease.is_leader or lease.unknown

    # ---- the loop -------------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Cycle at every hour close plus grace until ``stop`` is set; a failed cycle is retried."""
        grace = pd.Timedelta(seconds=self.settings.daemon.grace_s)
        backoff = 5.0
        while not stop.is_set():
            done = self.state.last_ts if self.state is not None else None
            due = next_run(self.clock.now(), grace, done)
            await self.clock.sleep_until(due, stop)
            if stop.is_set():
                break
            try:
                await self.run_once()
                backoff = 5.0
            except Exception as err:  # keep running: the next attempt may succeed
                log.exception("cycle failed, retrying in %.0fs: %s", backoff, err)
                self.sinks.metrics.cycles.labels("failed").inc()
                await self.clock.sleep_until(self.clock.now() + pd.Timedelta(seconds=backoff), stop)
                backoff = min(backoff * 2, 300.0)

    async def lease_loop(self, stop: asyncio.Event) -> None:
        """Keep the leader lease renewed (or keep trying to take it)."""
        lease = self.sinks.lease
        if lease is None:
            return
        while not stop.is_set():
            was = lease.is_leader
            now_leader = await lease.tick()
            self.sinks.metrics.state.leader = now_leader
            if now_leader and not was and self.sinks.redis is not None:
                try:  # a new leader writes what it holds at once, so the key does not lapse while it waits
                    await self.sinks.redis.flush()
                except SinkError as err:
                    log.error("redis: %s", err)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=lease.interval_s)
