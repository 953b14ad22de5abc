"""The hourly cycle: wait -> fetch -> compute -> publish -> alert -> store. ``run_once`` for tests and
``riskd once``.

The history store is written last: the key is what bots wait for, and the rows it was computed from
are already in memory; a store write that fails is kept and retried, and never holds up a cycle.

Every replica fetches and computes (a standby stays warm); only the holder of the Redis lease
publishes and alerts. Alerts are derived from the published history stream by a cursor in Redis
(:mod:`riskd.sinks.alert_feed`), never from the cycle's memory, so whoever leads after a crash, a
restart or a Redis outage raises every hour's alerts exactly once.

Late data restates. When a fetch brings rows for hours already computed (a venue that stalled, a ban,
a candle that came late), the hours from the first affected one are recomputed with the same core from
the state before it, and each hour whose content changed is republished as a revision
(``revision`` n, ``restated: true``); the alerts it implies follow, marked late. So the published
stream equals the batch path over the same data once the data is in.

The core's state is saved after each cycle, so a restart continues exactly where the last cycle ended;
hours missed while down are computed in order and published as late. Each sink fails alone: a Redis,
Telegram or disk fault is logged once per change, counted under its stage, and retried later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import pandas as pd

from riskd.clock import Clock
from riskd.core import FragilityState, compute_fragility_with_state, step
from riskd.core.liquidations import hourly_market
from riskd.core.schedule import HOUR, last_closed_hour, next_run
from riskd.crash_model import load_crash_model
from riskd.errors import RiskdError, SinkError
from riskd.lease import LeaderLease
from riskd.live import (
    FetchReport,
    MarketCache,
    assess,
    fetch_recent,
    liquidation_minutes,
    persist,
    store_first_hour,
    store_panel,
)
from riskd.models import Snapshot, read_snapshot
from riskd.settings import Settings
from riskd.sinks.alert_feed import AlertFeed
from riskd.sinks.base import HoldingSink, HookSink, SnapshotSink
from riskd.sinks.metrics import Metrics
from riskd.sinks.redis import RedisSink, write_durably
from riskd.snapshot import to_snapshot
from riskd.sources import VenueSource
from riskd.store import HistoryStore

log = logging.getLogger("riskd.daemon")


@dataclass
class Sinks:
    """Where snapshots go; each may be absent (tests, replay) and each may fail alone.

    ``publishers`` are further :class:`~riskd.sinks.base.SnapshotSink` s (the webhook, or any new one):
    one more sink is one more entry here, nothing else in the daemon changes."""

    metrics: Metrics
    redis: RedisSink | None = None
    publishers: list[SnapshotSink] = field(default_factory=list)
    alerts: Any | None = None  # riskd.sinks.alerting.AlertPipeline
    feed: AlertFeed | None = None  # derives alerts from the history stream (leader only)
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
        # The hour the expanding statistics start from, shared by every replica through Redis (see
        # ``_settle_origin``); None until the first cycle settles it.
        self.origin: pd.Timestamp | None = None
        # The calibrated crash model (riskd calibrate), read once at start: live and batch use the same
        # one, so a new model file takes effect at the next restart. None: crash_prob_24h is null.
        self.crash_model = load_crash_model(settings)
        self.last: Snapshot | None = None
        # The state after each recent hour, so late data restates from the hour it belongs to.
        self.states: OrderedDict[pd.Timestamp, FragilityState] = OrderedDict()
        # as_of (ISO) -> (revision, content digest) of what this replica published, saved with the state.
        self.published: dict[str, tuple[int, str]] = {}
        self.chart_rows: dict[pd.Timestamp, tuple[float, float]] = {}
        self._faults: dict[str, str] = {}  # stage -> the error it is failing with (logged once per change)
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
                    self.last = read_snapshot(saved["last"])
                self.published = {k: (int(v[0]), str(v[1])) for k, v in saved.get("published", {}).items()}
                if saved.get("origin"):
                    self.origin = pd.Timestamp(saved["origin"])
                log.info("resumed from %s (last hour %s)", self.state_path, self.state.last_ts)
            except (ValueError, KeyError, TypeError) as err:
                log.warning("saved state unusable (%s): rebuilding from the store", err)
                self.state = None
        self.cache.load(self.store, self.venues, self.clock.now())

    def _save(self) -> None:
        """Save the core state (fsynced). A disk fault is contained: logged once, counted, retried."""
        if self.state is None:
            return
        body = {
            "state": self.state.to_dict(),
            "last": self.last.model_dump(mode="json") if self.last else None,
            "published": {k: list(v) for k, v in self.published.items()},
            "origin": self.origin.isoformat() if self.origin is not None else None,
        }
        try:
            write_durably(self.state_path, json.dumps(body))
        except OSError as err:
            self._fault("state", f"state file {self.state_path} not saved: {err}", _kind(err))
        else:
            self._recovered("state")

    def _fault(self, stage: str, message: str, kind: str | None = None) -> None:
        """A stage failing: logged when it starts or its kind of error changes (``kind``, default the
        message: an OSError names a fresh temp file each time, so its kind is its errno), counted every time."""
        self.sinks.metrics.failure(stage)
        if stage == "redis":  # /healthz says degraded until Redis answers again
            self.sinks.metrics.state.down["redis"] = message
        kind = kind or message
        if self._faults.get(stage) != kind:
            log.error("%s (logged once until it changes)", message)
            self._faults[stage] = kind

    def _recovered(self, stage: str) -> None:
        self.sinks.metrics.success(stage)
        if stage == "redis":
            self.sinks.metrics.service_up("redis")
        if self._faults.pop(stage, None) is not None:
            log.warning("%s: working again", stage)

    def _rebuild(self, through: pd.Timestamp) -> FragilityState | None:
        """The core state after hour ``through`` by the batch path over the store (cold start, long outage)."""
        panel = store_panel(
            self.store, self.params, self.settings.universe.symbols, self.venues, through, start=self.origin
        )
        if panel is None:
            return None
        _, state = compute_fragility_with_state(panel, self.params, crash_model=self.crash_model)
        log.info("core state rebuilt from the store through %s (%d hours)", through, len(panel.index))
        return state

    # ---- one cycle ---------------------------------------------------------------------------------

    async def run_once(self) -> list[Snapshot]:
        """Fetch up to the last closed hour, restate what late data changed, compute every hour not yet
        computed, publish them (revisions first, in hour order), then derive their alerts."""
        t0 = time.perf_counter()
        now = self.clock.now()
        newest = last_closed_hour(now)
        d = self.settings.daemon
        await self._follow_origin()
        origin = await self._settle_origin(newest - pd.Timedelta(hours=d.warmup_hours))
        report = await fetch_recent(
            self.sources, self.store, self.cache, until=newest + HOUR, warm_start=origin,
            deadline_s=d.fetch_deadline_s, health=self.sinks.metrics.state.venue_health,
        )  # fmt: skip
        await self._claim_after_fetch(origin)
        self._note_fetch(report, now)
        self.unsaved.extend(report.fetched)
        first_pub = newest - pd.Timedelta(hours=d.max_catchup_hours - 1)
        last_done = self.state.last_ts if self.state is not None else None
        t_compute = time.perf_counter()
        fetch_s = t_compute - t0
        out: list[Snapshot] = []
        if last_done is not None and last_done >= first_pub - HOUR:
            late = late_hour(
                report, last_done, floor=max(first_pub, newest - pd.Timedelta(hours=d.restate_hours))
            )
            if late is not None:
                out += await self._restate(late, last_done, now, report)
        if last_done is None or last_done < first_pub - HOUR:
            warm_until = newest - HOUR if last_done is None else first_pub - HOUR
            await self._persist()  # the rebuild reads the store
            self.state = await asyncio.to_thread(self._rebuild, warm_until)
            self.states.clear()
            if self.state is not None:
                self._keep_state(warm_until)
        for hour in self._pending(newest):
            out.append(self._compute(hour, now, report if hour == newest else None))
        self.sinks.metrics.success("compute")
        compute_s = time.perf_counter() - t_compute
        t_publish = time.perf_counter()
        for snap in out:
            await self.publish(snap)
        await self.derive_alerts()
        t_persist = time.perf_counter()
        publish_s = t_persist - t_publish
        await self._persist()
        self.timings = {
            "fetch": fetch_s, "compute": compute_s, "publish": publish_s,
            "persist": time.perf_counter() - t_persist,
        }  # fmt: skip
        self._save()
        duration = time.perf_counter() - t0
        outcome = "ok" if all(s.data_quality.status == "ok" for s in out) else "degraded"
        self.sinks.metrics.observe_cycle(duration, outcome)
        restated = sum(1 for s in out if s.restated)
        log.info(
            "cycle: %d hour(s) through %s%s in %.3fs (compute %.1f ms)",
            len(out) - restated,
            newest,
            f", {restated} restated" if restated else "",
            duration,
            compute_s * 1e3,
        )
        return out

    def _compute(self, hour: pd.Timestamp, now: pd.Timestamp, report: FetchReport | None) -> Snapshot:
        """Step the core over one hour from the current state; remember the state after it."""
        panel = self.cache.panel(hour, self.venues)
        minutes = liquidation_minutes(self.store, self.params, hour, hour + HOUR)
        if minutes is not None:  # fragility.liquidations.enabled: the hour's record, as store_panel reads it
            panel = replace(panel, liquidations=hourly_market(minutes, panel.index))
        rows, self.state = step(self.state, panel, self.params, crash_model=self.crash_model)
        row = rows.iloc[-1].to_dict()
        late = (now - (hour + HOUR)) > HOUR
        quality = assess(self.cache, hour, self.venues, report)
        snap = to_snapshot(
            hour, row, computed_at=now.to_pydatetime(warn=False), quality=quality, live=not late
        )
        self._remember_chart(hour, panel, row)
        self._keep_state(hour)
        return snap

    async def _settle_origin(self, warm_start: pd.Timestamp) -> pd.Timestamp:
        """The hour this replica's history starts from, the same for every replica on one Redis prefix.

        CFI v2 ranks each component against its whole past, so the published values depend on where the
        past starts. The first replica whose store holds data fixes it in Redis (its store's first hour, or
        ``warm_start`` if later data only); a replica started later backfills from it, so a standby that
        takes over publishes what the old leader would have. An empty store claims nothing: it fetches
        from ``warm_start`` and claims once the fetch brought data (:meth:`_claim_after_fetch`), so a blind
        first start never pins the history. Settled once and saved with the state; ``riskd origin --set``
        moves it for every replica (:meth:`_follow_origin`). Redis down at a cold start: this replica uses
        its own, and says so."""
        if self.origin is not None:
            return self.origin
        local = await asyncio.to_thread(
            store_first_hour, self.store, self.params, self.settings.universe.symbols
        )
        shared = await self._shared_origin()
        if local is None and shared is None:
            return warm_start
        candidate = min(local, warm_start) if local is not None else warm_start
        origin = shared if shared is not None else await self._claim(candidate)
        if local is not None and local > origin:
            log.warning(
                "the store starts at %s, after the shared history origin %s: hours a venue no longer serves "
                "are missing, so this replica's ranks can differ from the other replicas'",
                local, origin,
            )  # fmt: skip
        elif local is not None and local < origin:
            log.warning(
                "the store holds hours from %s, before the shared history origin %s: they are not used; "
                "`riskd origin --from-store` moves the origin there (every replica then rebuilds)",
                local, origin,
            )  # fmt: skip
        log.info("history origin %s", origin)
        self.origin = origin
        return origin

    async def _shared_origin(self) -> pd.Timestamp | None:
        """The origin in Redis; None when none is set or Redis cannot say (logged)."""
        if self.sinks.redis is None:
            return None
        try:
            return await self.sinks.redis.shared_origin()
        except SinkError as err:
            known = "redis" in self.sinks.metrics.state.down  # an outage already logged once
            log.log(logging.DEBUG if known else logging.WARNING, "%s", err)
            return None

    async def _claim(self, candidate: pd.Timestamp) -> pd.Timestamp:
        if self.sinks.redis is None:
            return candidate
        try:
            return await self.sinks.redis.claim_origin(candidate)
        except SinkError as err:
            known = "redis" in self.sinks.metrics.state.down
            log.log(logging.DEBUG if known else logging.WARNING,
                    "%s; ranking from this replica's own history start %s", err, candidate)  # fmt: skip
            return candidate

    async def _claim_after_fetch(self, fetched_from: pd.Timestamp) -> None:
        """An empty store's first fetch brought the primary venue's BTC candles: the history starts where
        that fetch started, and now it may be shared."""
        if self.origin is not None:
            return
        btc = self.params.universe.btc_symbol
        if self.cache.last_ts("ohlcv", self.params.funding.primary_venue, btc) is None:
            return  # still nothing seen: nothing claimed
        self.origin = await self._claim(fetched_from)
        log.info("history origin %s (the first data this replica fetched)", self.origin)

    async def _follow_origin(self) -> None:
        """Another replica or ``riskd origin --set`` moved the shared origin: rebuild every statistic from
        it (the next cycle's cold-start path), so all replicas rank against the same past again."""
        if self.origin is None:
            return
        shared = await self._shared_origin()
        if shared is None:  # never shared (Redis was down at our cold start) or lost: ours, if nobody's
            shared = await self._claim(self.origin)
        if shared == self.origin:
            return
        log.warning(
            "history origin moved from %s to %s: rebuilding the state from the store", self.origin, shared
        )
        self.origin = shared
        self.state = None
        self.states.clear()

    def _keep_state(self, hour: pd.Timestamp) -> None:
        assert self.state is not None
        self.states[hour] = self.state
        self.states.move_to_end(hour)
        while len(self.states) > self.settings.daemon.restate_hours + 1:
            self.states.popitem(last=False)

    async def _restate(
        self, first: pd.Timestamp, last_done: pd.Timestamp, now: pd.Timestamp, report: FetchReport
    ) -> list[Snapshot]:
        """Recompute hours ``first`` .. ``last_done`` from the state before ``first``; return the hours
        whose content changed, as revisions (late, ``restated``). Unchanged hours are not republished.

        Each revision carries the coverage and the fetch outcome (``report``) of the data it was
        recomputed from: a cycle whose fetch was cut short (a circuit half-open after a ban) restates with
        what it has, as ``unknown`` when that is too little, never as ``ok``."""
        base = self.states.get(first - HOUR)
        if base is None:  # restarted since: the batch path over the store gives the same state
            await self._persist()
            base = await asyncio.to_thread(self._rebuild, first - HOUR)
            if base is None or base.last_ts != first - HOUR:
                log.warning("late data for %s: the state before it cannot be rebuilt; not restated", first)
                return []
        kept = self.state
        self.state = base
        for hour in list(self.states):
            if hour >= first:
                del self.states[hour]
        out = []
        for hour in pd.date_range(first, last_done, freq="h"):
            snap = self._compute(hour, now, report)
            revised = self._revision_of(snap)
            if revised is not None:
                out.append(revised)
        log.warning(
            "late data: hours %s .. %s recomputed, %d restated (state was through %s)",
            first, last_done, len(out), kept.last_ts if kept is not None else None,
        )  # fmt: skip
        return out

    def _revision_of(self, snap: Snapshot) -> Snapshot | None:
        """The recomputed hour as the next revision of what was published, or None when unchanged."""
        key = snap.as_of.isoformat()
        held = self.published.get(key)
        if held is not None and held[1] == snap.content_digest():
            return None
        revision = held[0] + 1 if held is not None else 1
        return snap.model_copy(update={"revision": revision, "restated": True, "live": False})

    async def _persist(self) -> None:
        """Write what was fetched to the history store. A failure (disk full, permissions) is logged and
        retried next cycle; it never stops publishing, which runs from the in-memory cache."""
        if not self.unsaved:
            return
        try:
            await asyncio.to_thread(persist, self.store, self.unsaved)
        except (OSError, RiskdError) as err:
            self._fault(
                "store", f"history store: {err}; partition writes kept for the next cycle", _kind(err)
            )
        else:
            self._recovered("store")

    def _pending(self, newest: pd.Timestamp) -> list[pd.Timestamp]:
        last_done = self.state.last_ts if self.state is not None else None
        first = newest if last_done is None else last_done + HOUR
        return list(pd.date_range(first, newest, freq="h"))

    def _note_fetch(self, report: FetchReport, now: pd.Timestamp) -> None:
        if not report.failed:
            self.sinks.metrics.success("fetch")
        for (dataset, venue, _), frame in self.cache.frames.items():
            if len(frame) and dataset not in ("spot_ohlcv", "ohlcv_1d"):
                ts = frame.index[-1] + (HOUR if dataset == "ohlcv" else pd.Timedelta(0))
                self.sinks.metrics.observe_data(venue, dataset, ts.timestamp())

    def _remember_chart(self, hour: pd.Timestamp, panel: Any, row: Mapping[str, Any]) -> None:
        symbols = list(panel.symbols)
        btc = float(panel.close[0, symbols.index("BTC")]) if "BTC" in symbols else float("nan")
        cfi = row.get("cfi")
        self.chart_rows[hour + HOUR] = (btc, float(cfi) if cfi is not None else float("nan"))
        for ts in sorted(self.chart_rows)[: -self.settings.alerts.chart_hours]:
            del self.chart_rows[ts]

    def chart_frame(self) -> pd.DataFrame:
        """BTC close and CFI of the recent hours, for the alert chart."""
        if not self.chart_rows:
            return pd.DataFrame(columns=["btc_close", "cfi"])
        ts = sorted(self.chart_rows)
        btc, cfi = zip(*(self.chart_rows[t] for t in ts), strict=True)
        return pd.DataFrame({"btc_close": btc, "cfi": cfi}, index=pd.DatetimeIndex(ts, name="ts"))

    # ---- publishing -----------------------------------------------------------------------------

    async def publish(self, snap: Snapshot) -> None:
        """Every sink in turn; leader-only ones only on the leader (a standby lets them hold it). Each sink
        fails alone: logged once per change of error, counted under its name."""
        if self.last is None or snap.as_of >= self.last.as_of:
            self.last = snap
        self.published[snap.as_of.isoformat()] = (snap.revision, snap.content_digest())
        self._trim_published(snap.as_of)
        leader = await self._is_leader()
        for sink in self._sinks():
            if sink.leader_only and not leader:
                if isinstance(sink, HoldingSink):
                    sink.hold(snap)
                continue
            try:
                await sink.publish(snap)
            except Exception as err:  # the one broad except around a sink (STYLE.md): it fails alone
                self._fault(sink.name, f"sink {sink.name}: {err}")
            else:
                self._recovered(sink.name)

    def _sinks(self) -> list[SnapshotSink]:
        sinks: list[SnapshotSink] = [self.sinks.metrics]
        if self.sinks.redis is not None:
            sinks.append(self.sinks.redis)
        sinks += self.sinks.publishers
        sinks += [HookSink(getattr(h, "__name__", "hook"), h) for h in self.sinks.on_snapshot]
        return sinks

    def _trim_published(self, newest: datetime) -> None:
        cutoff = (newest - pd.Timedelta(hours=self.settings.daemon.max_catchup_hours + 24)).isoformat()
        for key in [k for k in self.published if k < cutoff]:
            del self.published[key]

    async def derive_alerts(self) -> None:
        """The leader raises the alerts of every published hour it has not derived yet (from the stream)."""
        feed = self.sinks.feed
        if feed is None or not await self._is_leader():
            return
        try:
            await feed.run()
            self._recovered("alerts")
        except Exception as err:  # the one broad except around a sink: alerts retry from the cursor
            self._fault("alerts", f"alerts not derived yet (they will be, from the stream cursor): {err}")

    async def chart(self) -> bytes | None:
        """The alert's PNG (matplotlib is imported only when a channel shows pictures)."""
        if not self.sinks.charts:
            return None
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
        self.sinks.metrics.set_leader(True if lease is None else lease.is_leader)
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
                if not await self._cycle_until(stop):
                    break
                backoff = 5.0
            except Exception as err:  # keep running: the next attempt may succeed
                log.exception("cycle failed, retrying in %.0fs: %s", backoff, err)
                self.sinks.metrics.observe_cycle(0.0, "failed")
                await self.clock.sleep_until(self.clock.now() + pd.Timedelta(seconds=backoff), stop)
                backoff = min(backoff * 2, 300.0)

    async def _cycle_until(self, stop: asyncio.Event) -> bool:
        """Run one cycle, cancelled at once when ``stop`` is set (in-flight fetches and retries end there;
        what was published stays published). False when it was stopped."""
        cycle = asyncio.ensure_future(self.run_once())
        halt = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({cycle, halt}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            halt.cancel()
        if cycle.done():
            cycle.result()  # re-raise the cycle's error
            return True
        cycle.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(cycle, 5.0)
        log.info("cycle interrupted by the stop request")
        return False

    def _note_redis(self, lease: LeaderLease) -> None:
        """Redis's reachability as the lease saw it: an outage is logged and counted once, when it begins
        and when it ends, and /healthz says degraded meanwhile."""
        metrics = self.sinks.metrics
        if lease.unknown:
            if metrics.service_down("redis", f"redis unreachable: {lease.last_error}"):
                log.error("redis unreachable: %s (logged once until it answers)", lease.last_error)
        elif "redis" in metrics.state.down and "redis" not in self._faults:
            metrics.service_up("redis")
            log.warning("redis answers again")

    async def lease_loop(self, stop: asyncio.Event) -> None:
        """Keep the leader lease renewed (or keep trying to take it)."""
        lease = self.sinks.lease
        if lease is None:
            return
        while not stop.is_set():
            was = lease.is_leader
            now_leader = await lease.tick()
            self.sinks.metrics.set_leader(now_leader)
            self._note_redis(lease)
            if now_leader and not was and self.sinks.redis is not None:
                try:  # a new leader writes what it holds at once, so the key does not lapse while it waits
                    await self.sinks.redis.flush()
                except SinkError as err:
                    log.error("redis: %s", err)
            if now_leader:  # hours published by anyone (a dead leader, our own spool) get their alerts
                await self.derive_alerts()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=lease.interval_s)


def late_hour(report: FetchReport, last_done: pd.Timestamp, floor: pd.Timestamp) -> pd.Timestamp | None:
    """The first already-computed hour that fetched rows belong to (None: nothing late).

    A row stamped t is used from hour ``floor_hour(t)`` on (core.panel's rule), so that is the first
    hour it can change. Hours before ``floor`` (outside the restatement window) are not restated."""
    first: pd.Timestamp | None = None
    for _, _, _, frame in report.fetched:
        if frame.empty:
            continue
        t = frame.index.min().floor("h")
        if t <= last_done and (first is None or t < first):
            first = t
    if first is None or floor > last_done:
        return None
    if first < floor:
        log.warning("late data from %s is older than the restatement window; restating from %s", first, floor)
        first = floor
    return first


def _kind(err: BaseException) -> str:
    """What makes two disk errors "the same fault" for logging: the type and errno, not the path."""
    return f"{type(err).__name__}:{getattr(err, 'errno', None)}"
