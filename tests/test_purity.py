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
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


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
        "from riskd.config import Settings\n",
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
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout
