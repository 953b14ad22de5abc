"""Bad settings from any source: exit 2, one stderr line naming the field and where it came from."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from riskd.cli import main
from riskd.config import load_settings
from riskd.errors import ConfigError

# (dotted field, bad value as TOML literal, bad value as environment string, what the message says)
BAD_VALUES = [
    ("redis.url", '"not-a-url"', "not-a-url", "scheme must be redis, rediss, unix or redis+sentinel"),
    ("redis.url", '"redis://:pw@db:99999/0"', "redis://:pw@db:99999/0", "port must be a whole number"),
    ("redis.url", '"redis://db:port/0"', "redis://db:port/0", "port must be a whole number"),
    ("redis.url", '"redis://db:6379/zero"', "redis://db:6379/zero", "database"),
    ("redis.url", '"http://db:6379"', "http://db:6379", "scheme must be redis"),
    ("redis.key_prefix", '"riskd v1"', "riskd*v1", "must be 1 to 100 letters"),
    ("metrics.host", '"bad_host!"', "bad_host!", "neither an IP address nor a host name"),
    ("metrics.port", "70000", "70000", "less than or equal to 65535"),
    ("metrics.port", '"http"', "http", "valid integer"),
    ("venues.binance.api_url", '"fapi.binance.com"', "fapi.binance.com", "http:// or https:// URL"),
    ("venues.bybit.api_url", '"http://:8900"', "http://:8900", "valid host"),
    ("venues.hyperliquid.api_url", '"http://127.0.0.1:0"', "http://127.0.0.1:0", "port must be"),
    ("telegram.api_base_url", '"ftp://tg"', "ftp://tg", "http:// or https:// URL"),
    ("universe.symbols", '["BTC", "../../x"]', '["BTC","../../x"]', "not a base asset name"),
    ("universe.renames", '{FTM = "S/X"}', '{"FTM": "S/X"}', "not a base asset name"),
    ("retry.attempts", '"many"', "many", "valid integer"),
]
IDS = [f"{field}={env}" for field, _, env, _ in BAD_VALUES]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No RISKD_ variable from the caller's environment leaks in; cwd is a fresh dir."""
    for name in list(os.environ):
        if name.upper().startswith("RISKD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _toml(field: str, literal: str) -> str:
    *section, key = field.split(".")
    return (f"[{'.'.join(section)}]\n" if section else "") + f"{key} = {literal}\n"


def _one_line_error(capsys: pytest.CaptureFixture[str], status: int) -> str:
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(("field", "toml", "env", "says"), BAD_VALUES, ids=IDS)
def test_bad_env_value_is_blamed_on_the_variable(
    field: str,
    toml: str,
    env: str,
    says: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bad value in RISKD_… exits 2 with one line naming the field, the variable and the problem."""
    var = "RISKD_" + field.upper().replace(".", "__")
    monkeypatch.setenv(var, env)
    line = _one_line_error(capsys, main(["config", "show"]))
    assert f"{field} ({var})" in line
    assert says in line
    assert "pw@" not in line  # a Redis URL's password is never echoed


@pytest.mark.parametrize(("field", "toml", "env", "says"), BAD_VALUES, ids=IDS)
def test_bad_toml_value_is_blamed_on_the_file_and_key(
    field: str, toml: str, env: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same bad value in the TOML file names the file and the key, not an environment variable."""
    cfg = tmp_path / "riskd.toml"
    cfg.write_text(_toml(field, toml))
    line = _one_line_error(capsys, main(["--config", str(cfg), "config", "show"]))
    assert f"{field} ({cfg}, key {field})" in line
    assert "RISKD_" not in line
    assert says in line


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["backfill", "--symbols", "BTC,../../x"], "--symbols"),
        (["validate", "--out", "r", "--symbols", "BTC/ETH"], "--symbols"),
        (["data", "audit", "--symbols", "a b"], "--symbols"),
        (["replay", "--metrics-port", "70000"], "--metrics-port"),
        (["replay", "--metrics-port", "http"], "--metrics-port"),
        (["replay", "--from", "yesterday-ish"], "--from"),
        (["fake-exchange", "--port", "-1"], "--port"),
        (["--log-level", "LOUD", "config", "show"], "--log-level"),
        (["--config", "/nonexistent/riskd.toml", "config", "show"], "--config"),
        (["demo", "--hours-per-second", "nan"], "--hours-per-second"),
    ],
)
def test_bad_flag_is_named_in_one_line(
    argv: list[str], names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad command-line value exits 2 with one line that names the flag."""
    line = _one_line_error(capsys, main(argv))
    assert names in line


def test_non_json_list_in_env_gets_a_clear_message_on_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """RISKD_TELEGRAM__CHAT_IDS=1,2 is explained as 'not JSON' on that variable, not blamed on a config file."""
    monkeypatch.setenv("RISKD_TELEGRAM__CHAT_IDS", "-100123,456")
    line = _one_line_error(capsys, main(["config", "show"]))
    assert "telegram.chat_ids (RISKD_TELEGRAM__CHAT_IDS): not JSON" in line
    assert "config_file" not in line


def test_unparsable_toml_names_the_file_and_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config file that is not TOML is one line naming the file, where it was given and the line."""
    cfg = tmp_path / "riskd.toml"
    cfg.write_text("[metrics]\nport = \n")
    line = _one_line_error(capsys, main(["--config", str(cfg), "config", "show"]))
    assert f"{cfg} (--config)" in line
    assert "line 2" in line


def test_env_wins_over_a_bad_file_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A good environment value overrides a bad one in the file: the environment has priority."""
    cfg = tmp_path / "riskd.toml"
    cfg.write_text("[metrics]\nport = 70000\n")
    monkeypatch.setenv("RISKD_METRICS__PORT", "9500")
    assert load_settings(cfg).metrics.port == 9500


def test_good_values_pass_and_symbols_are_upper_cased() -> None:
    """The checks accept what riskd really uses: rediss with auth, unix sockets, IPv6, 1000PEPE, kPEPE."""
    s = load_settings(
        redis={"url": "rediss://user:pw@redis.internal:6380/2", "key_prefix": "riskd:{prod}:v1"},
        metrics={"host": "::1"},
        venues={"binance": {"api_url": "http://127.0.0.1:8900/fapi"}},
        universe={"symbols": ["btc", "1000PEPE", "kPEPE"], "renames": {"ftm": "s"}},
    )
    assert s.universe.symbols == ["BTC", "1000PEPE", "KPEPE"]
    assert s.universe.renames == {"FTM": "S"}
    assert load_settings(redis={"url": "unix:///run/redis/redis.sock"}).redis.url is not None


def test_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    """data_dir pointing at a file fails when read, naming the field."""
    f = tmp_path / "not-a-dir"
    f.write_text("x")
    with pytest.raises(ConfigError, match=r"data_dir \(argument\): .* not a directory"):
        load_settings(data_dir=f)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_metrics_port_in_use_is_exit_2_before_anything_starts(
    taken_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`riskd once` with metrics.port taken stops at once: one line naming the port and its variable."""
    monkeypatch.setenv("RISKD_METRICS__PORT", str(taken_port))
    monkeypatch.setenv("RISKD_REDIS__URL", "redis://127.0.0.1:1/0")  # never reached: the check comes first
    line = _one_line_error(capsys, main(["once"]))
    assert f"metrics.port (RISKD_METRICS__PORT): 127.0.0.1:{taken_port} is already in use" in line


def _riskd(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("RISKD_")}
    return subprocess.run(
        [sys.executable, "-m", "riskd", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "env", "names"),
    [
        (
            ["config", "show"],
            {"RISKD_REDIS__URL": "redis://:hunter2@db:99999"},
            "redis.url (RISKD_REDIS__URL)",
        ),
        (["config", "show"], {"RISKD_UNIVERSE__SYMBOLS": "BTC,ETH"}, "(RISKD_UNIVERSE__SYMBOLS): not JSON"),
        (["once"], {"RISKD_METRICS__HOST": "no-such-host.invalid"}, "metrics.host (RISKD_METRICS__HOST)"),
    ],
)
def test_as_a_process_bad_settings_exit_2_without_traceback(
    args: list[str], env: dict[str, str], names: str
) -> None:
    """Run as `python -m riskd`, the systemd unit's view: status 2 (no restart loop), one line, no traceback."""
    out = _riskd(args, env)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert names in out.stderr
    assert "hunter2" not in out.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://h1/svc", "each sentinel must be HOST:PORT"),
        ("redis+sentinel://h1:26379", "needs the monitored service name"),
        ("redis+sentinel://h1:26379/svc/x", "database (after the service name) must be a number"),
        ("redis+sentinel://h1:26379/svc?password=x", "unknown query parameter(s) ['password']"),
    ],
)
def test_a_bad_sentinel_url_is_one_line_naming_the_field(url: str, message: str) -> None:
    """A Sentinel URL that cannot be used: exit 2 and one line naming redis.url, never the URL itself."""
    from riskd.config import load_settings
    from riskd.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        load_settings(redis={"url": url})
    assert "redis.url" in str(err.value)
    assert message in str(err.value)
    assert url not in str(err.value)


def test_a_sentinel_url_parses_and_its_passwords_are_redacted() -> None:
    """Every part of a Sentinel URL is read; neither password reaches a log line."""
    from riskd.config.check import sentinel_target
    from riskd.config.load import redact_url

    url = "redis+sentinel://app:pw1@10.0.0.1:26379,sentinel-b:26380/riskd-primary/2?sentinel_password=pw2"
    t = sentinel_target(url)
    assert t.sentinels == (("10.0.0.1", 26379), ("sentinel-b", 26380))
    assert (t.service, t.db, t.username, t.password, t.sentinel_password) == (
        "riskd-primary",
        2,
        "app",
        "pw1",
        "pw2",
    )
    shown = redact_url(url)
    assert "pw1" not in shown
    assert "pw2" not in shown
    assert "pw" not in repr(t)
