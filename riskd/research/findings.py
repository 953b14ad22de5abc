"""The findings table: every figure of RESEARCH.md "Findings to reproduce", the research's value beside ours.

**Verdict rule** (one per figure, from the figure's ``rule``):

- ``not testable`` when we have no value (the data lacks what the figure needs, e.g. no 2020 alt perps or
  no order book), when our sample is smaller than ``min_n`` (default 10 observations), or when the
  figure is marked untestable with a reason.
- ``ci`` (estimates with sampling error: means, ICs, betas, Sharpe ratios, rate ratios): **reproduced**
  when the research's value lies inside our 95% confidence interval **and** our estimate has the same
  sign; otherwise **differs**. A CI with an infinite end (a rate ratio whose resamples include some with
  no crash in Q1) is still a CI, a one-sided one, ``≥ lo``, and decides the same way. Without a CI the
  ``tolerance`` rule applies.
- ``pvalue`` (claims of (non-)significance): **reproduced** when both p-values fall on the same side of
  5%, i.e. the same conclusion, and, when both are significant and the figure names its estimate
  (``paired``), that estimate has the research's sign (a significant effect in the other direction is
  not the same finding).
- ``tolerance`` (counts and path figures without a sampling distribution: numbers of events and trades,
  cumulative return, drawdown): **reproduced** when the sign agrees and ``|ours - research| <=
  tol x |research|`` (``tol`` = 25% unless the figure says otherwise).

The reason column says which rule decided and with what numbers, so a reader can disagree with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Rule = Literal["ci", "pvalue", "tolerance"]
Unit = Literal["pct", "bps", "count", "ratio", "number", "p"]


@dataclass(frozen=True)
class Finding:
    """One figure of the research: what it claims, its value and how ours is compared with it."""

    key: str
    part: str
    claim: str
    value: float
    unit: Unit
    rule: Rule
    tol: float = 0.25
    untestable: str | None = None
    paired: str | None = None


@dataclass(frozen=True)
class Measurement:
    """Our figure for a finding: the value, its 95% CI (if it has one), sample size and span, a note."""

    value: float
    n: int | None = None
    span: str = ""
    ci_lo: float = np.nan
    ci_hi: float = np.nan
    note: str = ""


def _f(key: str, part: str, claim: str, value: float, unit: Unit, rule: Rule, **kw: object) -> Finding:
    return Finding(key, part, claim, value, unit, rule, **kw)  # type: ignore[arg-type]


RESEARCH_FINDINGS: tuple[Finding, ...] = (
    _f("es_events", "event study", "volume-only cascade events 2020–2026", 84, "count", "tolerance"),
    _f("es_obs", "event study", "alt-event observations", 1240, "count", "tolerance"),
    _f("es_alt_24h", "event study", "alts' mean return at 24 h", 0.0157, "pct", "ci"),
    _f("es_btc_24h", "event study", "BTC's mean return at 24 h", 0.0056, "pct", "ci"),
    _f("es_alt_48h", "event study", "alts' mean return at 48 h", 0.0246, "pct", "ci"),
    _f("es_btc_48h", "event study", "BTC's mean return at 48 h", 0.0110, "pct", "ci"),
    _f("es_spread_p", "event study", "alts − BTC spread significant (p < 0.001), 24 h", 0.001, "p", "pvalue"),
    _f("ic_overshoot", "event study", "IC(overshoot, recovery 24 h)", 0.113, "number", "ci"),
    _f("ic_overshoot_p", "event study", "IC(overshoot, recovery 24 h) p-value", 0.0001, "p", "pvalue", paired="ic_overshoot"),
    _f("hh_q5_48h", "event study", "hardest-hit alt quintile, mean at 48 h", 0.0607, "pct", "ci"),
    _f("hh_q5_win", "event study", "hardest-hit alt quintile, win rate at 48 h", 0.66, "pct", "ci"),
    _f("hh_q5_t", "event study", "hardest-hit alt quintile, t-statistic at 48 h", 7.02, "number", "tolerance"),
    _f("ic_depth", "event study", "IC(cascade depth, recovery 24 h), 36 loose events", 0.70, "number", "ci"),
    _f("ic_cfi", "event study", "IC(CFI, forward 24 h return)", 0.048, "number", "ci"),
    _f("ic_cfi_p", "event study", "IC(CFI, forward 24 h return) p-value (p < 1e-6)", 1e-6, "p", "pvalue", paired="ic_cfi"),
    _f("fade_train_sharpe", "walk-forward", "BTC fade grid: train Sharpe", 9.37, "number", "tolerance", tol=0.5),
    _f("fade_oos_sharpe", "walk-forward", "BTC fade grid: OOS Sharpe", -3.66, "number", "ci"),
    _f("fade_oos_win", "walk-forward", "BTC fade grid: OOS win rate", 0.373, "pct", "ci"),
    _f("fade_oos_bps", "walk-forward", "BTC fade grid: OOS mean per trade", -63.9, "bps", "ci"),
    _f("alt_mean", "walk-forward", "alt contagion: mean net per trade", 0.0233, "pct", "ci"),
    _f("alt_p", "walk-forward", "alt contagion: p-value (significant)", 0.029, "p", "pvalue", paired="alt_mean"),
    _f("alt_sharpe", "walk-forward", "alt contagion: Sharpe", 3.58, "number", "ci"),
    _f("alt_trades", "walk-forward", "alt contagion: trades 2021–2025", 72, "count", "tolerance"),
    _f("alt_cum", "walk-forward", "alt contagion: cumulative return", 2.99, "pct", "tolerance"),
    _f("alt_pos_years", "walk-forward", "alt contagion: positive years of five", 5, "count", "tolerance", tol=0.0),
    _f("alt_maxdd", "walk-forward", "alt contagion: max drawdown", -0.34, "pct", "tolerance"),
    _f("spread_p", "walk-forward", "market-neutral spread p-value (not significant)", 0.28, "p", "pvalue"),
    _f("beta", "beta", "beta of alt basket on BTC", 1.158, "number", "ci"),
    _f("r2", "beta", "R² of the beta regression", 0.543, "number", "tolerance"),
    _f("alpha", "beta", "alpha per trade", 0.0098, "pct", "ci"),
    _f("alpha_p", "beta", "alpha p-value (not significant)", 0.182, "p", "pvalue", paired="alpha"),
    _f("alpha_vol", "beta", "alpha with a volatility control", -0.0074, "pct", "ci"),
    _f("alpha_vol_p", "beta", "alpha p-value with a volatility control", 0.797, "p", "pvalue", paired="alpha_vol"),
    _f("up_n", "beta", "trades where BTC recovers", 42, "count", "tolerance"),
    _f("up_alt", "beta", "alts' mean when BTC recovers", 0.0586, "pct", "ci"),
    _f("down_n", "beta", "trades where BTC keeps falling", 30, "count", "tolerance"),
    _f("down_alt", "beta", "alts' mean when BTC keeps falling", -0.0262, "pct", "ci"),
    _f("xs_mean", "walk-forward", "cross-sectional hardest/least-hit: mean per trade", -0.0064, "pct", "ci"),
    _f("cfi_ratio_return", "tail risk", "CFI crash rate Q5/Q1 (in sample); crash = BTC 24 h return", 5.13, "ratio", "ci"),
    _f("cfi_ratio_drawdown", "tail risk", "CFI crash rate Q5/Q1 (in sample); crash = BTC 24 h drawdown", 5.13, "ratio", "ci"),
    _f("cfi_ratio_cascade", "tail risk", "CFI crash rate Q5/Q1 (in sample); crash = cascade in 24 h", 5.13, "ratio", "ci"),
    _f("cost_rt", "costs", "round-trip cost in a cascade ~30 bps", 30, "bps", "tolerance",
       untestable="needs order-book spreads during cascades; the data has candles only"),
    _f("seed_trades", "seed backtest", "multi-asset 1–2 h hold, 2023-01–2024-01: trades", 98, "count", "tolerance"),
    _f("seed_total", "seed backtest", "multi-asset: total return", 0.604, "pct", "tolerance"),
    _f("seed_mean", "seed backtest", "multi-asset: mean per trade", 0.0062, "pct", "ci"),
    _f("seed_maxdd", "seed backtest", "multi-asset: max drawdown", -0.1867, "pct", "tolerance"),
    _f("seed_sharpe", "seed backtest", "multi-asset: Sharpe", 2.11, "number", "ci"),
    _f("seed_2020a_sharpe", "seed backtest", "Mar–Apr 2020 Sharpe (30 trades)", 60.72, "number", "ci"),
    _f("seed_2020b_sharpe", "seed backtest", "May–Dec 2020 Sharpe (47 trades)", 2.44, "number", "ci"),
    _f("seed_2021_sharpe", "seed backtest", "2021 Sharpe (148 trades)", 2.25, "number", "ci"),
)  # fmt: skip # one finding per line, as RESEARCH.md lists them
"""Every figure of RESEARCH.md's "Findings to reproduce", in its order."""


