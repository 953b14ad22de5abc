"""The house's layering, checked on every module's imports (``../shared/DESIGN.md``).

Each module of ``riskd`` belongs to a unit (a package, or a root module) by the longest name in :data:`UNITS`
that is it or a package above it, so a new file in an existing package is covered without editing anything;
each unit has a layer (:data:`LAYER`). A module may import its own unit and any lower layer; an import of a
higher layer, or of another unit of the same layer, is an arrow running back up (or sideways, which is how
circles start). A module that no entry covers fails the test, and so does any import circle between modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "riskd"

LAYER: dict[str, int] = {
    "entry": 14,  # parse arguments, load Settings once, dispatch
    "commands": 13,  # one file per command; nothing below imports them
    "daemon": 12,  # the orchestrator and its wiring
    "testing": 12,  # the loopback fakes and samples (the demo and the tests run against them)
    "http": 11,
    "telegram": 11,
    "integrations": 11,  # faces: HTTP, Telegram, the bots' plug-ins
    "sinks": 10,  # where snapshots go
    "alerting": 9,  # alert delivery
    "market": 8,  # the daemon's data: cache, fetch, history
    "streams": 8,  # the minute side
    "importer": 8,  # history files into the store
    "client": 8,  # the public reader bots import
    "store": 7,  # the history store and riskd's own files
    "config": 6,  # Settings: sections, provenance, checks
    "contract": 5,  # what riskd promises readers (models, keys, codec, schemas, freshness, alerts)
    "sources": 4,  # the venue registry (data every layer reads) and the adapters
    "research": 3,
    "core": 2,
    "primitives": 1,  # errors, logs, clock: every layer may use them
}
"""Unit → layer: a module may import its own unit and any lower layer, nothing else."""

UNITS: dict[str, str] = {
    "riskd.cli": "entry",
    "riskd.__main__": "entry",
    "riskd.commands": "commands",
    "riskd.daemon": "daemon",
    "riskd.testing": "testing",
    "riskd.http": "http",
    "riskd.telegram": "telegram",
    "riskd.integrations": "integrations",
    "riskd.sinks": "sinks",
    "riskd.alerting": "alerting",
    "riskd.market": "market",
    "riskd.streams": "streams",
    "riskd.importer": "importer",
    "riskd.client": "client",
    "riskd.contract": "contract",
    "riskd.store": "store",
    "riskd.config": "config",
    "riskd.sources": "sources",
    "riskd.research": "research",
    "riskd.core": "core",
    "riskd.errors": "primitives",
    "riskd.logs": "primitives",
    "riskd.clock": "primitives",
    "riskd.schemas": "primitives",
    "riskd": "primitives",
}
"""Module or package → the unit it belongs to (the longest entry that is it or a package above it wins)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(name: str) -> str | None:
    """The unit of the longest :data:`UNITS` entry that is ``name`` or a package above it."""
    best = None
    for prefix in UNITS:
        covers = name == prefix or (prefix != "riskd" and name.startswith(prefix + "."))  # "riskd": __init__
        if covers and (best is None or len(prefix) > len(best)):
            best = prefix
    return UNITS[best] if best is not None else None


def imports_of(path: Path, source: str | None = None) -> Iterator[tuple[str, int]]:
    """``(module imported, line)`` for every ``riskd`` import of a file, relative ones resolved."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    text = source if source is not None else path.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "riskd":
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            if base.split(".")[0] != "riskd":
                continue
            for alias in node.names:  # `from riskd.x import y` may name a module y
                yield (f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base), node.lineno


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel).with_suffix(".py").exists() or (ROOT / rel / "__init__.py").exists()


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def violations(paths: list[Path], sources: dict[Path, str] | None = None) -> list[str]:
    """Every import that runs up or sideways, and every module no layer covers (``sources``: a file's text
    given instead of read, for planted files)."""
    bad = []
    for path in paths:
        me = module_name(path)
        mine = unit_of(me)
        if mine is None:
            bad.append(f"{me}: no layer covers it (add it to UNITS)")
            continue
        for target, line in imports_of(path, (sources or {}).get(path)):
            theirs = unit_of(target)
            if theirs is None or theirs == mine:
                continue
            if LAYER[theirs] >= LAYER[mine]:
                bad.append(
                    f"{me}:{line} ({mine}, {LAYER[mine]}) imports {target} ({theirs}, {LAYER[theirs]})"
                )
    return bad


def cycles(paths: list[Path]) -> list[list[str]]:
    """Import circles between modules (Tarjan's strongly connected components of more than one module)."""
    graph = {module_name(p): {t for t, _ in imports_of(p)} for p in paths}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_every_import_points_down() -> None:
    """No module imports a higher layer or another unit of its own layer, and every module has a layer."""
    assert not violations(modules()), "\n".join(violations(modules()))


def test_no_import_circles() -> None:
    """No two modules import each other, directly or around a loop."""
    assert not cycles(modules()), cycles(modules())


def test_nothing_but_the_entry_points_imports_the_cli() -> None:
    """``riskd.cli`` loads the commands; a module importing it would close a loop through them."""
    bad = [
        f"{module_name(p)} imports riskd.cli"
        for p in modules()
        if p.name not in ("cli.py", "__main__.py") and any(t == "riskd.cli" for t, _ in imports_of(p))
    ]
    assert not bad, bad


@pytest.mark.parametrize(
    ("where", "source"),
    [
        ("riskd/sinks/planted.py", "from riskd.commands import run\n"),
        ("riskd/sinks/planted.py", "from riskd.commands.replay import cli_replay\n"),
        ("riskd/store/planted.py", "import riskd.daemon\n"),
        ("riskd/core/planted.py", "from riskd.sources import VENUES\n"),
        ("riskd/alerting/planted.py", "from riskd.telegram.format import esc\n"),
        ("riskd/planted.py", "import json\n"),
    ],
)
def test_the_check_catches_a_planted_import(where: str, source: str) -> None:
    """Not vacuous: an adapter importing a command, the store importing the daemon, the core reaching a
    venue, alerting importing Telegram, and a root module no layer names are each reported."""
    planted = ROOT / where
    assert violations([planted], {planted: source}), f"{where}: {source!r} passed the layering check"
