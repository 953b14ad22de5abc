"""Markdown tables and the cell formats of the report (one implementation for every section).

A missing value prints "—"; a ratio over a zero Q1 rate reads "0 crashes in Q1"; a CI with an infinite
end reads "≥ x"; an interval is ``value [lo, hi]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

Cell = Callable[[Any], str]


def missing(v: Any) -> bool:
    """None, NaN or NaT."""
    return v is None or v is pd.NaT or (isinstance(v, float | np.floating) and math.isnan(v))


def pct(v: Any) -> str:
    """A signed percentage (returns, differences)."""
    return "—" if missing(v) else f"{v:+.2%}"


def rate(v: Any) -> str:
    """An unsigned percentage (rates, volatilities)."""
    return "—" if missing(v) else f"{v:.2%}"


def num(v: Any) -> str:
    """Three decimals (small values in three significant digits)."""
    if missing(v):
        return "—"
    return f"{v:.3g}" if abs(v) < 1e-3 and v != 0 else f"{v:.3f}"


def integer(v: Any) -> str:
    """An integer count."""
    return "—" if missing(v) else f"{int(v)}"


def interval(value: Any, lo: Any, hi: Any, fmt: str = "+.4f") -> str:
    """``value [lo, hi]`` in ``fmt``; the value alone without a CI."""
    if missing(value):
        return "—"
    if missing(lo) or missing(hi):
        return f"{value:{fmt}}"
    return f"{value:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def ratio_cell(
    value: float,
    lo: float,
    hi: float,
    q1_crashes: float | None = None,
    low: str = "Q1",
    q1_hours: float | None = None,
) -> str:
    """A Q5/Q1 (or max/min) ratio and its CI: "no hours in Q1" when the past-only edges put none there,
    "0 crashes in Q1" (``low`` names the denominator) for a zero rate, "≥ x" for an infinite upper end."""
    if q1_hours == 0:
        return f"no hours in {low} (past-only edges put every hour above it)"
    if missing(value):
        return "—"
    if value == np.inf or q1_crashes == 0:
        bound = f" (CI ≥ {lo:.2f}x)" if np.isfinite(lo) else ""
        return f"0 crashes in {low}{bound}"
    if missing(lo):
        return f"{value:.2f}x"
    if hi == np.inf:
        return f"{value:.2f}x (CI ≥ {lo:.2f}x)"
    return f"{value:.2f}x [{lo:.2f}, {hi:.2f}]"


def cell(v: Any) -> str:
    """The default cell: timestamps as dates (with the time when not midnight), floats by :func:`num`."""
    if missing(v):
        return "—"
    if isinstance(v, pd.Timestamp):
        return f"{v:%Y-%m-%d %H:%M}" if (v.hour or v.minute) else f"{v:%Y-%m-%d}"
    if isinstance(v, float | np.floating):
        return num(float(v))
    return str(v)


def md_table(frame: pd.DataFrame, formats: Mapping[str, Cell] | None = None) -> str:
    """A GitHub-flavoured Markdown table; ``formats`` maps a column to its cell formatter."""
    formats = formats or {}
    cols = list(frame.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        cells = [formats.get(c, cell)(v) for c, v in zip(cols, row, strict=True)]
        lines.append("| " + " | ".join(s.replace("|", "\\|") for s in cells) + " |")
    return "\n".join(lines)