def verdict(
    finding: Finding, ours: Measurement | None, *, min_n: int = 10, paired: tuple[float, float] | None = None
) -> tuple[str, str]:
    """(verdict, reason) for one figure under the rule in the module docstring; ``paired`` is
    (research, ours) of the estimate a p-value belongs to."""
    if finding.untestable:
        return "not testable", finding.untestable
    if ours is None or np.isnan(ours.value):
        return "not testable", (ours.note if ours and ours.note else "no value on this data")
    if ours.n is not None and finding.unit != "count" and ours.n < min_n:
        return "not testable", f"n = {ours.n} < {min_n}"
    research, value = finding.value, ours.value
    if finding.rule == "pvalue":
        same = (research < 0.05) == (value < 0.05)
        word = "significant" if value < 0.05 else "not significant"
        if same and value < 0.05 and paired is not None and np.sign(paired[0]) != np.sign(paired[1]):
            return "differs", f"ours {word} at 5% (p = {value:.3g}) but with the opposite sign"
        return ("reproduced" if same else "differs"), f"ours {word} at 5% (p = {value:.3g})"
    if finding.rule == "ci" and has_ci(ours):
        inside = ours.ci_lo <= research <= ours.ci_hi
        same_sign = np.sign(value) == np.sign(research)
        ci = fmt_ci(ours.ci_lo, ours.ci_hi, finding.unit)
        if inside and same_sign:
            return "reproduced", f"research value inside our 95% CI {ci}"
        why = "outside our 95% CI" if not inside else "inside our CI but the sign differs"
        return "differs", f"research value {why} {ci}"
    off = (value - research) / abs(research) if research else np.inf
    same_sign = np.sign(value) == np.sign(research)
    ok = abs(off) <= finding.tol and (same_sign or research == 0)
    return (
        "reproduced" if ok else "differs"
    ), f"ours is {off:+.0%} off the research's value (tolerance ±{finding.tol:.0%})"


