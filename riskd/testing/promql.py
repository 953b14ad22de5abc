"""The PromQL that ships in deploy/ and grafana/, collected and taken apart for the tests.

``dashboard_queries`` and ``rule_queries`` find every expression in the committed dashboards and alert
rules; ``vector_selectors`` splits one into the metric selectors it reads (name, label matchers, range),
which is what the tests hold against docs/metrics.md and run against a real Prometheus. A small lexer,
not a PromQL parser: it knows enough (functions, aggregation modifiers, keywords, strings) for the
expressions we write, and the end-to-end test catches anything it would misread.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DASHBOARD_DIR = Path("grafana/dashboards")
RULES_DIR = Path("deploy/prometheus/rules")

GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$instance": ".+"}
"""Grafana's built-in variables, with the values a test substitutes for them."""

_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_MODIFIERS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_TOKEN = re.compile(
    r"""(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<braces>\{[^}]*\})
      | (?P<range>\[[^\]]*\])
      | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
      | (?P<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?[a-z]*)
      | (?P<comment>\#[^\n]*)
      | (?P<other>\S)""",
    re.VERBOSE,
)
_MATCHER = re.compile(r"""([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)\"""")


@dataclass(frozen=True)
class Query:
    """One PromQL expression and where it was found."""

    source: str
    expr: str


@dataclass(frozen=True)
class Selector:
    """A vector selector: ``name{label op "value", …}[range]``."""

    name: str
    matchers: tuple[tuple[str, str, str], ...] = ()
    range: str | None = None

    def promql(self) -> str:
        """The selector as PromQL, without its range."""
        inner = ", ".join(f'{label}{op}"{value}"' for label, op, value in self.matchers)
        return f"{self.name}{{{inner}}}" if inner else self.name


@dataclass(frozen=True)
class MetricDoc:
    """One row of docs/metrics.md: the type and, per label, its documented values (None: open set)."""

    name: str
    type: str
    labels: dict[str, frozenset[str] | None] = field(default_factory=dict)


def substitute(expr: str) -> str:
    """``expr`` with Grafana's built-in variables replaced, so Prometheus can run it."""
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def dashboard_queries(root: Path) -> list[Query]:
    """Every target expression of every committed dashboard."""
    out = []
    for path in sorted((root / DASHBOARD_DIR).glob("*.json")):
        dash = json.loads(path.read_text(encoding="utf-8"))
        for panel in _panels(dash.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out.append(
                        Query(f"{path.name}: {panel.get('title')} [{target.get('refId')}]", target["expr"])
                    )
    return out


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def rules(root: Path) -> list[dict[str, Any]]:
    """Every rule (alerting or recording) of the rule files, in file order."""
    import yaml  # a dev dependency, needed only by tests: imported here, not at module load

    out = []
    for path in sorted((root / RULES_DIR).glob("*.yml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            out.extend(group["rules"])
    return out


def rule_queries(root: Path) -> list[Query]:
    """Every rule expression."""
    return [Query(f"rule {r.get('alert') or r.get('record')}", str(r["expr"])) for r in rules(root)]


def vector_selectors(expr: str) -> list[Selector]:
    """The vector selectors ``expr`` reads, in order of appearance."""
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(expr) if m.lastgroup != "comment"]
    out: list[Selector] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else (None, "")
        if kind == "ident" and text.lower() in _MODIFIERS:  # by (…), on (…), group_left [(…)]
            i = _skip_parens(tokens, i + 1) if nxt[1] == "(" else i + 1
            continue
        # a function call, an aggregation written `sum by (x) (…)`, or a keyword
        if kind == "ident" and (
            nxt[1] == "(" or nxt[1].lower() in ("by", "without") or text.lower() in _KEYWORDS
        ):
            i += 1
            continue
        if kind in ("ident", "braces"):
            i = _selector(tokens, i, out)
            continue
        i += 1
    return out


def _skip_parens(tokens: list[tuple[str | None, str]], i: int) -> int:
    depth = 0
    while i < len(tokens):
        depth += {"(": 1, ")": -1}.get(tokens[i][1], 0)
        i += 1
        if depth == 0:
            break
    return i


def _selector(tokens: list[tuple[str | None, str]], i: int, out: list[Selector]) -> int:
    name = tokens[i][1] if tokens[i][0] == "ident" else ""
    i += 1 if name else 0
    matchers: tuple[tuple[str, str, str], ...] = ()
    if i < len(tokens) and tokens[i][0] == "braces":
        matchers = tuple(_MATCHER.findall(tokens[i][1]))
        i += 1
    rng = None
    if i < len(tokens) and tokens[i][0] == "range":
        rng = tokens[i][1][1:-1]
        i += 1
    if not name:
        name = next((v for label, op, v in matchers if label == "__name__" and op == "="), "")
        matchers = tuple(m for m in matchers if m[0] != "__name__")
    out.append(Selector(name, matchers, rng))
    return i


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` reads."""
    return {s.name for s in vector_selectors(expr)}


def documented_metrics(path: Path) -> dict[str, MetricDoc]:
    """The metrics table of docs/metrics.md, by name."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not re.fullmatch(r"`[a-z_:][a-z0-9_:]*`", cells[0]):
            continue
        name = cells[0].strip("`")
        labels: dict[str, frozenset[str] | None] = {}
        for label, values in re.findall(r"`([a-z_]+)`(?:\s*\(([^)]*)\))?", cells[2]):
            labels[label] = frozenset(re.findall(r"`([^`]+)`", values)) or None
        out[name] = MetricDoc(name, cells[1], labels)
    return out


def base_metric(name: str, docs: dict[str, MetricDoc]) -> str:
    """The documented metric a series name belongs to (``x_bucket`` of histogram ``x`` → ``x``)."""
    for suffix in ("_bucket", "_sum", "_count"):
        stem = name.removesuffix(suffix)
        if stem != name and docs.get(stem) and docs[stem].type == "histogram":
            return stem
    return name
