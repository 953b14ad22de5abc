"""The HTTP API over real HTTP: /regime's freshness verdict, the probes, /history from a real Redis,
schemas, OpenAPI, runbooks and the bearer token."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import yaml
from _contract import T0, make_snapshot

from riskd.config import MetricsSettings, RedisSettings
from riskd.contract import schemas as contract
from riskd.contract.codec import read_snapshot
from riskd.contract.keys import Keys
from riskd.contract.models import DataQuality
from riskd.http.history import RedisHistory
from riskd.http.server import MetricsServer
from riskd.sinks.metrics import Metrics
from riskd.sinks.redis import RedisSink

ROOT = Path(__file__).resolve().parents[1]
AS_OF = T0 + timedelta(hours=13)
STALE_DATA = DataQuality(status="stale", coverage=0.1, missing_sources=["binance:ohlcv"])


class Clock:
    """The data clock the server judges snapshot age with (settable, like a replay's)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now.timestamp()


@pytest.fixture
def clock() -> Clock:
    return Clock(AS_OF + timedelta(minutes=2))


async def _server(clock: Clock, **kw: Any) -> MetricsServer:
    metrics = Metrics(clock=clock)
    metrics.state.last_cycle_ok = metrics.state.started_at
    return await MetricsServer(metrics, "127.0.0.1", 0, **kw).start()


@pytest.fixture
async def server(clock: Clock) -> AsyncIterator[MetricsServer]:
    srv = await _server(clock)
    yield srv
    await srv.stop()


async def _get(srv: MetricsServer, path: str, **kw: Any) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{srv.port}{path}", **kw) as r:
        return r.status, dict(r.headers), await r.text()


async def test_readyz_goes_503_on_stale_data_and_200_when_fresh_again(
    server: MetricsServer, clock: Clock
) -> None:
    """Readiness follows the data: fresh → 200, a snapshot computed from stale data → 503 (liveness stays 200
    and says degraded), fresh again → 200, and an hour missed beyond max_age → 503."""
    state = server.metrics.state
    assert (await _get(server, "/readyz"))[0] == 503  # nothing published yet
    state.snapshot = make_snapshot(AS_OF, "calm")
    status, _, body = await _get(server, "/readyz")
    assert (status, json.loads(body)["data"]["status"]) == (200, "fresh")
    state.snapshot = make_snapshot(AS_OF, "calm", data_quality=STALE_DATA)
    status, _, body = await _get(server, "/readyz")
    assert status == 503
    assert json.loads(body)["reasons"] == ["computed from stale data (binance:ohlcv)"]
    status, _, body = await _get(server, "/healthz")
    assert (status, json.loads(body)["status"]) == (200, "degraded")
    state.snapshot = make_snapshot(AS_OF, "calm")
    assert (await _get(server, "/readyz"))[0] == 200
    clock.now = AS_OF + timedelta(hours=2, minutes=1)
    status, _, body = await _get(server, "/readyz")
    assert status == 503
    assert json.loads(body)["data"]["status"] == "stale"


async def test_a_venue_down_makes_health_degraded_and_not_ready(server: MetricsServer) -> None:
    """venue_health 'down' keeps /healthz at 200 (it is liveness) with status degraded, and /readyz at 503."""
    server.metrics.state.snapshot = make_snapshot(AS_OF, "elevated")
    server.metrics.state.venue_health = {"binance": "ok", "bybit": "down", "hyperliquid": "degraded"}
    status, _, body = await _get(server, "/healthz")
    health = json.loads(body)
    assert (status, health["status"], health["venues_down"]) == (200, "degraded", ["bybit"])
    status, _, body = await _get(server, "/readyz")
    assert (status, json.loads(body)["reasons"]) == (503, ["venues unreachable: bybit"])


async def test_healthz_fails_when_cycles_stop(server: MetricsServer) -> None:
    """No cycle for 2.5 h makes /healthz 503 'failing' (the process is stuck, restart it)."""
    server.metrics.state.snapshot = make_snapshot(AS_OF, "calm")
    server.metrics.state.last_cycle_ok = server.metrics.state.started_at - 3 * 3600
    status, _, body = await _get(server, "/healthz")
    assert (status, json.loads(body)["status"]) == (503, "failing")


async def test_regime_serves_fresh_state_with_cache_headers(server: MetricsServer, clock: Clock) -> None:
    """A fresh regime is 200, a valid v1 snapshot plus its verdict; Age is the seconds since it was computed
    and max-age runs to when the next hour is due."""
    snap = make_snapshot(AS_OF, "fragile")
    server.metrics.state.snapshot = snap
    status, headers, body = await _get(server, "/regime")
    assert status == 200
    payload = json.loads(body)
    assert payload["freshness"] == {
        "status": "fresh",
        "usable": True,
        "reason": "fresh",
        "age_seconds": 120.0,
    }
    assert read_snapshot(payload) == snap
    assert headers["Age"] == "99"  # computed 21 s after the hour, asked 120 s after
    assert headers["Cache-Control"] == "max-age=3600"  # due at as_of + 1 h + 120 s grace: 3600 s from now


async def test_regime_refuses_to_serve_a_stale_snapshot_as_current(
    server: MetricsServer, clock: Clock
) -> None:
    """An old snapshot, or one computed from stale data, is 503 with state unknown; the last snapshot is
    kept aside under last_snapshot, never at the top level where a bot would read it."""
    server.metrics.state.snapshot = make_snapshot(AS_OF, "calm")
    clock.now = AS_OF + timedelta(days=700)
    status, headers, body = await _get(server, "/regime")
    payload = json.loads(body)
    assert (status, payload["state"], payload["freshness"]["status"]) == (503, "unknown", "stale")
    assert payload["freshness"]["reason"] == "last state is for 2021-05-19T13:00:00Z, 16800.0 h old"
    assert payload["last_snapshot"]["state"] == "calm"
    assert "risk_multiplier" not in payload
    assert headers["Cache-Control"] == "no-store"
    clock.now = AS_OF + timedelta(minutes=5)
    server.metrics.state.snapshot = make_snapshot(AS_OF, "calm", data_quality=STALE_DATA)
    status, _, body = await _get(server, "/regime")
    assert (status, json.loads(body)["freshness"]["status"]) == (503, "stale")


async def test_regime_serves_degraded_data_flagged(server: MetricsServer) -> None:
    """Degraded data is still the current regime (200), flagged in the verdict."""
    dq = DataQuality(status="degraded", coverage=0.9, stale_sources=["bybit:funding"])
    server.metrics.state.snapshot = make_snapshot(AS_OF, "elevated", data_quality=dq)
    status, _, body = await _get(server, "/regime")
    assert status == 200
    assert json.loads(body)["freshness"]["status"] == "degraded"
    assert json.loads(body)["freshness"]["reason"] == "degraded data: bybit:funding stale or missing"


async def test_history_reads_the_stream_newest_revision_per_hour(redis_url: str, clock: Clock) -> None:
    """/history returns the hours of [from, to] from the real stream, oldest first, the highest revision of
    an hour that was restated, and skips entries that are not snapshots."""
    prefix = f"riskd-api-{uuid.uuid4().hex[:8]}:v1"
    client = aioredis.Redis.from_url(redis_url)
    sink = RedisSink(client, RedisSettings(key_prefix=prefix))
    for h in range(6):
        await sink.publish(make_snapshot(T0 + timedelta(hours=h), "calm", cfi=float(h)))
    restated = make_snapshot(T0 + timedelta(hours=2), "fragile", cfi=9.0, revision=1, restated=True)
    stream = Keys(prefix).history
    await client.xadd(stream, {"json": restated.to_json()})  # written later, under a later id
    await client.xadd(stream, {"junk": "x"})
    srv = await _server(clock, history=RedisHistory(client, prefix))
    try:
        status, _, body = await _get(srv, "/history?from=2021-05-19T01:00:00Z&to=2021-05-19T04:00:00Z")
        bad_status, _, bad = await _get(srv, "/history?from=yesterday")
        long_status, _, _ = await _get(srv, "/history?from=2021-01-01T00:00:00Z&to=2021-05-01T00:00:00Z")
    finally:
        await srv.stop()
        await client.aclose()
    payload = json.loads(body)
    assert status == 200
    assert [s["as_of"] for s in payload["snapshots"]] == [f"2021-05-19T0{h}:00:00Z" for h in (1, 2, 3, 4)]
    assert [s["cfi"] for s in payload["snapshots"]] == [1.0, 9.0, 3.0, 4.0]
    assert payload["snapshots"][1]["revision"] == 1
    assert (bad_status, json.loads(bad)["error"]) == (
        400,
        "from: not an RFC 3339 time: 'yesterday' (e.g. 2021-05-19T13:00:00Z)",
    )
    assert long_status == 400


async def test_schemas_and_openapi_are_served(server: MetricsServer) -> None:
    """/schema/<name> is the shipped file byte for byte, the index lists every schema, and /openapi.json
    is an OpenAPI 3.1 document that references the shipped regime schema."""
    for name in contract.NAMES:
        status, headers, text = await _get(server, f"/schema/{name}")
        assert (status, text) == (200, contract.shipped(name))
        assert headers["Content-Type"].startswith("application/schema+json")
    status, _, text = await _get(server, "/schema/")
    assert [s["name"] for s in json.loads(text)["schemas"]] == list(contract.NAMES)
    assert (await _get(server, "/schema/nope.json"))[0] == 404
    status, _, text = await _get(server, "/openapi.json")
    doc = json.loads(text)
    assert (status, doc["openapi"]) == (200, "3.1.0")
    assert {"/regime", "/history", "/healthz", "/readyz", "/schema/{name}", "/runbooks/{alert}"} <= set(
        doc["paths"]
    )
    base = f"http://127.0.0.1:{server.port}"
    assert doc["servers"] == [{"url": base}]
    assert f"{base}/schema/regime.v1.schema.json" in text


async def test_every_alert_has_a_runbook_page(server: MetricsServer) -> None:
    """Each alert of the Prometheus rules has a page at /runbooks/<alert>; an unknown one is 404."""
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules/riskd.rules.yml").read_text())
    alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
    for alert in alerts:
        status, headers, text = await _get(server, f"/runbooks/{alert}")
        assert status == 200, alert
        assert headers["Content-Type"].startswith("text/html")
        assert f"<h1>{alert}</h1>" in text
    status, _, text = await _get(server, "/runbooks/riskdsnapshotstale")  # case-insensitive
    assert status == 200
    assert "cycles are not" in text
    assert (await _get(server, "/runbooks/NoSuchAlert"))[0] == 404


async def test_bearer_token_protects_all_but_probes_and_runbooks(clock: Clock) -> None:
    """With a token, /regime, /metrics, /history and / answer 401 without it and 200 with it; the probes and
    runbooks stay open; ?token= in a browser sets a cookie and drops the token from the address."""
    settings = MetricsSettings(api_token="s3cret")  # type: ignore[arg-type]
    srv = await _server(clock, settings=settings)
    srv.metrics.state.snapshot = make_snapshot(AS_OF, "calm")
    auth = {"Authorization": "Bearer s3cret"}
    try:
        for path in ("/regime", "/metrics", "/", "/openapi.json"):
            assert (await _get(srv, path))[0] == 401, path
            assert (await _get(srv, path, headers={"Authorization": "Bearer wrong"}))[0] == 401, path
            assert (await _get(srv, path, headers=auth))[0] == 200, path
        for path in ("/healthz", "/readyz", "/runbooks/RiskdDown"):
            assert (await _get(srv, path))[0] == 200, path
        async with aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as s:  # unsafe: an IP host
            async with s.get(f"http://127.0.0.1:{srv.port}/?token=s3cret") as r:
                assert r.status == 200
                assert r.url.query_string == ""
            async with s.get(f"http://127.0.0.1:{srv.port}/regime") as r:
                assert r.status == 200  # the cookie carries the token
    finally:
        await srv.stop()
