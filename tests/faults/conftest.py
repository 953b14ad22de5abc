"""The fault suite's fixtures and its summary table (printed at the end of every pytest run that ran it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

_ROWS: dict[str, dict[str, Any]] = {}
_KEY = "fault_summary"


@pytest.fixture
def record(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The scenario's row of the summary table; a test fills it in before asserting.

    The row rides on the report's ``user_properties``, so it reaches the summary under pytest-xdist too.
    """
    row: dict[str, Any] = {"scenario": request.node.name}
    request.node.user_properties.append((_KEY, row))
    return row


@pytest.fixture
def fault_tmp(tmp_path: Path) -> Path:
    """A tmp dir for one rig (daemon data dir, Redis dir, clock file)."""
    return tmp_path


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep each fault scenario's row with its outcome (failed in any phase beats passed)."""
    row = next((dict(v) for k, v in report.user_properties if k == _KEY), None)
    if row is None:
        return
    old = _ROWS.get(report.nodeid, {})
    outcome = report.outcome if report.when == "call" or report.outcome != "passed" else old.get("outcome")
    if report.when == "call" or report.outcome != "passed":
        _ROWS[report.nodeid] = {**old, **row, "outcome": outcome or old.get("outcome")}
    elif report.nodeid not in _ROWS:
        _ROWS[report.nodeid] = {**row, "outcome": None}


def _cell(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    return "?" if value is None else str(value)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """scenario | survived | hours lost | alerts lost | duplicates | stale-as-fresh, and the totals."""
    if not _ROWS:
        return
    tr = terminalreporter
    tr.section("fault suite")
    head = ("scenario", "survived", "hours lost", "alerts lost", "duplicates", "stale-as-fresh")
    rows = []
    for row in _ROWS.values():
        survived = {"passed": "yes", "failed": "NO", "skipped": "skipped"}.get(row.get("outcome") or "", "?")
        rows.append(
            (
                row["scenario"],
                survived,
                *(_cell(row, k) for k in ("hours_lost", "alerts_lost", "duplicates", "stale_as_fresh")),
            )
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    line = lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731  (a one-line local helper reads best as a lambda)
    tr.write_line(line(head))
    tr.write_line("-+-".join("-" * w for w in widths))
    for r in sorted(rows):
        tr.write_line(line(r))
    tried = [r for r in rows if r[1] != "skipped"]
    total = lambda i: sum(int(r[i]) for r in tried if r[i].isdigit())  # noqa: E731  (a one-line local helper reads best as a lambda)
    tr.write_line(
        f"faults survived {sum(r[1] == 'yes' for r in tried)}/{len(tried)}; hours lost {total(2)}, "
        f"alerts lost {total(3)}, duplicates {total(4)}, stale-as-fresh {total(5)}"
    )
