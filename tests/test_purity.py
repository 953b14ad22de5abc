"""The pure core is guarded by lint: a planted I/O or adapter import in riskd/core or riskd/research fails
ruff's banned-api rule (the same ruff run `make test` does), while adapters may import what they wrap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def ruff_on(path: str, source: str) -> subprocess.CompletedProcess[str]:
    """ruff check of ``source`` as if it were the file ``path`` of this repo (its config applies)."""
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "TID251", "--stdin-filename", path, "-"],
        input=source, capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("where", ["riskd/core/planted.py", "riskd/research/planted.py"])
@pytest.mark.parametrize(
    "source",
    [
        "import ccxt\n",
        "import redis.asyncio\n",
        "from telegram import Bot\n",
        "import aiohttp\n",
        "import httpx\n",
        "import os\nx = os.environ['RISKD_X']\n",
        "from riskd.settings import Settings\n",
        "from riskd.sources import make_source\n",
        "from riskd.sinks.redis import RedisSink\n",
        "from riskd.store import HistoryStore\n",
        "from riskd.daemon import Daemon\n",
    ],
)
def test_a_planted_io_import_in_the_pure_packages_fails_lint(where: str, source: str) -> None:
    """Each banned import planted in core/ or research/ makes ruff fail with TID251."""
    result = ruff_on(where, source)
    assert result.returncode == 1, result.stdout
    assert "TID251" in result.stdout


def test_adapters_may_import_what_they_wrap() -> None:
    """The ban is scoped: the same imports in an adapter pass."""
    result = ruff_on("riskd/sources/planted.py", "import ccxt\nimport redis\n")
    assert result.returncode == 0, result.stdout


def test_the_real_pure_packages_pass() -> None:
    """Today's core and research import nothing banned."""
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "TID251", "riskd/core", "riskd/research"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout


COMMANDS = ("riskd.cli", "riskd.commands", "riskd.backfill", "riskd.replay", "riskd.validation", "riskd.calibration",
            "riskd.importer", "riskd.origin", "riskd.intrahour_report")  # fmt: skip
"""The command modules: what ``riskd.cli`` loads. They may import the layers below, never the reverse."""
ADAPTERS = ("sinks", "sources", "streams", "telegram", "http", "core", "research", "store", "market", "daemon",
            "alerting", "models.py", "snapshot.py", "client.py", "crash_model.py")  # fmt: skip
"""The layers under the commands: the core, the adapters, the runtime and the bots' reader."""


def _imports(path: Path) -> set[str]:
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_adapter_imports_a_command_and_no_command_imports_the_cli() -> None:
    """The layers point one way: core and adapters never import a command module, and the commands never
    import ``riskd.cli``, which loads them (their shared argument types live in ``riskd.arguments``)."""
    riskd = ROOT / "riskd"
    below = [
        p
        for name in ADAPTERS
        for p in ((riskd / name).rglob("*.py") if (riskd / name).is_dir() else [riskd / name])
    ]
    assert len(below) > 60, "the adapter list no longer matches the tree"
    bad = [
        f"{p.relative_to(ROOT)} imports {m}"
        for p in below
        for m in _imports(p)
        if any(m == c or m.startswith(c + ".") for c in COMMANDS)
    ]
    for p in riskd.rglob("*.py"):
        if p.name not in ("cli.py", "__main__.py") and "riskd.cli" in _imports(p):
            bad.append(f"{p.relative_to(ROOT)} imports riskd.cli")
    assert not bad, bad


def test_the_layering_check_catches_a_planted_import(tmp_path: Path) -> None:
    """The check above is not vacuous: a sink importing a command is reported."""
    planted = tmp_path / "planted.py"
    planted.write_text("from riskd.replay import cli_replay\nimport riskd.cli\n")
    assert {"riskd.replay", "riskd.cli"} <= _imports(planted)
