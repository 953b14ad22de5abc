"""The Prometheus endpoint over real HTTP: names, labels, values, /healthz and /regime."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import aiohttp

from riskd.contract.codec import read_snapshot
from riskd.contract.models import DataQuality, Snapshot
from riskd.http.server import MetricsServer, health
from riskd.sinks.metrics import Metrics, parse_exposition

AS_OF = datetime(2021, 5, 19, 14, tzinfo=UTC)


def _snapshot() -> Snapshot:
    return Snapshot(
        as_of=AS_OF,
        computed_at=AS_OF + timedelta(seconds=21),
        live=True,
        state="cascade",
        state_code=3,
        risk_multiplier=0.2,
        reasons=["cascade level strict"],
        cfi=2.5,
        cfi_percentile=0.97,
        cfi_quintile=5,
        cascade_level="strict",
        cascade_level_code=4,
        episode_id="2021-05-19T13",
        features={"agg_funding_z": 2.2, "funding_dispersion": 1e-5, "gap_bybit": 2e-6, "btc_ret_1h": -0.06,
                  "btc_ret_4h": -0.11, "funding_gap": None},
        components={"funding_z": 2.2, "dispersion_z": 1.1},
        data_quality=DataQuality(status="degraded", coverage=0.9, stale_sources=["bybit:funding"]),
    )  # fmt: skip


async def _scrape(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, await r.text()


async def test_scrape_carries_regime_gauges_and_counters() -> None:
    """A real HTTP scrape shows the snapshot's values and the counters the daemon fed."""
    metrics = Metrics(clock=lambda: AS_OF.timestamp() + 120)
    metrics.state.snapshot = _snapshot()
    metrics.state.newest_data[("binance", "ohlcv")] = AS_OF.timestamp() - 3600
    metrics.request_hook("binance", "klines", "ok")
    metrics.request_hook("binance", "klines", "rate_limited")
    metrics.alerts_sent.labels("telegram", "critical").inc()
    metrics.alerts_suppressed.labels("duplicate").inc()
    metrics.cycle_duration.observe(0.4)
    metrics.success("cycle", 1234.0)
    server = await MetricsServer(metrics, "127.0.0.1", 0).start()
    try:
        status, text = await _scrape(f"http://127.0.0.1:{server.port}/metrics")
    finally:
        await server.stop()
    assert status == 200
    m = parse_exposition(text)
    assert m[("riskd_cfi", ())] == 2.5
    assert m[("riskd_cfi_percentile_ratio", ())] == 0.97
    assert m[("riskd_cfi_component", (("component", "dispersion_z"),))] == 1.1
    assert m[("riskd_regime_state", ())] == 3
    assert m[("riskd_regime", (("state", "cascade"),))] == 1
    assert m[("riskd_regime", (("state", "calm"),))] == 0
    assert m[("riskd_cascade_level", ())] == 4
    assert m[("riskd_risk_multiplier_ratio", ())] == 0.2
    assert m[("riskd_funding_zscore", ())] == 2.2
    assert m[("riskd_funding_gap_hourly_ratio", (("venue_pair", "binance-bybit"),))] == 2e-6
    assert ("riskd_funding_gap_hourly_ratio", (("venue_pair", "binance-others"),)) not in m  # None -> absent
    assert m[("riskd_btc_return_ratio", (("window", "1h"),))] == -0.06
    assert m[("riskd_funding_dispersion_hourly_ratio", ())] == 1e-5
    assert m[("riskd_data_age_seconds", (("dataset", "ohlcv"), ("venue", "binance")))] == 3720
    assert m[("riskd_data_degraded", ())] == 1
    assert m[("riskd_exchange_requests_total", (("endpoint", "klines"), ("outcome", "rate_limited"),
                                                ("venue", "binance")))] == 1  # fmt: skip
    assert m[("riskd_alerts_sent_total", (("channel", "telegram"), ("severity", "critical")))] == 1
    assert m[("riskd_alerts_suppressed_total", (("reason", "duplicate"),))] == 1
    assert m[("riskd_cycle_duration_seconds_count", ())] == 1
    assert m[("riskd_last_success_timestamp_seconds", (("stage", "cycle"),))] == 1234.0
    assert any(k[0] == "riskd_build_info" for k in m)


async def test_scrape_before_first_cycle_is_valid_and_sparse() -> None:
    """With no snapshot yet the scrape succeeds and simply has no regime gauges."""
    server = await MetricsServer(Metrics(), "127.0.0.1", 0).start()
    try:
        status, text = await _scrape(f"http://127.0.0.1:{server.port}/metrics")
        regime_status, _ = await _scrape(f"http://127.0.0.1:{server.port}/regime")
    finally:
        await server.stop()
    assert status == 200
    assert "riskd_cfi " not in text
    assert "riskd_build_info" in text
    assert regime_status == 503


async def test_regime_endpoint_serves_the_snapshot_json() -> None:
    """/regime returns the published snapshot (plus its freshness verdict, which readers ignore)."""
    metrics = Metrics(clock=lambda: AS_OF.timestamp() + 120)
    metrics.state.snapshot = _snapshot()
    server = await MetricsServer(metrics, "127.0.0.1", 0).start()
    try:
        status, text = await _scrape(f"http://127.0.0.1:{server.port}/regime")
    finally:
        await server.stop()
    assert status == 200
    assert read_snapshot(text) == _snapshot()


def test_health_fails_after_cycles_stop() -> None:
    """/healthz turns 503 when no cycle succeeded for 2.5 hours, and is ok while they do."""
    metrics = Metrics()
    now = time.time()
    metrics.state.last_cycle_ok = now - 60
    assert health(metrics.state, now)[0] == 200
    metrics.state.last_cycle_ok = now - 3 * 3600
    status, body = health(metrics.state, now)
    assert status == 503
    assert body["status"] == "failing"
