"""Settings: env and TOML sources, one-line errors naming the field (exit 2), secrets redacted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from riskd.config import load_settings
from riskd.errors import ConfigError


def _riskd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RISKD_")}
    return subprocess.run(
        [sys.executable, "-m", "riskd", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"RISKD_RETRY__ATTEMPTS": "many"}, "retry.attempts (RISKD_RETRY__ATTEMPTS)"),
        ({"RISKD_VENUES__BYBIT__TIMEOUT_S": "-1"}, "venues.bybit.timeout_s"),
        ({"RISKD_METRICS__PORT": "70000"}, "metrics.port"),
        ({"RISKD_UNIVERSE__SYMBOLS": '["BTC","BTC"]'}, "universe.symbols"),
        ({"RISKD_FRAGILITY__CASCADE__STRICT__MAX_RETURN": "x"}, "fragility.cascade.strict.max_return"),
        ({"RISKD_LOG_LEVEL": "LOUD"}, "log_level"),
    ],
)
def test_bad_value_exits_2_with_one_line_naming_the_field(env: dict[str, str], field: str) -> None:
    """A bad setting stops riskd with status 2 and a single stderr line that names it; no traceback."""
    out = _riskd("config", "show", env=env)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert field in lines[0]
    assert "Traceback" not in out.stderr


def test_toml_file_is_read_and_env_wins_over_it(tmp_path: Path) -> None:
    """Values come from the TOML file unless an environment variable sets them."""
    cfg = tmp_path / "riskd.toml"
    cfg.write_text('log_level = "DEBUG"\n[retry]\nattempts = 9\n[redis]\nkey_prefix = "x:v1"\n')
    out = _riskd("--config", str(cfg), "config", "show", env={"RISKD_RETRY__ATTEMPTS": "3"})
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert (shown["log_level"], shown["retry"]["attempts"], shown["redis"]["key_prefix"]) == (
        "DEBUG",
        3,
        "x:v1",
    )


def test_unknown_key_in_the_file_is_an_error(tmp_path: Path) -> None:
    """A typo in the config file is named, not ignored."""
    cfg = tmp_path / "riskd.toml"
    cfg.write_text("[retry]\nattempts = 3\nbackof = 2\n")
    with pytest.raises(ConfigError, match=r"retry\.backof .*unknown setting"):
        load_settings(cfg)


def test_missing_config_file_is_named() -> None:
    """--config pointing nowhere is a config error naming the path."""
    out = _riskd("--config", "/nonexistent/riskd.toml", "config", "show")
    assert out.returncode == 2
    assert "/nonexistent/riskd.toml" in out.stderr


def test_secrets_are_redacted_in_config_show() -> None:
    """The Telegram token and a Redis password never appear in `config show`."""
    out = _riskd(
        "config",
        "show",
        env={
            "RISKD_TELEGRAM__TOKEN": "123456:SECRET-TOKEN",
            "RISKD_REDIS__URL": "redis://:hunter2@db:6379/0",
        },
    )
    assert out.returncode == 0, out.stderr
    assert "SECRET-TOKEN" not in out.stdout
    assert "hunter2" not in out.stdout
    shown = json.loads(out.stdout)
    assert shown["telegram"]["token"] == "**********"


def test_partial_section_keeps_the_other_defaults() -> None:
    """Overriding one cascade threshold keeps that level's other thresholds at their defaults."""
    s = load_settings(fragility={"cascade": {"strict": {"max_return": -0.05}}})
    assert (s.fragility.cascade.strict.max_return, s.fragility.cascade.strict.min_vol_ratio) == (-0.05, 3.0)


def test_bad_cli_argument_exits_2() -> None:
    """A malformed --since is an argument error with status 2."""
    out = _riskd("backfill", "--since", "yesterday-ish")
    assert out.returncode == 2
    assert "--since" in out.stderr
