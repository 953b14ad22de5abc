"""A safe replay: its own keys, any --from/--to handled, honest snapshots and alerts, a truthful lease."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pandas as pd
import pytest
import redis

from riskd.cli import main
from riskd.commands.replay import replay, replay_prefix, replay_range, replay_settings
from riskd.config import Settings, load_settings
from riskd.contract.keys import Keys
from riskd.contract.models import Snapshot
from riskd.daemon.embedded import free_port
from riskd.errors import ConfigError
from riskd.testing.sample import load_sample_store

SYMBOLS = ["BTC", "ETH", "XRP", "LTC", "ADA", "SOL", "DOGE", "LINK"]
T = pd.Timestamp
FIRST, LAST = T("2021-04-20 00:00", tz="UTC"), T("2021-06-10 23:00", tz="UTC")
"""The bundled sample's stored hours."""
CRASH = (T("2021-05-18 12:00", tz="UTC"), T("2021-05-20 12:00", tz="UTC"))
"""A window with regime changes and a cascade: alerts fire in it."""


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the bundled sample in its store (loaded once for the module)."""
    root = tmp_path_factory.mktemp("replay")
    load_sample_store(root / "store")
    return root


def _settings(data_dir: Path, redis_url: str, prefix: str, **kw: object) -> Settings:
    return load_settings(
        data_dir=data_dir,
        universe={"symbols": SYMBOLS},
        venues={"bybit": {"enabled": False}, "hyperliquid": {"enabled": False}},
        redis={"url": redis_url, "key_prefix": prefix},
        metrics={"port": 0},
        **kw,
    )


class Recorder:
    """An alert channel that keeps what it was given, after a short network-like pause per send."""

    name, max_per_minute = "console", None

    def __init__(self, pause_s: float = 0.03) -> None:
        self.destinations = ["ops"]
        self.texts: list[str] = []
        self.pause_s = pause_s

    async def send(self, dest: str, text: str, *, silent: bool, chart: bytes | None) -> str:
        await asyncio.sleep(self.pause_s)
        self.texts.append(text)
        return str(len(self.texts))

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize(
    ("start", "end", "want"),
    [
        (None, None, (FIRST, LAST)),
        (T("2021-05-01", tz="UTC"), None, (T("2021-05-01", tz="UTC"), LAST)),
        (T("2021-01-01", tz="UTC"), T("2031-01-01", tz="UTC"), (FIRST, LAST)),  # clipped to the data
        (LAST, LAST, (LAST, LAST)),  # one hour
        (T("2031-01-01", tz="UTC"), None, "--from: 2031-01-01 00:00 is after the last stored hour"),
        (None, T("2020-01-01", tz="UTC"), "--to: 2020-01-01 00:00 is before the first stored hour"),
        (T("2021-05-02", tz="UTC"), T("2021-05-01", tz="UTC"), "--from: 2021-05-02 00:00 is after --to"),
        (LAST + pd.Timedelta(hours=1), None, "after the last stored hour"),
    ],
)
def test_replay_range(start: T | None, end: T | None, want: tuple[T, T] | str) -> None:
    """Any --from/--to: clipped to the stored hours, or a ConfigError naming the flag and the stored range."""
    if isinstance(want, str):
        with pytest.raises(ConfigError, match=re.escape(want)):
            replay_range(start, end, FIRST, LAST)
    else:
        assert replay_range(start, end, FIRST, LAST) == want


@pytest.fixture
def env_sample(sample_dir: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """RISKD_ environment pointing `riskd replay` at the sample and the session Redis; returns the prefix."""
    for name in list(os.environ):
        if name.upper().startswith("RISKD_"):
            monkeypatch.delenv(name)
    prefix = f"riskd-test-{uuid.uuid4().hex[:8]}:v1"
    env = {
        "RISKD_DATA_DIR": str(sample_dir),
        "RISKD_UNIVERSE__SYMBOLS": str(SYMBOLS).replace("'", '"'),
        "RISKD_VENUES__BYBIT__ENABLED": "false",
        "RISKD_VENUES__HYPERLIQUID__ENABLED": "false",
        "RISKD_REDIS__URL": redis_url,
        "RISKD_REDIS__KEY_PREFIX": prefix,
        "RISKD_METRICS__PORT": "0",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return prefix


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--from", "2031-01-01"], "invalid argument --from: 2031-01-01 00:00 is after the last stored hour"),
        (["--to", "2020-01-01"], "invalid argument --to: 2020-01-01 00:00 is before the first stored hour"),
        (
            ["--from", "2021-05-02", "--to", "2021-05-01"],
            "invalid argument --from: 2021-05-02 00:00 is after --to",
        ),
        (["--prefix", "a b"], "invalid argument --prefix"),
        (["--prefix", "x", "--production-keys"], "not allowed with argument"),
    ],
)
def test_replay_cli_bad_range_is_one_line_exit_2(
    env_sample: str, argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`riskd replay` with an empty, inverted or out-of-data range exits 2 with one line, no traceback."""
    status = main(["replay", "--alerts", "none", *argv])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert says in err


