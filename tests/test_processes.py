"""riskd as a process: `riskd run` signals, a killed daemon's key expiring, replay, demo, embedded Redis."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
import redis

from riskd.client import read_regime
from riskd.commands.replay import replay
from riskd.config import load_settings
from riskd.contract.keys import Keys
from riskd.contract.snapshot import snapshots_of
from riskd.core import compute_fragility
from riskd.daemon.embedded import answers, free_port
from riskd.daemon.wiring import resolve_redis
from riskd.market import store_panel
from riskd.store import HistoryStore
from riskd.testing.fake_exchange import FakeExchange
from riskd.testing.sample import load_sample_store
from riskd.testing.synthetic import synthetic_market

SYMS = ["BTC", "ETH", "SOL"]


@pytest.fixture
def live_exchange():
    """A fake exchange on the wall clock, with history up to now (its newest candle still open)."""
    now = pd.Timestamp.now(tz="UTC").floor("h")
    history = synthetic_market(SYMS, now - pd.Timedelta(days=12), hours=12 * 24 + 2, seed=5)
    fx = FakeExchange(history, now=lambda: pd.Timestamp.now(tz="UTC")).start_in_thread()
    yield fx
    fx.stop()


def _env(tmp_path: Path, fx: FakeExchange, redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKD_")}
    return {
        **env,
        **fx.env(),
        "RISKD_DATA_DIR": str(tmp_path),
        "RISKD_UNIVERSE__SYMBOLS": '["BTC","ETH","SOL"]',
        "RISKD_REDIS__URL": redis_url,
        "RISKD_REDIS__KEY_PREFIX": prefix,
        "RISKD_METRICS__PORT": "0",
        "RISKD_DAEMON__WARMUP_HOURS": "240",
        "RISKD_VENUES__BYBIT__RATE_LIMIT_MS": "1",
        "RISKD_VENUES__BINANCE__RATE_LIMIT_MS": "1",
        "RISKD_VENUES__HYPERLIQUID__RATE_LIMIT_MS": "1",
        **extra,
    }


def _wait_for_key(client: redis.Redis, key: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.exists(key):
            return
        if proc.poll() is not None:
            raise AssertionError(f"riskd exited early with {proc.returncode}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.2)
    raise AssertionError("riskd did not publish in time")


def test_run_publishes_then_exits_0_on_sigterm(tmp_path: Path, live_exchange, redis_url: str) -> None:
    """`riskd run` cold-starts from the venues, publishes the regime, and SIGTERM ends it with status 0."""
    prefix = f"riskd-test-{uuid.uuid4().hex[:8]}:v1"
    env = _env(tmp_path, live_exchange, redis_url, prefix)
    proc = subprocess.Popen(
        [sys.executable, "-m", "riskd", "run"], env=env, stderr=subprocess.PIPE, text=True
    )
    client = redis.Redis.from_url(redis_url)
    try:
        _wait_for_key(client, Keys(prefix).regime, proc)
        reading = read_regime(client, prefix=prefix)
        assert reading.ok, reading.reason
        assert reading.snapshot.as_of == (pd.Timestamp.now(tz="UTC").floor("h")).to_pydatetime()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "riskd stopped" in proc.stderr.read()
    assert client.get(Keys(prefix).leader) is None  # a clean stop hands the lease back at once
    client.close()


def test_killed_daemon_key_expires_and_reads_unknown(tmp_path: Path, live_exchange, redis_url: str) -> None:
    """After `kill -9` the key vanishes at its expiry and read_regime reports unknown, not the old state."""
    prefix = f"riskd-test-{uuid.uuid4().hex[:8]}:v1"
    env = _env(tmp_path, live_exchange, redis_url, prefix, RISKD_REDIS__KEY_TTL_CYCLES="0.001")  # 3.6 s
    proc = subprocess.Popen(
        [sys.executable, "-m", "riskd", "run"], env=env, stderr=subprocess.PIPE, text=True
    )
    client = redis.Redis.from_url(redis_url)
    try:
        _wait_for_key(client, Keys(prefix).regime, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert read_regime(client, prefix=prefix).ok
        time.sleep(4.0)
        reading = read_regime(client, prefix=prefix)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert reading.status == "unknown"
    assert reading.snapshot is None
    client.close()


async def test_replay_publishes_exactly_the_batch_values(tmp_path: Path, redis_url: str) -> None:
    """A replay of the bundled sample publishes every hour's batch values to the key and the stream."""
    prefix = f"riskd-test-{uuid.uuid4().hex[:8]}:v1"
    settings = load_settings(
        data_dir=tmp_path,
        universe={"symbols": ["BTC", "ETH", "XRP", "LTC", "ADA", "SOL", "DOGE", "LINK"]},
        venues={"bybit": {"enabled": False}, "hyperliquid": {"enabled": False}},
        redis={"url": redis_url, "key_prefix": prefix},
        metrics={"port": 0},
    )
    load_sample_store(settings.store_dir)

    class Quiet:
        name, max_per_minute = "console", None

        def __init__(self) -> None:
            self.destinations = ["quiet"]

        async def send(self, dest: str, text: str, *, silent: bool, chart: bytes | None) -> str:
            return "ok"

        async def aclose(self) -> None:
            return None

    result = await replay(settings, None, None, channel=Quiet())
    last = pd.Timestamp(result.snapshots[-1].as_of) - pd.Timedelta(hours=1)
    panel = store_panel(
        HistoryStore(settings.store_dir), settings.fragility, settings.universe.symbols, ["binance"], last
    )
    batch = snapshots_of(
        compute_fragility(panel, settings.fragility), computed_at=result.snapshots[0].computed_at
    )
    assert len(result.snapshots) == len(batch) == 52 * 24
    for got, want in zip(result.snapshots, batch, strict=True):
        assert got.as_of == want.as_of
        assert (got.state, got.risk_multiplier, got.cascade_level, got.episode_id) == (
            want.state,
            want.risk_multiplier,
            want.cascade_level,
            want.episode_id,
        )
        assert got.features == want.features
        assert (got.cfi, got.cfi_percentile) == (want.cfi, want.cfi_percentile)
    client = redis.Redis.from_url(redis_url)
    assert client.xlen(Keys(prefix).history) == len(batch)
    client.close()


