"""The report sections of the signal parts: one renderer per part, frozen result in, Markdown lines out.

Every table says what it measures: in or out of sample, gross or net, the CI and its resamples, n.
A ratio over a zero Q1 rate reads "0 crashes in Q1" and a CI with an infinite end reads "≥ x".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from riskd.research.components import ComponentStudy
from riskd.research.exposure import FilterResult
from riskd.research.signals import SignalEvaluation

Cell = Callable[[Any], str]


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float | np.floating) and np.isnan(v))


def _pct(v: Any) -> str:
    return "—" if _missing(v) else f"{v:+.2%}"


def _rate(v: Any) -> str:
    return "—" if _missing(v) else f"{v:.2%}"


def _num(v: Any) -> str:
    return "—" if _missing(v) else f"{v:.3f}"


def ratio_cell(value: float, lo: float, hi: float, q1_crashes: float | None = None, low: str = "Q1") -> str:
    """A Q5/Q1 (or max/min) ratio and its CI: "0 crashes in Q1" (``low`` names the denominator) for a
    zero denominator, "≥ x" for an infinite upper end."""
    if _missing(value):
        return "—"
    if value == np.inf or q1_crashes == 0:
        bound = f" (CI ≥ {lo:.2f}x)" if np.isfinite(lo) else ""
        return f"0 crashes in {low}{bound}"
    if _missing(lo):
        return f"{value:.2f}x"
    if hi == np.inf:
        return f"{value:.2f}x (CI ≥ {lo:.2f}x)"
    return f"{value:.2f}x [{lo:.2f}, {hi:.2f}]"


def table(frame: pd.DataFrame, cells: dict[str, Cell] | None = None) -> str:
    """A Markdown table; ``cells`` formats columns by name (others: ``str``)."""
    cells = cells or {}
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        out = [
            cells.get(c, lambda v: "—" if _missing(v) else str(v))(v) for c, v in zip(cols, row, strict=True)
        ]
        lines.append("| " + " | ".join(s.replace("|", "\\|") for s in out) + " |")
    return "\n".join(lines)


def render_components(study: ComponentStudy, image: str) -> list[str]:
    """Section "Component study": per feature the Q5/Q1 and max/min ratio for each crash definition,
    in and out of sample, and the IC with BTC's forward 24 h return."""
    r = study.ratios
    wide = []
    for feature, part in r.groupby("feature", sort=False):
        row: dict[str, Any] = {"feature": feature}
        for p in part.itertuples(index=False):
            tag = f"{p.crash}, {'IS' if p.sample == 'in_sample' else 'OOS'}"
            row[f"Q5/Q1 {tag}"] = ratio_cell(p.ratio, p.ci_lo, p.ci_hi, p.q1_crashes)
            if p.sample == "in_sample" and p.crash == "return":
                row["max/min IS (return)"] = (
                    f"{ratio_cell(p.maxmin, p.maxmin_lo, p.maxmin_hi, low=f'Q{p.min_q}')} Q{p.max_q}/Q{p.min_q}"
                )
        wide.append(row)
    ic = study.ic.set_index("feature")
    frame = pd.DataFrame(wide, columns=list(wide[0]) if wide else ["feature"])
    frame["IC fwd 24 h [95% CI]"] = [
        f"{ic.loc[f, 'ic']:+.3f} [{ic.loc[f, 'ci_lo']:+.3f}, {ic.loc[f, 'ci_hi']:+.3f}]"
        if f in ic.index and not _missing(ic.loc[f, "ic"])
        else "—"
        for f in frame["feature"]
    ]
    n = int(r["n"].max()) if len(r) else 0
    defs = "; ".join(f"**{k}** = {v}" for k, v in study.crashes.items())
    return [
        "## Component study: which features come before crashes",
        f"Crash definitions: {defs}. Crash rate in the feature's top quintile over its bottom one (Q5/Q1), "
        f"with a 95% stationary block-bootstrap CI ({study.reps} resamples, mean block {study.block_h} h, "
        f"whole days); up to n = {n:,} hours. **IS** = in sample (quintile edges from the whole span); "
        "**OOS** = out of sample (edges from the hours before each month only). max/min = highest over "
        "lowest quintile rate (a U-shaped feature shows here, not in Q5/Q1). IC = Spearman with BTC's "
        "forward 24 h return over every hour (overlapping windows: the CI's blocks carry that)."
        + (f" Left out (too few hours): {', '.join(study.skipped)}." if study.skipped else ""),
        "",
        f"![component study]({image})",
        "",
        table(frame),
        "",
    ]


