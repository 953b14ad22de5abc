"""The snippets of docs/integrations.md that can run here, run: the bash reader against a real Redis, the
Python reader, the freqtrade config section and the two lines (the backtest runs the strategy itself)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis
from _contract import make_snapshot

from riskd.contract.keys import Keys
from riskd.contract.models import DataQuality
from riskd.integrations.freqtrade import RiskdRegimeMixin

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "integrations.md"


def snippet(name: str) -> str:
    """The fenced block right after ``<!-- snippet: NAME -->``."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(rf"<!-- snippet: {re.escape(name)} -->\n```\w*\n(.*?)```", text, re.S)
    assert found, f"no snippet {name} in docs/integrations.md"
    return found.group(1)


def _set(url: str, prefix: str, value: str | None) -> None:
    client = redis.Redis.from_url(url)
    if value is None:
        client.delete(Keys(prefix).regime)
    else:
        client.set(Keys(prefix).regime, value)


def _hour(hours_ago: int = 0) -> datetime:
    return (pd.Timestamp.now("UTC").floor("h") - pd.Timedelta(hours=hours_ago)).to_pydatetime()


CASES: dict[str, tuple[Any, str]] = {
    "fresh calm": (lambda: make_snapshot(_hour(), "calm").to_json(), "active"),
    "fresh fragile": (lambda: make_snapshot(_hour(), "fragile").to_json(), "reducing"),
    "fresh cascade": (lambda: make_snapshot(_hour(), "cascade").to_json(), "halted"),
    "calm but 3 h old": (lambda: make_snapshot(_hour(3), "calm").to_json(), "halted"),
    "calm from stale data": (
        lambda: make_snapshot(
            _hour(), "calm", data_quality=DataQuality(status="stale", coverage=0.0)
        ).to_json(),
        "halted",
    ),
    "key missing": (lambda: None, "halted"),
    "not JSON": (lambda: "garbage", "halted"),
}


@pytest.mark.parametrize("case", [*CASES, "redis down"])
def test_the_bash_reader(tmp_path: Path, redis_url: str, prefix: str, case: str) -> None:
    """docs/integrations.md's riskd-state script prints the trading state of a fresh key and ``halted``
    when the key is old, stale, missing, unreadable, or Redis is down."""
    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli is not installed")
    script = tmp_path / "riskd-state"
    script.write_text(snippet("riskd-state.sh"))
    url = "redis://127.0.0.1:1/0" if case == "redis down" else redis_url
    make, want = CASES.get(case, (lambda: None, "halted"))
    _set(redis_url, prefix, make())
    env = {"PATH": "/usr/bin:/bin:" + str(Path(shutil.which("python3") or "/usr/bin/python3").parent),
           "REDIS_URL": url, "KEY_PREFIX": prefix}  # fmt: skip
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=30)
    assert done.stdout.strip() == want, done.stderr


@pytest.mark.parametrize(
    ("case", "halted"), [("fresh calm", False), ("fresh cascade", True), ("key missing", True)]
)
def test_the_python_reader(redis_url: str, prefix: str, case: str, halted: bool) -> None:
    """The 'any Python bot' snippet stops new positions on a cascade and when the key is missing, and sizes
    by the multiplier (the fallback 0.5 when blind)."""
    _set(redis_url, prefix, CASES[case][0]())
    scope: dict[str, Any] = {"REDIS_URL": redis_url, "PREFIX": prefix, "BASE_STAKE": 100.0}
    exec(snippet("python-reader"), scope)  # the documented code, as written
    assert scope.get("open_new_positions", True) is not halted
    assert scope["stake"] == pytest.approx(100.0 * {"fresh calm": 1.0, "fresh cascade": 0.2}.get(case, 0.5))


def test_the_freqtrade_config_section_names_every_setting_and_only_those() -> None:
    """The documented ``riskd`` config section is valid JSON and lists exactly the mixin's settings, with
    their defaults (regime_file aside, which has none)."""
    section = json.loads(snippet("freqtrade-config"))["riskd"]
    attrs = {n.removeprefix("riskd_"): getattr(RiskdRegimeMixin, n) for n in dir(RiskdRegimeMixin)
             if n.startswith("riskd_") and not callable(getattr(RiskdRegimeMixin, n))}  # fmt: skip
    assert set(section) == set(attrs)
    assert {k: v for k, v in section.items() if k != "regime_file"} == {
        k: v for k, v in attrs.items() if k != "regime_file"
    }


def test_the_two_lines_are_the_tested_strategy() -> None:
    """Every line of the two-lines snippet is in the example strategy the freqtrade backtest runs."""
    strategy = (ROOT / "tests" / "data" / "freqtrade" / "strategies" / "riskd_example.py").read_text()
    for line in snippet("freqtrade-two-lines").splitlines():
        assert line in strategy.splitlines(), line


def test_the_export_command_is_the_one_the_cli_has(capsys: pytest.CaptureFixture[str]) -> None:
    """The documented ``riskd export regime`` line parses with riskd's own parser (flags and values)."""
    from riskd.cli import build_parser

    line = next(x for x in snippet("freqtrade-export").splitlines() if x.startswith("riskd "))
    args = build_parser().parse_args(line.split()[1:])
    assert (args.command, args.subcommand, args.start, args.end) == (
        "export",
        "regime",
        "2023-12-25",
        "2024-03-01",
    )
    assert args.out.endswith(".parquet")