def findings_table(measurements: Mapping[str, Measurement], *, min_n: int = 10) -> pd.DataFrame:
    """One row per research figure: ``part``, ``claim``, ``research``, ``ours`` (formatted), the raw
    ``research_value``/``our_value``, ``ci``, ``n``, ``span``, ``verdict``, ``reason``, ``note``."""
    rows = []
    for f in RESEARCH_FINDINGS:
        m = measurements.get(f.key)
        pair = None
        if f.paired and f.paired in measurements:
            pair = (
                next(g.value for g in RESEARCH_FINDINGS if g.key == f.paired),
                measurements[f.paired].value,
            )
        v, reason = verdict(f, m, min_n=min_n, paired=pair)
        rows.append(
            {
                "key": f.key,
                "part": f.part,
                "claim": f.claim,
                "research": fmt(f.value, f.unit),
                "ours": fmt(m.value, f.unit) if m is not None else "—",
                "ci": fmt_ci(m.ci_lo, m.ci_hi, f.unit) if m is not None and has_ci(m) else "",
                "n": m.n if m is not None else None,
                "span": m.span if m is not None else "",
                "verdict": v,
                "reason": reason,
                "note": m.note if m is not None else "",
                "research_value": f.value,
                "our_value": m.value if m is not None else np.nan,
            }
        )
    return pd.DataFrame(rows)


def has_ci(m: Measurement) -> bool:
    """A CI with a finite lower end and an upper end (finite, or infinite: a one-sided bound)."""
    return bool(np.isfinite(m.ci_lo) and not np.isnan(m.ci_hi) and m.ci_hi >= m.ci_lo)


def fmt_ci(lo: float, hi: float, unit: Unit) -> str:
    """``[lo, hi]``, or ``≥ lo`` when the upper end is infinite (a one-sided 95% bound)."""
    if np.isfinite(lo) and hi == np.inf:
        return f"≥ {fmt(lo, unit)}"
    return f"[{fmt(lo, unit)}, {fmt(hi, unit)}]"


def ratio_text(value: float, lo: float, hi: float, q1_crashes: float) -> str:
    """A crash-rate ratio with its CI as the report words it; a zero Q1 rate is said, not printed as inf."""
    if q1_crashes == 0 or value == np.inf:
        bound = f", CI ≥ {lo:.2f}x" if np.isfinite(lo) else ""
        return f"0 crashes in Q1 (ratio unbounded{bound})"
    if np.isnan(value):
        return "—"
    if np.isfinite(lo) and hi == np.inf:
        return f"{value:.2f}x, CI ≥ {lo:.2f}x"
    return f"{value:.2f}x [{lo:.2f}, {hi:.2f}]"


def fmt(value: float, unit: Unit) -> str:
    """A figure as the report prints it: percentages with a sign, p-values in 3 significant digits; an
    infinite ratio is a zero rate in its denominator, which is what it says."""
    if value is None or not np.isfinite(value):
        if value is not None and value == np.inf:
            return "0 crashes in Q1" if unit == "ratio" else "∞"
        return "—"
    if unit == "pct":
        return f"{value:+.2%}"
    if unit == "bps":
        return f"{value:+.1f} bps"
    if unit == "count":
        return f"{value:.0f}"
    if unit == "p":
        return f"{value:.3g}"
    if unit == "ratio":
        return f"{value:.2f}x"
    return f"{value:+.3f}"