def render_signals(ev: SignalEvaluation, images: Mapping[str, str]) -> list[str]:
    """Section "Signals out of sample": AUC, Brier, Brier skill with CI and Q5/Q1 per signal."""
    if ev.probabilities.empty:
        return [
            "## Signals out of sample, against the obvious baselines",
            "Not run: no hour of the span has a walk-forward forecast (the history is shorter than the "
            "training window plus the out-of-sample start).",
            "",
        ]
    t = ev.table.copy()
    t["BSS [95% CI]"] = [
        "0 (reference)" if h == "base rate" else f"{b:+.4f} [{lo:+.4f}, {hi:+.4f}]"
        for b, lo, hi, h in zip(t["bss"], t["bss_lo"], t["bss_hi"], t["how"], strict=True)
    ]
    if "ratio" in t:
        t["Q5/Q1 OOS [95% CI]"] = [
            ratio_cell(v, lo, hi, q1)
            for v, lo, hi, q1 in zip(t["ratio"], t["ci_lo"], t["ci_hi"], t["q1_crashes"], strict=True)
        ]
    cols = ["signal", "how", "n", "crashes", "auc", "brier", "BSS [95% CI]", "Q5/Q1 OOS [95% CI]"]
    body = t[[c for c in cols if c in t.columns]]
    best = t[t["how"] != "base rate"].sort_values("bss", ascending=False)
    lead = f"Best Brier skill: **{best.iloc[0]['signal']}**." if len(best) else ""
    return [
        "## Signals out of sample, against the obvious baselines",
        f"Walk-forward over {ev.span}, every signal on the same hours (n = {len(ev.probabilities):,}); "
        f"crash = {ev.crash}. *mapped*: the score becomes a probability by a logistic fit of the crash on "
        "its past rank, refit monthly on the hours whose label was known before the month (monotone, no "
        "future label); *probability*: used as given (GARCH(1,1): normal 24 h return / first passage with "
        "hourly monitoring, refit quarterly on the last two years). Climatology = the past-only base rate. "
        f"BSS = 1 − Brier / Brier(climatology), 95% block-bootstrap CI ({ev.reps} resamples, mean block "
        f"{ev.block_h} h). AUC has no CI here. Q5/Q1: quintile edges from past months only. {lead}",
        "",
        table(body, {"auc": _num, "brier": lambda v: "—" if _missing(v) else f"{v:.5f}"}),
        "",
        f"![reliability]({images['reliability']})",
        "",
        f"![brier skill]({images['brier_skill']})",
        "",
    ]


def render_filter(fr: FilterResult, image: str) -> list[str]:
    """Section "The filter as bots use it": each exposure rule's performance, out of sample and per year."""
    s = fr.summary
    cells: dict[str, Cell] = {
        "mean_exposure": _num,
        "ann_return": _pct,
        "ann_vol": _rate,
        "sharpe": _num,
        "max_drawdown": _pct,
        "es99_day": _pct,
        "worst_day": _pct,
    }
    cols = [
        "asset",
        "strategy",
        "mean_exposure",
        "ann_return",
        "ann_vol",
        "sharpe",
        "max_drawdown",
        "es99_day",
    ]
    cols.append("worst_day")
    oos = s[s["period"] == "out of sample"][cols]
    years = s[(s["period"] != "out of sample")][["period", *cols]]
    return [
        "## The filter as bots use it",
        f"Gross (no rebalancing cost), out of sample from {fr.first_test:%Y-%m-%d}: the asset held at exposure "
        "= the multiplier set at each close, earning the next hour's return (no look-ahead). *constant* and "
        f"*vol target* (min(c / σ, 1), σ = realised volatility over the last {fr.vol_window_h} h) have the "
        "same mean exposure as the first multiplier over the span; *buy and hold* is exposure 1. Return "
        "and volatility annualised from hourly returns; ES99 = mean of the worst 1% of UTC days.",
        "",
        f"![filter equity]({image})",
        "",
        table(oos, cells),
        "",
        "Per year (exposure scales fixed over the whole span):",
        "",
        table(years, cells),
        "",
    ]