def test_demo_exits_0_and_shows_the_crash(redis_url: str) -> None:
    """`riskd demo` replays May 2021 live through Redis and alerts, and exits 0 well inside 120 s."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKD_")}
    env.update({"RISKD_REDIS__URL": redis_url, "RISKD_METRICS__PORT": "0", "RISKD_LOG_LEVEL": "WARNING"})
    out = subprocess.run(
        [sys.executable, "-m", "riskd", "demo", "--hours-per-second", "10"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "2021-05-19" in out.stdout
    assert "cascade" in out.stdout
    assert "Cascade started" in out.stdout  # an alert, on the console (no token configured)
    assert "read_regime -> ok" in out.stdout
    assert re.search(r"redis-cli -h \S+ -p \d+ -n \d+ GET riskd-demo-[0-9a-f]{8}:v1:regime", out.stdout)


def test_demo_minutes_warns_before_the_crash_hour_closes(redis_url: str) -> None:
    """`riskd demo --minutes` replays 2021-05-19 from the shipped real 1 m/5 m bars through ccxt.pro and
    the minute streams: the crash hour (12:00-13:00 UTC, BTC -9 %) gets a provisional level minutes before
    its close, the hour close confirms it, and the synthetic liquidations are said to be synthetic."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKD_")}
    env.update({"RISKD_REDIS__URL": redis_url, "RISKD_METRICS__PORT": "0", "RISKD_LOG_LEVEL": "WARNING"})
    out = subprocess.run(
        [sys.executable, "-m", "riskd", "demo", "--minutes"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
    crash = re.search(
        r">> 12:00-13:00 UTC  BTC\s+-9\.0%  hourly: cascade, level (\w+)  \| provisional (developing|severe) "
        r"at 12:(\d\d), (\d+) min before the close -> confirmed",
        out.stdout,
    )
    assert crash, out.stdout[-4000:]
    assert crash.group(1) != "none"  # the hourly path saw the cascade too
    assert 1 <= int(crash.group(4)) <= 59
    assert int(crash.group(3)) + int(crash.group(4)) == 60
    assert ">> 08:00-09:00 UTC" in out.stdout  # every hour is reported
    assert "Cascade developing (provisional" in out.stdout  # the alert itself, on the console
    # The crash hour's own alert is sent, not held by the cooldown of the 11:27 one (issue 17, finding 6).
    sent = re.search(
        r"Hour ending 2021-05-19 13:00 UTC · minute 12:(\d\d) \((\d+) min before the close\)", out.stdout
    )
    assert sent, out.stdout[-4000:]
    assert int(sent.group(2)) >= 10
    assert re.search(r"hour ending 13:00 UTC \(BTC -9\.0%.*\(alert sent\)", out.stdout), out.stdout[-2000:]
    assert "Liquidations in this demo are SYNTHETIC" in out.stdout
    # Issue 21, item 7: the hour before the replay is the baseline, not a catch-up alert; and "Confirmed
    # at the hour close (provisional alert above)" only under an hour whose provisional alert was printed.
    assert "[LATE" not in out.stdout
    assert "Catch-up" not in out.stdout
    blocks = out.stdout.split("─" * 60)
    for i, block in enumerate(blocks):
        if "Confirmed at the hour close (provisional alert above)" in block:
            hour = re.search(r"Hour ending (\S+ \S+) UTC", block)
            assert hour, block
            earlier = "".join(blocks[:i])
            assert "Cascade developing (provisional" in earlier
            assert re.search(rf"Hour ending {hour.group(1)} UTC · minute", earlier), block


def test_embedded_redis_starts_when_none_answers(tmp_path: Path) -> None:
    """With no redis.url and nothing on the default port, riskd starts its own persistent redis-server."""
    port = free_port()
    settings = load_settings(data_dir=tmp_path)
    url, server = resolve_redis(settings, default_port=port)
    try:
        assert server is not None
        assert url == f"redis://127.0.0.1:{port}/0"
        assert answers("127.0.0.1", port)
        assert (tmp_path / "redis").is_dir()  # persistence lives in riskd's data dir
    finally:
        if server is not None:
            server.stop()


_HUNG_SHUTDOWN = """
import asyncio, time
from riskd.daemon.shutdown import install_signal_handlers

def stuck_in_shutdown() -> None:
    time.sleep(60)  # a synchronous call that never returns, as a hung C library would

async def main() -> None:
    stop = asyncio.Event()
    install_signal_handlers(stop, 1.0)
    print("ready", flush=True)
    await stop.wait()
    stuck_in_shutdown()

asyncio.run(main())
"""


def test_a_hung_shutdown_prints_its_stacks_and_exits_at_the_deadline() -> None:
    """After SIGTERM, a shutdown stuck past the deadline is not waited out: every thread's stack goes to
    stderr, naming where it hung, and the process exits 1 (systemd and tests see a failure, not a hang)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HUNG_SHUTDOWN], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=20)
        waited = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert status == 1
    assert 1.0 <= waited < 15, waited
    assert "Timeout (0:00:01)!" in stderr
    assert "stuck_in_shutdown" in stderr
