"""Prometheus metrics (docs/metrics.md) and the small HTTP server that also answers /healthz, /regime.

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

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from riskd import __version__
from riskd.models import LEVEL_CODES, STATE_CODES, Snapshot
from riskd.sources.retry import OUTCOMES

log = logging.getLogger("riskd.metrics")

# feature name in Snapshot.features -> (metric, labels)
_FEATURE_GAUGES: dict[str, tuple[str, dict[str, str]]] = {
    "agg_funding_z": ("riskd_funding_zscore", {}),
    "funding_dispersion": ("riskd_funding_dispersion", {}),
    "gap_bybit": ("riskd_funding_gap_per_hour", {"venue_pair": "binance-bybit"}),
    "gap_hyperliquid": ("riskd_funding_gap_per_hour", {"venue_pair": "binance-hyperliquid"}),
    "funding_gap": ("riskd_funding_gap_per_hour", {"venue_pair": "binance-others"}),
    "btc_ret_1h": ("riskd_btc_return", {"window": "1h"}),
    "btc_ret_4h": ("riskd_btc_return", {"window": "4h"}),
}
_HELP = {
    "riskd_funding_zscore": "Aggregate funding z-score over the trailing 168 h",
    "riskd_funding_dispersion": "Cross-sectional std of funding per hour (fraction)",
    "riskd_funding_gap_per_hour": "Binance funding minus the other venue(s), per hour (fraction)",
    "riskd_btc_return": "BTC return over the window (fraction)",
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


class SnapshotCollector(Collector):
    """Yields the regime gauges from ``LiveState``; yields nothing for what is not known yet."""

    def __init__(self, state: LiveState, clock: Callable[[], float] = time.time) -> None:
        self._state = state
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        yield from self._data_age()
        yield _gauge(
            "riskd_leader", "1 on the replica holding the leader lease", 1.0 if self._state.leader else 0.0
        )
        yield _gauge(
            "riskd_alerts_outbox_size", "Alerts waiting to be (re)sent", float(self._state.outbox_size())
        )
        snap = self._state.snapshot
        if snap is None:
            return
        yield _gauge("riskd_risk_multiplier", "Position scale other bots apply, 0..1", snap.risk_multiplier)
        yield _gauge(
            "riskd_regime_state", "Regime code: 0 calm .. 4 recovery, -1 unknown", STATE_CODES[snap.state]
        )
        info = GaugeMetricFamily("riskd_regime_info", "1 for the current regime state", labels=["state"])
        for state in STATE_CODES:
            info.add_metric([state], 1.0 if state == snap.state else 0.0)
        yield info
        yield _gauge("riskd_cascade_level", "0 none .. 4 strict", LEVEL_CODES[snap.cascade_level])
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
                "riskd_cfi_percentile", "CFI percentile against its own past, 0..1", snap.cfi_percentile
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


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


class Metrics:
    """The registry of one riskd process (tests make their own) and the counters the daemon feeds."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        self.state = LiveState()
        self.registry.register(SnapshotCollector(self.state, clock))
        r = self.registry
        self.cycle_duration = Histogram(
            "riskd_cycle_duration_seconds", "Wall time of one hourly cycle", registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
        )  # fmt: skip
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
        self.alerts_sent = Counter(
            "riskd_alerts_sent", "Alerts delivered", ["channel", "severity"], registry=r
        )
        self.alerts_suppressed = Counter("riskd_alerts_suppressed", "Alerts not sent", ["reason"], registry=r)
        build = Gauge("riskd_build_info", "riskd build", ["version", "python"], registry=r)
        build.labels(__version__, platform.python_version()).set(1)
        # Every documented label set exists at 0 from the start: increase() then counts the first event.
        for outcome in ("ok", "degraded", "failed"):
            self.cycles.labels(outcome)
        for channel in ("telegram", "console"):
            for severity in ("info", "warning", "critical"):
                self.alerts_sent.labels(channel, severity)
        for reason in ("duplicate", "cooldown", "muted", "off"):
            self.alerts_suppressed.labels(reason)

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

    def exposition(self) -> bytes:
        """The text format a scrape returns."""
        return generate_latest(self.registry)


def health(state: LiveState, now: float, max_silence_s: float = 2.5 * 3600) -> tuple[int, dict[str, object]]:
    """Healthy while cycles succeed; a fresh process gets one silence period to finish its first."""
    last = state.last_cycle_ok if state.last_cycle_ok is not None else state.started_at
    age = now - last
    ok = age <= max_silence_s
    body: dict[str, object] = {
        "status": "ok" if ok else "failing",
        "seconds_since_last_cycle": round(age, 1) if state.last_cycle_ok is not None else None,
        "leader": state.leader,
        "as_of": state.snapshot.as_of.isoformat() if state.snapshot else None,
    }
    return (200 if ok else 503), body


class MetricsServer:
    """aiohttp app serving /metrics, /healthz and /regime on the configured address."""

    def __init__(
        self, metrics: Metrics, host: str, port: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._clock = clock
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        """The routes (exposed for tests that want the app without a socket)."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/regime", self._regime)
        return app

    async def start(self) -> MetricsServer:
        """Listen; with port 0 the chosen port is stored in ``self.port``."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("metrics on http://%s:%d/metrics (also /healthz, /regime)", self.host, self.port)
        return self

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = self.metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _health(self, request: web.Request) -> web.Response:
        status, body = health(self.metrics.state, self._clock())
        return web.json_response(body, status=status)

    async def _regime(self, request: web.Request) -> web.Response:
        snap = self.metrics.state.snapshot
        if snap is None:
            return web.json_response({"state": "unknown", "reason": "no cycle completed yet"}, status=503)
        return web.Response(text=snap.to_json(), content_type="application/json")


def parse_exposition(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse a scrape into {(name, labels): value} — used by tests and the demo's summary."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


__all__ = ["LiveState", "Metrics", "MetricsServer", "SnapshotCollector", "health", "parse_exposition"]