def test_replay_metrics_port_flag_in_use_names_the_flag(
    env_sample: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --metrics-port that is taken is blamed on the flag, exit 2, before the replay starts."""
    with socket_listening() as port:
        status = main(["replay", "--alerts", "none", "--metrics-port", str(port)])
    err = capsys.readouterr().err
    assert status == 2, err
    assert f"metrics.port (--metrics-port): 127.0.0.1:{port} is already in use" in err


@contextlib.contextmanager
def socket_listening() -> Iterator[int]:
    """A loopback port something listens on, for the length of a with-block."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


async def test_replay_keeps_out_of_the_production_keys(sample_dir: Path, redis_url: str) -> None:
    """By default a replay writes under its own prefix beside the configured one (riskd:v1 -> riskd-replay:v1):
    the production regime, stream and dedup keys are untouched."""
    prefix = f"riskd-test-{uuid.uuid4().hex[:8]}:v1"
    client = redis.Redis.from_url(redis_url)
    client.set(Keys(prefix).regime, "production value")
    cfg = replay_settings(_settings(sample_dir, redis_url, prefix), None, production_keys=False)
    assert cfg.redis.key_prefix == replay_prefix(prefix)
    channel = Recorder(pause_s=0)
    result = await replay(cfg, *CRASH, channel=channel, fresh=True)
    try:
        assert len(result.snapshots) == 49
        assert channel.texts  # alerts fired …
        assert client.get(Keys(prefix).regime) == b"production value"  # … and production is as it was
        production = list(client.scan_iter(match=f"{prefix}:*"))
        assert production == [Keys(prefix).regime.encode()]
        mine = replay_prefix(prefix)
        own = {k.decode() for k in client.scan_iter(match=f"{mine}:*")}
        assert {f"{mine}:regime", f"{mine}:regime:history"} <= own
        assert any(":alerts:" in k for k in own)  # dedup keys live in the replay namespace too
        published = Snapshot.model_validate_json(client.get(f"{mine}:regime") or b"")
        assert published.live is False  # a replay is not the market now
    finally:
        for pattern in (f"{prefix}:*", f"{replay_prefix(prefix)}:*"):
            for k in client.scan_iter(match=pattern):
                client.delete(k)
        client.close()


async def test_a_second_replay_alerts_again_and_never_delayed(sample_dir: Path, redis_url: str) -> None:
    """Each replay starts clean (earlier fingerprints do not swallow its alerts), and no alert reads
    DELAYED or LATE although delivery takes wall time while the simulated clock could race ahead."""
    prefix = f"riskd-test-{uuid.uuid4().hex[:8]}:v1"
    cfg = replay_settings(_settings(sample_dir, redis_url, prefix), None, production_keys=False)
    runs = []
    for _ in range(2):
        channel = Recorder(pause_s=0.03)
        await replay(cfg, *CRASH, channel=channel, fresh=True)
        runs.append(channel.texts)
    assert runs[0]
    assert len(runs[1]) == len(runs[0])
    for text in runs[0] + runs[1]:
        assert "DELAYED" not in text
        assert "LATE" not in text
        assert "Catch-up" not in text
    client = redis.Redis.from_url(redis_url)
    for k in client.scan_iter(match=f"{prefix}:*"):
        client.delete(k)
    client.close()


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.text()


async def _leader_metric(port: int) -> float:
    _, body = await _get(f"http://127.0.0.1:{port}/metrics")
    line = next(x for x in body.splitlines() if x.startswith("riskd_leader "))
    return float(line.split()[1])


async def _healthz_leader(port: int) -> bool:
    _, body = await _get(f"http://127.0.0.1:{port}/healthz")
    return bool(json.loads(body)["leader"])


async def test_replay_renews_its_lease_and_metrics_tell_the_truth(sample_dir: Path, redis_url: str) -> None:
    """A holding replay keeps its lease past several TTLs; when another replica takes the key,
    riskd_leader and /healthz say 0/false within a renewal interval."""
    prefix = f"riskd-test-{uuid.uuid4().hex[:8]}:v1"
    cfg = _settings(
        sample_dir, redis_url, prefix, daemon={"lease_ttl_s": 1.5, "instance_id": "replay-under-test"}
    )
    cfg = replay_settings(cfg, None, production_keys=False)
    leader_key = Keys(cfg.redis.key_prefix).leader
    port = free_port()
    hold = asyncio.Event()
    task = asyncio.create_task(
        replay(
            cfg, CRASH[0], CRASH[0] + pd.Timedelta(hours=3), channel=Recorder(0), metrics_port=port, hold=hold
        )
    )
    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 60
        while client.get(leader_key) is None:
            assert not task.done(), task
            assert time.monotonic() < deadline, "replay never took the lease"
            await asyncio.sleep(0.1)
        await asyncio.sleep(3 * 1.5)  # three TTLs: without renewal the key would have expired
        assert client.get(leader_key) == b"replay-under-test"
        assert await _leader_metric(port) == 1.0
        assert await _healthz_leader(port) is True
        client.set(leader_key, "another-replica", px=60_000)  # the lease is someone else's now
        await asyncio.sleep(1.5)  # more than one renewal interval (ttl / 3)
        assert await _leader_metric(port) == 0.0
        assert await _healthz_leader(port) is False
    finally:
        hold.set()
        await asyncio.wait_for(task, 30)
        for k in client.scan_iter(match=f"{prefix}:*"):
            client.delete(k)
        client.close()


@pytest.fixture
def demo_proc(redis_url: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`riskd demo --hold` over one simulated day with a 1.5 s lease; yields the process and its metrics port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RISKD_")}
    env.update(
        {
            "RISKD_REDIS__URL": redis_url,
            "RISKD_METRICS__PORT": str(port),
            "RISKD_LOG_LEVEL": "WARNING",
            "RISKD_DAEMON__LEASE_TTL_S": "1.5",
        }
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "riskd",
            "demo",
            "--hours-per-second",
            "24",
            "--from",
            "2021-05-18",
            "--to",
            "2021-05-19",
            "--hold",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


async def test_demo_holds_a_renewed_lease_that_metrics_report(
    demo_proc: tuple[subprocess.Popen[str], int], redis_url: str
) -> None:
    """While `riskd demo --hold` runs, its lease key outlives several TTLs and riskd_leader says 1."""
    proc, port = demo_proc
    assert proc.stdout is not None
    prefix = None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = await asyncio.to_thread(proc.stdout.readline)
        if not line:
            raise AssertionError(
                f"demo ended early: {proc.wait()} {proc.stderr.read() if proc.stderr else ''}"
            )
        if m := re.search(r"key (\S+):regime", line):
            prefix = m.group(1)
        if line.startswith("holding"):
            break
    assert prefix is not None
    await asyncio.sleep(3 * 1.5)
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.get(Keys(prefix).leader) is not None
    finally:
        client.close()
    assert await _leader_metric(port) == 1.0
    assert await _healthz_leader(port) is True
