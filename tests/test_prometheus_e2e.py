"""Proof on a real Prometheus: every PromQL expression of the dashboards and the rules reads real data.

A real ``riskd replay --hold`` publishes three days of a seeded synthetic market (all three venues'
funding, Binance candles and open interest, a liquidation cascade planted near the end) and keeps
serving its metrics; a real Prometheus (Debian's binary, installed by scripts/promtool-check.sh when
missing) scrapes it every second with the job and rules of deploy/prometheus/. Then:

- every dashboard expression returns at least one number (a NaN-only answer, such as a histogram
  quantile of no observations, counts as no data: Grafana draws nothing for it either);
- every vector selector of every alert rule returns data (the alert expressions themselves are
  comparisons that are, rightly, empty on a healthy riskd), and the expression evaluates without error;
- what a replay cannot produce (no exchange traffic, no fetch, no hourly cycle) is named in
  ``REPLAY_EMPTY`` with its reason, and each entry is proven still true, so the list cannot go stale;
- the funding gap has a series for every documented venue pair, the planted cascade reaches
  Prometheus (cascade regime, RiskdCascadeInProgress firing) and the Watchdog fires.

The synthetic market rather than the bundled May 2021 sample: the sample has Binance data only, so the
cross-venue funding gaps (``riskd_funding_gap_hourly_ratio``) would have no series.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from riskd.testing.promql import (
    Selector,
    base_metric,
    dashboard_queries,
    documented_metrics,
    rule_queries,
    substitute,
    vector_selectors,
)

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

VENUES = ("binance", "bybit", "hyperliquid")
MARKET_START = pd.Timestamp("2024-03-01", tz="UTC")
MARKET_HOURS = 24 * 21  # z-scores need 72 h, the CFI percentile 168 more: 3 weeks warms everything
REPLAY_FROM = MARKET_START + pd.Timedelta(hours=MARKET_HOURS - 72)  # the batch path warms up to here
REPLAY_TO = MARKET_START + pd.Timedelta(hours=MARKET_HOURS - 1)  # the last candle's open time
CASCADE_AT = REPLAY_TO - pd.Timedelta(hours=3)  # within the 6 h cascade hold at the end of the replay
"""A -8 % hour on every symbol with 12x volume: BTC level ≥ volume_only and the multi-asset detector."""


@dataclass(frozen=True)
class ReplayEmpty:
    """A selector a replay legitimately leaves without data, why, and the query proving it still is."""

    reason: str
    proof: str
    """PromQL that returns data once riskd does export the selector under replay (then drop the entry)."""


REPLAY_EMPTY: dict[str, ReplayEmpty] = {
    # keyed by documented metric name (every selector of it) or by one exact selector
    "riskd_exchange_requests_total": ReplayEmpty(
        "replay runs without sources (runtime(with_sources=False)): it sends no exchange request, and "
        "Metrics.declare_endpoints is only called for a venue that has a source",
        "riskd_exchange_requests_total",
    ),
    "riskd_data_age_seconds": ReplayEmpty(
        "LiveState.newest_data is filled by Daemon._note_fetch after a fetch; replay reads the store "
        "and never fetches",
        "riskd_data_age_seconds",
    ),
    'riskd_last_success_timestamp_seconds{stage="cycle"}': ReplayEmpty(
        'success("cycle") is recorded by Daemon.run_once; replay publishes hours without running '
        "cycles (of the stages only redis succeeds)",
        'riskd_last_success_timestamp_seconds{stage="cycle"}',
    ),
    "riskd_cycle_duration_seconds": ReplayEmpty(
        "cycle durations are observed by Daemon.run_once; replay runs no cycle, so the histogram "
        "exists with no observation and its quantiles and mean are NaN",
        "riskd_cycle_duration_seconds_count > 0",
    ),
}


def _prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found:
        return found
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "promtool-check.sh"), "--install-only"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    found = shutil.which("prometheus")
    if not found:
        pytest.fail(
            "no prometheus binary, and installing Debian's package failed (run scripts/promtool-check.sh "
            f"as root, or install Prometheus): {done.stderr[-400:]}"
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, ""


def _wait(what: str, check: Any, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            pytest.fail(f"{what}: process exited with {proc.returncode}\n{log.read_text()[-8000:]}")
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}\n{log.read_text()[-8000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> str:
    """SIGTERM, then SIGKILL after 20 s; says which of the three ways the process ended."""
    if proc.poll() is not None:
        return f"had already exited with {proc.returncode} before SIGTERM (killed from outside? OOM?)"
    proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        return f"ignored SIGTERM for 20 s and was killed ({proc.returncode})"
    return f"exited with {proc.returncode} {time.monotonic() - t0:.1f} s after SIGTERM"


def _scrape(port: int) -> dict[str, float]:
    """Unlabelled samples of a riskd /metrics page, by name (empty while it does not answer)."""
    status, body = _get(f"http://127.0.0.1:{port}/metrics")
    out = {}
    for line in body.splitlines() if status == 200 else []:
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#") and "{" not in parts[0]:
            out[parts[0]] = float(parts[1])
    return out


def write_market_store(root: Path) -> None:
    """The seeded synthetic market of this module into a fresh store at ``root``, as a backfill lays it
    out: Binance candles and open interest, funding from all three venues."""
    from riskd.config import UniverseSettings
    from riskd.store import HistoryStore
    from riskd.testing.synthetic import synthetic_market

    symbols = UniverseSettings().symbols  # what the replaying riskd follows (RISKD_* is not set)
    market = synthetic_market(
        symbols, MARKET_START, MARKET_HOURS, seed=11, cascades=[(CASCADE_AT, 0.08, 12.0, None)]
    )
    store = HistoryStore(root)
    for symbol in market.symbols:
        store.append("ohlcv", "binance", symbol, market.ohlcv["binance"][symbol])
        store.append("open_interest", "binance", symbol, market.open_interest["binance"][symbol])
        for venue in VENUES:
            store.append("funding", venue, symbol, market.funding[venue][symbol])


@pytest.fixture(scope="module")
def replaying_riskd(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[int]:
    """A riskd that has replayed the market and holds its metrics; yields its metrics port."""
    tmp = tmp_path_factory.mktemp("riskd")
    data_dir = tmp / "data"
    write_market_store(data_dir / "store")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKD_")}
    env.update(
        RISKD_DATA_DIR=str(data_dir),
        RISKD_REDIS__URL=redis_url,
        RISKD_REDIS__KEY_PREFIX=f"riskd-e2e-{port}:v1",
        RISKD_METRICS__HOST="127.0.0.1",
        RISKD_METRICS__PORT=str(port),
    )
    cmd = [sys.executable, "-m", "riskd", "replay", "--from", REPLAY_FROM.isoformat()]
    cmd += ["--to", REPLAY_TO.isoformat(), "--alerts", "console", "--metrics-port", str(port), "--hold"]
    log = tmp / "riskd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    try:
        last_as_of = (REPLAY_TO + pd.Timedelta(hours=1)).timestamp()

        def replayed() -> bool:  # the last hour is published and every alert is delivered
            metrics = _scrape(port)
            return (
                metrics.get("riskd_snapshot_as_of_timestamp_seconds", 0.0) >= last_as_of
                and metrics.get("riskd_alerts_outbox_size") == 0
            )

        _wait("riskd replay to publish its last hour", replayed, proc, log, timeout=120)
        yield port
    finally:
        how = _stop(proc)
    assert how.startswith("exited with 0 "), f"riskd replay {how}\n{log.read_text()[-8000:]}"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, replaying_riskd: int) -> Iterator[str]:
    """A real Prometheus scraping the replaying riskd every second with our job and rules."""
    import yaml

    binary = _prometheus_binary()
    tmp = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(ROOT / "deploy/prometheus/rules" / "*.yml")]
    config.pop("alerting", None)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "riskd")
    job["static_configs"] = [{"targets": [f"127.0.0.1:{replaying_riskd}"]}]
    config["scrape_configs"] = [job]
    config_file = tmp / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "prometheus.log"
    cmd = [binary, f"--config.file={config_file}", f"--storage.tsdb.path={tmp / 'tsdb'}"]
    cmd += [f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    try:
        _wait("Prometheus to be ready", lambda: _get(f"{url}/-/ready")[0] == 200, proc, log, timeout=60)

        def scraped_enough() -> bool:  # rate() and increase() need two samples; five leave a margin
            samples = _query(url, 'count_over_time(up{job="riskd"}[1h])')
            watchdog = _query(url, 'ALERTS{alertname="Watchdog", alertstate="firing"}')
            return bool(samples) and float(samples[0]["value"][1]) >= 5 and bool(watchdog)

        _wait("five scrapes of riskd and a rule evaluation", scraped_enough, proc, log, timeout=60)
        yield url
    finally:
        _stop(proc)


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    status, body = _get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    if status != 200:
        raise AssertionError(f"query failed ({status}): {expr}\n{body[:500]}")
    return json.loads(body)["data"]["result"]


def _has_data(result: list[dict[str, Any]]) -> bool:
    """At least one sample that is a number (±Inf included), not NaN."""
    return any(not math.isnan(float(r["value"][1])) for r in result)


def _allowance(sel: Selector, docs: dict[str, Any]) -> str | None:
    """The REPLAY_EMPTY key covering ``sel``, if any (the dashboards' ``$instance`` scope aside)."""
    unscoped = Selector(sel.name, tuple(m for m in sel.matchers if m[0] != "instance"), sel.range)
    for key in (unscoped.promql(), base_metric(sel.name, docs)):
        if key in REPLAY_EMPTY:
            return key
    return None


def test_every_dashboard_and_rule_query_returns_data(prometheus: str) -> None:
    """Each dashboard expression returns numbers and each selector of each alert rule reads data,
    except where a selector is named in REPLAY_EMPTY; every entry there is used and still true."""
    docs = documented_metrics(ROOT / "docs" / "metrics.md")
    empty: list[str] = []
    used: dict[str, list[str]] = {}

    def check(where: str, expr: str, selectors: list[Selector]) -> None:
        if _has_data(_query(prometheus, expr)):
            return
        keys = [k for k in (_allowance(s, docs) for s in selectors) if k]
        if keys:
            for key in keys:
                used.setdefault(key, []).append(where)
        else:
            empty.append(where)

    dashboards = dashboard_queries(ROOT)
    assert dashboards
    for q in dashboards:
        expr = substitute(q.expr)
        check(f"{q.source}: {q.expr}", expr, vector_selectors(expr))
    rules = rule_queries(ROOT)
    assert rules
    for q in rules:
        _query(prometheus, q.expr)  # evaluates without error (its result may rightly be empty)
        for sel in vector_selectors(q.expr):
            check(f"{q.source}: selector {sel.promql()} of {q.expr!r}", sel.promql(), [sel])

    assert not empty, "queries that returned no data:\n" + "\n".join(empty)
    unused = sorted(set(REPLAY_EMPTY) - set(used))
    assert not unused, f"REPLAY_EMPTY entries no dashboard or rule query needs (remove them): {unused}"
    stale = {k: e.proof for k, e in REPLAY_EMPTY.items() if _has_data(_query(prometheus, e.proof))}
    assert not stale, (
        f"riskd replay now exports what REPLAY_EMPTY says it cannot (remove these entries): {stale}"
    )


def test_funding_gap_has_every_documented_venue_pair(prometheus: str) -> None:
    """All three venues have funding, so each documented venue pair of the gap has a series."""
    documented = documented_metrics(ROOT / "docs" / "metrics.md")["riskd_funding_gap_hourly_ratio"]
    pairs = documented.labels["venue_pair"]
    assert pairs, "docs/metrics.md lists no venue_pair values for riskd_funding_gap_hourly_ratio"
    result = _query(prometheus, 'riskd_funding_gap_hourly_ratio{job="riskd"}')
    got = {r["metric"]["venue_pair"] for r in result if _has_data([r])}
    assert got == set(pairs)


def test_planted_cascade_reaches_prometheus(prometheus: str) -> None:
    """The cascade planted 3 h before the end holds the cascade regime, fires RiskdCascadeInProgress
    in Prometheus, and went out as console alerts."""
    (state,) = _query(prometheus, 'riskd_regime{job="riskd", state="cascade"}')
    assert state["value"][1] == "1"
    (code,) = _query(prometheus, 'riskd_regime_state{job="riskd"}')
    assert code["value"][1] == "3"
    (multiplier,) = _query(prometheus, 'riskd_risk_multiplier_ratio{job="riskd"}')
    assert float(multiplier["value"][1]) < 1
    assert _query(prometheus, 'ALERTS{alertname="RiskdCascadeInProgress", alertstate="firing"}')
    sent = _query(prometheus, 'sum(riskd_alerts_sent_total{channel="console", severity="critical"})')
    assert float(sent[0]["value"][1]) >= 1


def test_watchdog_fires_in_a_real_prometheus(prometheus: str) -> None:
    """The rule files load and evaluate: the always-on Watchdog is firing and riskd is up."""
    assert _query(prometheus, 'ALERTS{alertname="Watchdog", alertstate="firing"}')
    (up,) = _query(prometheus, 'up{job="riskd"}')
    assert up["value"][1] == "1"
