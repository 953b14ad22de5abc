"""Bad input: settings that must stop riskd with one line and exit 2, and replay over any range, safely."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from riskd.daemon.embedded import RedisServer, free_port

pytestmark = pytest.mark.slow

SAMPLE_SYMBOLS = '["BTC","ETH","XRP","LTC","ADA","SOL","DOGE","LINK"]'


def _env(tmp: Path, redis_url: str, **extra: str) -> dict[str, str]:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing leaves the machine, whatever riskd accepts
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKD_")}
    return {
        **env,
        "RISKD_DATA_DIR": str(tmp),
        "RISKD_REDIS__URL": redis_url,
        "RISKD_METRICS__PORT": "0",
        "RISKD_LOG_LEVEL": "WARNING",
        "RISKD_RETRY__ATTEMPTS": "1",
        **{f"RISKD_VENUES__{v}__API_URL": dead for v in ("BINANCE", "BYBIT", "HYPERLIQUID")},
        **extra,
    }


def _riskd(args: list[str], env: dict[str, str], timeout: float = 30.0) -> tuple[int | None, str, str]:
    """Run ``python -m riskd …``; (exit status or None when it was still running at ``timeout``, out, err)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "riskd", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return None, out, err


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something already listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


CASES: list[tuple[str, dict[str, str], str, str]] = [
    ("redis_url_not_a_url", {"RISKD_REDIS__URL": "not a url"}, "redis.url", "RISKD_REDIS__URL"),
    (
        "redis_url_bad_port",
        {"RISKD_REDIS__URL": "redis://127.0.0.1:99999/0"},
        "redis.url",
        "RISKD_REDIS__URL",
    ),
    ("metrics_port_in_use", {"RISKD_METRICS__PORT": "{busy}"}, "metrics.port", "RISKD_METRICS__PORT"),
    ("metrics_host_bad", {"RISKD_METRICS__HOST": "no such host!"}, "metrics.host", "RISKD_METRICS__HOST"),
    (
        "api_url_not_a_url",
        {"RISKD_VENUES__BINANCE__API_URL": "not a url"},
        "venues.binance.api_url",
        "RISKD_VENUES__BINANCE__API_URL",
    ),
    (
        "symbol_path",
        {"RISKD_UNIVERSE__SYMBOLS": '["BTC","../../x"]'},
        "universe.symbols",
        "RISKD_UNIVERSE__SYMBOLS",
    ),
    ("toml_bad_value", {"RISKD_CONFIG_FILE": "{toml}"}, "daemon.grace_s", "{toml}"),
]


@pytest.mark.parametrize(("case", "env_extra", "field", "source"), CASES, ids=[c[0] for c in CASES])
def test_bad_settings_exit_2_with_one_line_naming_field_and_source(
    tmp_path: Path,
    redis_url: str,
    busy_port: int,
    record: dict[str, Any],
    case: str,
    env_extra: dict[str, str],
    field: str,
    source: str,
) -> None:
    """A bad setting stops `riskd run` with exit 2 and one line naming the field and where it came from,
    never a traceback, never a daemon that starts and fails every cycle (finding 10)."""
    record["scenario"] = f"settings_{case}"
    record.update({"hours_lost": 0, "alerts_lost": 0, "duplicates": 0, "stale_as_fresh": 0})
    toml = tmp_path / "riskd.toml"
    toml.write_text('[daemon]\ngrace_s = "soon"\n')
    fill = {"{busy}": str(busy_port), "{toml}": str(toml)}
    extra = {k: fill.get(v, v) for k, v in env_extra.items()}
    source = fill.get(source, source)
    code, _, err = _riskd(["run"], _env(tmp_path / "data", redis_url, **extra), timeout=25)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    what = f"{case}: exit {code}, stderr ({len(lines)} lines):\n" + "\n".join(lines[-12:])
    assert code == 2, (
        "still running after 25 s: the bad value was accepted\n" if code is None else ""
    ) + what
    assert "Traceback" not in err, what
    assert len(lines) == 1, what
    assert field in lines[0], f"want the field {field!r} named; {what}"
    assert source in lines[0], f"want the source {source!r} named; {what}"


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the bundled May 2021 sample (through the real importer)."""
    from riskd.config import load_settings
    from riskd.testing.sample import load_sample_store

    data = tmp_path_factory.mktemp("replay-data")
    load_sample_store(load_settings(data_dir=data).store_dir)
    return data


def _replay_env(data: Path, redis_url: str) -> dict[str, str]:
    env = _env(data, redis_url, RISKD_UNIVERSE__SYMBOLS=SAMPLE_SYMBOLS)
    env.update({"RISKD_VENUES__BYBIT__ENABLED": "false", "RISKD_VENUES__HYPERLIQUID__ENABLED": "false"})
    return env


def test_replay_from_past_the_end_is_one_line(
    sample_dir: Path, redis_url: str, record: dict[str, Any]
) -> None:
    """`riskd replay --from` after the stored data ends: one line and exit 2, not an IndexError (finding 11)."""
    record["scenario"] = "replay_from_past_end"
    record.update({"hours_lost": 0, "alerts_lost": 0, "duplicates": 0, "stale_as_fresh": 0})
    code, _, err = _riskd(
        ["replay", "--from", "2030-01-01", "--alerts", "none"], _replay_env(sample_dir, redis_url)
    )
    lines = [ln for ln in err.splitlines() if ln.strip()]
    what = f"exit {code}, stderr:\n" + "\n".join(lines[-12:])
    assert code == 2, what
    assert "Traceback" not in err, what
    assert len(lines) == 1, what
    assert "--from" in lines[0], what


def test_replay_keeps_off_production_keys_and_is_not_late(
    sample_dir: Path, tmp_path: Path, record: dict[str, Any]
) -> None:
    """A default replay writes under its own prefix, not riskd:v1 (or its alert dedup keys), and its
    1-second run does not tag alerts DELAYED (finding 11)."""
    record["scenario"] = "replay_keys_and_delays"
    record.update({"hours_lost": 0, "alerts_lost": 0, "duplicates": 0, "stale_as_fresh": 0})
    with RedisServer(data_dir=tmp_path / "redis") as server:
        code, out, err = _riskd(
            ["replay", "--alerts", "console"], _replay_env(sample_dir, server.url), timeout=120
        )
        import redis

        client = redis.Redis.from_url(server.url)
        production = sorted(k.decode() for k in client.keys("riskd:v1:*"))
        client.close()
    problems = []
    if code != 0:
        problems.append(f"replay exited {code}: {err[-1500:]}")
    if production:
        problems.append(f"a default replay wrote production keys: {production[:6]}")
    if "Cascade started" not in out:
        problems.append(
            "the replay of May 2021 raised no cascade alert (the check below would prove nothing)"
        )
    delayed = [ln for ln in out.splitlines() if "[DELAYED" in ln]
    if delayed:
        problems.append(f"{len(delayed)} replay alert(s) tagged DELAYED, e.g. {delayed[0]!r}")
    assert not problems, "\n".join(problems)
