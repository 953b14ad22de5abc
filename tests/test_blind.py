"""riskd blind (issue 17): every venue refuses connections. Nothing it publishes may read as calm.

``riskd once`` and ``riskd run`` run as processes against venues on a closed port and a real Redis; the key,
the stream, the events channel, the Prometheus gauge, ``/regime``, the status page, ``/healthz`` and the
Telegram ``/status`` text all say unknown, ``riskd once`` exits 3, and no history origin is written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from riskd.contract.codec import read_snapshot
from riskd.contract.freshness import judge
from riskd.contract.keys import Keys
from riskd.daemon.embedded import free_port
from riskd.errors import EXIT_BLIND
from riskd.sinks.metrics import parse_exposition
from riskd.telegram.format import Links, status_html

VENUES = ("binance", "bybit", "hyperliquid")


def _blind_env(tmp_path: Path, redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    """Every venue on a port nobody listens on; short deadlines so the blind hour goes out quickly."""
    closed = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKD_")}
    env.update({f"RISKD_VENUES__{v.upper()}__API_URL": closed for v in VENUES})
    env.update({
        "RISKD_DATA_DIR": str(tmp_path / "data"), "RISKD_UNIVERSE__SYMBOLS": '["BTC","ETH","SOL"]',
        "RISKD_REDIS__URL": redis_url, "RISKD_REDIS__KEY_PREFIX": prefix, "RISKD_METRICS__PORT": "0",
        "RISKD_DAEMON__FETCH_DEADLINE_S": "5", "RISKD_RETRY__ATTEMPTS": "2", "RISKD_RETRY__INITIAL_BACKOFF_S": "0.01",
        "RISKD_RETRY__MAX_BACKOFF_S": "0.02", "RISKD_RETRY__JITTER_S": "0", "RISKD_LOG_LEVEL": "WARNING", **extra,
    })  # fmt: skip
    return env


def _assert_published_unknown(client: redis.Redis, prefix: str) -> None:
    keys = Keys(prefix)
    key = read_snapshot(client.get(keys.regime))
    assert (key.state, key.state_code) == ("unknown", -1)
    assert key.risk_multiplier == 0.5  # regime.unknown_multiplier, the documented fail-safe
    entries = client.xrange(keys.history)
    assert entries
    assert all(json.loads(f[b"json"])["state"] == "unknown" for _, f in entries)
    assert client.get(keys.history_origin) is None  # an empty store pins nothing


def test_once_blind_publishes_unknown_exits_3_and_pins_no_origin(tmp_path: Path, redis_url: str) -> None:
    """`riskd once` with every venue unreachable publishes state unknown (code -1, fail-safe multiplier) to
    the key and the stream, prints it, exits 3, and writes no history origin (before: calm, exit 0, an
    origin pinned for good)."""
    prefix = f"riskd-test-{uuid.uuid4().hex[:8]}:v1"
    env = _blind_env(tmp_path, redis_url, prefix)
    out = subprocess.run([sys.executable, "-m", "riskd", "once"], env=env, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == EXIT_BLIND, out.stderr[-2000:]
    printed = json.loads(out.stdout.strip().splitlines()[-1])
    assert printed["state"] == "unknown"
    client = redis.Redis.from_url(redis_url)
    try:
        _assert_published_unknown(client, prefix)
        snap = read_snapshot(client.get(Keys(prefix).regime))
        now = datetime.now(UTC)
        text = status_html(snap, judge(snap, now=now), now=now, links=Links())
        assert "Regime <b>UNKNOWN</b>" in text  # Telegram /status
        assert "CALM" not in text
    finally:
        client.close()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_run_blind_says_unknown_on_every_face(tmp_path: Path, redis_url: str) -> None:
    """`riskd run` with every venue unreachable: the key, stream, events, riskd_regime_state (-1), /regime
    (503, unknown), the status page (UNKNOWN, no CALM) and /healthz (degraded) all say it cannot see."""
    prefix = f"riskd-test-{uuid.uuid4().hex[:8]}:v1"
    port = free_port()
    env = _blind_env(tmp_path, redis_url, prefix, RISKD_METRICS__PORT=str(port))
    client = redis.Redis.from_url(redis_url)
    events = client.pubsub()
    events.subscribe(Keys(prefix).events)
    proc = subprocess.Popen(
        [sys.executable, "-m", "riskd", "run"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 90
        while not client.exists(Keys(prefix).regime):
            assert proc.poll() is None, proc.stderr.read()[-2000:] if proc.stderr else ""
            assert time.monotonic() < deadline, "riskd run published nothing"
            time.sleep(0.2)
        _assert_published_unknown(client, prefix)
        pings = [m for m in iter(lambda: events.get_message(timeout=1.0), None) if m["type"] == "message"]
        assert pings
        assert all(json.loads(m["data"])["state"] == "unknown" for m in pings)
        base = f"http://127.0.0.1:{port}"
        scrape = parse_exposition(_get(f"{base}/metrics")[1])
        assert scrape[("riskd_regime_state", ())] == -1.0
        assert scrape[("riskd_regime", (("state", "unknown"),))] == 1.0
        assert scrape[("riskd_regime", (("state", "calm"),))] == 0.0
        status, body = _get(f"{base}/regime")
        assert status == 503
        assert json.loads(body)["state"] == "unknown"
        status, page = _get(f"{base}/")
        assert status == 200
        assert "UNKNOWN" in page
        assert ">CALM<" not in page
        status, health = _get(f"{base}/healthz")
        assert json.loads(health)["status"] == "degraded"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        events.close()
        client.close()
    assert proc.returncode == 0


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"RISKD_DATA_DIR": "/proc/riskd-cannot-be-here"}, "invalid setting data_dir (RISKD_DATA_DIR)"),
        ({"RISKD_DATA_DIR": "/etc/hostname/data"}, "/etc/hostname is not a directory"),
        ({"RISKD_RETRY__MAX_BACKOFF_S": "inf"}, "retry.max_backoff_s (RISKD_RETRY__MAX_BACKOFF_S)"),
        ({"RISKD_FRAGILITY__REGIME__UNKNOWN_MULTIPLIER": "nan"}, "fragility.regime.unknown_multiplier"),
    ],
)
def test_bad_data_dir_and_non_finite_numbers_exit_2_in_one_line(env: dict[str, str], needle: str) -> None:
    """An uncreatable data dir and inf/NaN numbers stop riskd at start with one line naming the setting
    and its source, exit 2 (before: accepted)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("RISKD_")}
    out = subprocess.run([sys.executable, "-m", "riskd", "once"], env={**base, **env}, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert needle in lines[0], out.stderr


def test_redis_unreachable_at_start_is_one_line_and_exit_4(tmp_path: Path) -> None:
    """`riskd once` with Redis on a closed port: one line naming the URL with its password redacted, exit 4
    (before: a 60-line traceback after 22 s, exit 1)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("RISKD_")}
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "riskd", "once"], capture_output=True, text=True, timeout=60,
        env={**base, "RISKD_DATA_DIR": str(tmp_path), "RISKD_REDIS__URL": url, "RISKD_METRICS__PORT": "0"},
    )  # fmt: skip
    assert out.returncode == 4, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("riskd: redis at redis://:**********@127.0.0.1:"), lines
    assert "hunter2" not in out.stderr + out.stdout
    assert time.monotonic() - t0 < 20


def test_unknown_riskd_variables_are_warned_once_with_the_closest_setting() -> None:
    """A misspelt RISKD_ variable (one underscore, a typo in a section) is named at start with the setting
    it was probably meant to be (before: silently ignored)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("RISKD_")}
    env = {**base, "RISKD_REDIS_URL": "redis://x", "RISKD_TELGRAM__TOKEN": "1", "RISKD_TEST_REDIS_URL": "x"}
    out = subprocess.run([sys.executable, "-m", "riskd", "config", "show"], env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    warned = [ln for ln in out.stderr.splitlines() if "is not a riskd setting" in ln]
    assert len(warned) == 2, out.stderr
    assert any("RISKD_REDIS_URL" in ln and "did you mean RISKD_REDIS__URL?" in ln for ln in warned)
    assert any("RISKD_TELGRAM__TOKEN" in ln and "did you mean RISKD_TELEGRAM__TOKEN?" in ln for ln in warned)
