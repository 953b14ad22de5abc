"""Prometheus metrics (docs/metrics.md): the registry, the regime collector and what the daemon reports.

The HTTP server that exposes them with the API is :mod:`riskd.http.server`; this module knows nothing of
HTTP beyond the exposition bytes.

Gauges of the regime come from a custom collector that reads the latest published snapshot: a scrape
never triggers a fetch or a computation, and before the first cycle it simply yields fewer samples.
Counters and the cycle histogram are ordinary prometheus_client objects fed by the daemon.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from riskd import __version__
from riskd.contract.models import LEVEL_CODES, STATE_CODES, Snapshot
from riskd.sources.registry import primary_venue, with_role
from riskd.sources.retry import OUTCOMES

log = logging.getLogger("riskd.metrics")

# feature name in Snapshot.features -> (metric, labels)
# Units: fractions are ``_ratio`` (0.01 = 1 %); funding rates are normalised to one hour and say so with
# ``_hourly_ratio`` (a fraction of notional paid per hour), whatever the venue's funding interval.
_FEATURE_GAUGES: dict[str, tuple[str, dict[str, str]]] = {
    "agg_funding_z": ("riskd_funding_zscore", {}),
    "funding_dispersion": ("riskd_funding_dispersion_hourly_ratio", {}),
    # one series per gap venue of the registry: gap_okx -> venue_pair="binance-okx"
    **{
        f"gap_{v}": ("riskd_funding_gap_hourly_ratio", {"venue_pair": f"{primary_venue()}-{v}"})
        for v in with_role("gap")
    },
    "funding_gap": ("riskd_funding_gap_hourly_ratio", {"venue_pair": f"{primary_venue()}-others"}),
    "btc_ret_1h": ("riskd_btc_return_ratio", {"window": "1h"}),
    "btc_ret_4h": ("riskd_btc_return_ratio", {"window": "4h"}),
}
_HELP = {
    "riskd_funding_zscore": "Aggregate funding z-score over the trailing 168 h",
    "riskd_funding_dispersion_hourly_ratio": "Cross-sectional std of funding, per hour (fraction of notional)",
    "riskd_funding_gap_hourly_ratio": "Binance funding minus the other venue(s), per hour (fraction of notional)",
    "riskd_btc_return_ratio": "BTC return over the window (fraction)",
}


@dataclass
class LiveState:
    """What the daemon last knew; the collector reads it at scrape time."""

    snapshot: Snapshot | None = None
    newest_data: dict[tuple[str, str], float] = field(default_factory=dict)  # (venue, dataset) -> unix s
    leader: bool = False
    outbox_size: Callable[[], int] = lambda: 0
    started_at: float = field(default_factory=time.time)
    last_cycle_ok: float | None = None
    venue_health: dict[str, str] = field(default_factory=dict)  # venue -> "ok" | "degraded" | "down"
    down: dict[str, str] = field(default_factory=dict)  # service ("redis") -> why it is unreachable now


class SnapshotCollector(Collector):
    """Yields the regime gauges from ``LiveState``; yields nothing for what is not known yet."""

    def __init__(self, state: LiveState, clock: Callable[[], float] = time.time) -> None:
        self._state = state
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        yield from self._data_age()
        yield from self._venues()
        yield _gauge(
            "riskd_leader", "1 on the replica holding the leader lease", 1.0 if self._state.leader else 0.0
        )
        yield _gauge(
            "riskd_alerts_outbox_size", "Alerts waiting to be (re)sent", float(self._state.outbox_size())
        )
        snap = self._state.snapshot
        if snap is None:
            return
        yield _gauge(
            "riskd_risk_multiplier_ratio", "Position scale other bots apply, 0..1", snap.risk_multiplier
        )
        yield _gauge(
            "riskd_regime_state", "Regime code: 0 calm .. 4 recovery, -1 unknown", STATE_CODES[snap.state]
        )
        regime = GaugeMetricFamily(
            "riskd_regime", "State set: 1 for the current regime state", labels=["state"]
        )
        for state in STATE_CODES:
            regime.add_metric([state], 1.0 if state == snap.state else 0.0)
        yield regime
        yield _gauge("riskd_cascade_level", "0 none .. 4 strict", LEVEL_CODES[snap.cascade_level])
        yield _gauge(
            "riskd_multi_asset_cascade",
            "1 when the multi-asset detector fired this hour",
            snap.multi_asset_cascade,
        )
        yield _gauge(
            "riskd_snapshot_as_of_timestamp_seconds", "Hour the state covers", snap.as_of.timestamp()
        )
        yield _gauge(
            "riskd_data_degraded",
            "1 when sources were stale or missing",
            float(snap.data_quality.status != "ok"),
        )
        if snap.cfi is not None:
            yield _gauge("riskd_cfi", "Composite Fragility Index", snap.cfi)
        if snap.cfi_percentile is not None:
            yield _gauge(
                "riskd_cfi_percentile_ratio", "CFI percentile against its own past, 0..1", snap.cfi_percentile
            )
        # Always exported: NaN (Prometheus' "no value") while no crash model is loaded, never a made-up number.
        prob = snap.crash_prob_24h
        yield _gauge(
            "riskd_crash_probability_ratio",
            "Calibrated P(BTC drawdown beyond the model's threshold within its horizon; default -5 %, 24 h)",
            float("nan") if prob is None else prob,
        )
        comp = GaugeMetricFamily("riskd_cfi_component", "Standardised CFI components", labels=["component"])
        for name, value in sorted(snap.components.items()):
            if value is not None:
                comp.add_metric([name], value)
        yield comp
        yield from self._features(snap)

    def _features(self, snap: Snapshot) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily] = {}
        for feature, (metric, labels) in _FEATURE_GAUGES.items():
            value = snap.features.get(feature)
            if value is None:
                continue
            fam = families.setdefault(metric, GaugeMetricFamily(metric, _HELP[metric], labels=list(labels)))
            fam.add_metric(list(labels.values()), value)
        yield from families.values()

    def _data_age(self) -> Iterator[Metric]:
        fam = GaugeMetricFamily(
            "riskd_data_age_seconds", "Age of the newest data held", labels=["venue", "dataset"]
        )
        now = self._clock()
        for (venue, dataset), newest in sorted(self._state.newest_data.items()):
            fam.add_metric([venue, dataset], max(0.0, now - newest))
        yield fam

    def _venues(self) -> Iterator[Metric]:
        fam = GaugeMetricFamily(
            "riskd_venue_up",
            "1 while a venue answers (ok or degraded), 0 while down (circuit open or banned)",
            labels=["venue"],
        )
        for venue, health in sorted(self._state.venue_health.items()):
            fam.add_metric([venue], 0.0 if health == "down" else 1.0)
        yield fam


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


class Metrics:
    """The registry of one riskd process (tests make their own) and the counters the daemon feeds."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # the data clock (simulated in replay and the demo): judges snapshot age
        self.registry = CollectorRegistry()
        self.state = LiveState()
        self.registry.register(SnapshotCollector(self.state, clock))
        r = self.registry
        self.cycle_duration = Histogram(
            "riskd_cycle_duration_seconds",
            "Wall time of one hourly cycle",
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
        )
        self.cycles = Counter("riskd_cycles", "Cycles run", ["outcome"], registry=r)
        self.last_success = Gauge(
            "riskd_last_success_timestamp_seconds", "Last success of each stage", ["stage"], registry=r
        )
        self.requests = Counter(
            "riskd_exchange_requests",
            "Exchange request attempts",
            ["venue", "endpoint", "outcome"],
            registry=r,
        )
        self.stage_failures = Counter(
            "riskd_stage_failures",
            "Failures of a stage (store, state, redis, alerts, ...)",
            ["stage"],
            registry=r,
        )
        self.alerts_sent = Counter(
            "riskd_alerts_sent", "Alerts delivered", ["channel", "severity"], registry=r
        )
        self.alerts_suppressed = Counter("riskd_alerts_suppressed", "Alerts not sent", ["reason"], registry=r)
        self.fenced_writes = Counter(
            "riskd_fenced_writes",
            "Writes to shared Redis state refused because a newer leader holds the lease (this replica was "
            "deposed while it thought it led)",
            ["kind"],
            registry=r,
        )
        self.alerts_unconfirmed = Counter(
            "riskd_alerts_unconfirmed",
            "Alert copies given up after alerts.max_copies sends with no confirmation (check the chat)",
            ["channel", "severity"],
            registry=r,
        )
        self.redis_rollback_hours = Counter(
            "riskd_redis_rollback_hours",
            "Hours published again because Redis had lost them (restored from an older snapshot, or emptied): "
            "republished from riskd's local record as revisions with restate_reason redis_rollback",
            registry=r,
        )
        self.clock_skew = Gauge(
            "riskd_clock_skew_seconds",
            "Local clock minus the venue's server time at the last reading (positive: ours is ahead)",
            ["venue"],
            registry=r,
        )
        build = Gauge("riskd_build_info", "riskd build", ["version", "python"], registry=r)
        build.labels(__version__, platform.python_version()).set(1)
        # Every documented label set exists at 0 from the start: increase() then counts the first event.
        for outcome in ("ok", "degraded", "failed"):
            self.cycles.labels(outcome)
        for channel in ("telegram", "console"):
            for severity in ("info", "warning", "critical"):
                self.alerts_sent.labels(channel, severity)
                self.alerts_unconfirmed.labels(channel, severity)
        for reason in ("duplicate", "downgrade", "cooldown", "muted", "off", "delivered_before"):
            self.alerts_suppressed.labels(reason)
        for stage in ("fetch", "store", "state", "redis", "alerts", "clock"):
            self.stage_failures.labels(stage)
        for kind in ("regime", "funding", "origin", "alert_cursor", "alerts", "outbox", "escalation"):
            self.fenced_writes.labels(kind)

    def declare_endpoints(self, venue: str, endpoints: list[str]) -> None:
        """Create the request counters of a venue's endpoints at 0 for every outcome."""
        for endpoint in endpoints:
            for outcome in OUTCOMES:
                self.requests.labels(venue, endpoint, outcome)

    def request_hook(self, venue: str, endpoint: str, outcome: str) -> None:
        """The sources' per-attempt hook (riskd.sources.retry.RequestHook)."""
        self.requests.labels(venue, endpoint, outcome).inc()

    def success(self, stage: str, when: float | None = None) -> None:
        """Record that a stage (fetch, compute, redis, telegram, store, cycle) just succeeded."""
        self.last_success.labels(stage).set(when if when is not None else time.time())

    # ---- what the daemon reports (it never touches the registry or LiveState directly) ----------

    name = "metrics"
    leader_only = False

    async def publish(self, snapshot: Snapshot) -> None:
        """The SnapshotSink side: the newest hour becomes what a scrape reads (revisions of older hours
        do not replace it)."""
        held = self.state.snapshot
        if held is None or snapshot.as_of >= held.as_of:
            self.state.snapshot = snapshot

    def observe_cycle(self, seconds: float, outcome: str, when: float | None = None) -> None:
        """One cycle ended: ``outcome`` ok, degraded or failed."""
        self.cycles.labels(outcome).inc()
        if outcome != "failed":
            self.cycle_duration.observe(seconds)
            self.state.last_cycle_ok = when if when is not None else time.time()
            self.success("cycle", when)

    def observe_data(self, venue: str, dataset: str, newest: float) -> None:
        """The newest data held for (venue, dataset), unix seconds (never moves back)."""
        key = (venue, dataset)
        self.state.newest_data[key] = max(self.state.newest_data.get(key, 0.0), newest)

    def set_leader(self, leader: bool) -> None:
        """Whether this replica holds the lease now."""
        self.state.leader = leader

    def failure(self, stage: str) -> None:
        """Count one failure of a stage (the stage's last success stops moving too)."""
        self.stage_failures.labels(stage).inc()

    def observe_clock_skew(self, venue: str, seconds: float) -> None:
        """The last clock-skew reading (riskd.daemon.skew): one series, for the venue it was read from."""
        self.clock_skew.clear()
        self.clock_skew.labels(venue).set(seconds)

    def service_down(self, service: str, why: str) -> bool:
        """A service riskd needs (``redis``; ``clock``: the host's clock off the venues') stopped answering:
        counted once per outage under its stage, shown by /healthz as degraded until :meth:`service_up`.
        True when the outage just began (the caller logs it then, once)."""
        began = service not in self.state.down
        if began:
            self.failure(service)
        self.state.down[service] = why
        return began

    def service_up(self, service: str) -> bool:
        """The service answers again; True when an outage just ended."""
        return self.state.down.pop(service, None) is not None

    def exposition(self) -> bytes:
        """The text format a scrape returns."""
        return generate_latest(self.registry)


def parse_exposition(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse a scrape into {(name, labels): value} — used by tests and the demo's summary."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


__all__ = ["LiveState", "Metrics", "SnapshotCollector", "parse_exposition"]
