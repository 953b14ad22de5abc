"""The report sections of the signal parts: one renderer per part, frozen result in, Markdown lines out.

Every table says what it measures: in or out of sample, gross or net, the CI and its resamples, n.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from riskd.research.components import ComponentStudy
from riskd.research.evaluation import SignalEvaluation
from riskd.research.exposure import FilterResult
from riskd.research.mdtable import Cell, integer, interval, md_table, missing, num, pct, rate, ratio_cell
from riskd.research.modelstudy import ModelStudy
from riskd.research.tiers import NESTED, TierChoice


def render_components(study: ComponentStudy, image: str, research_cfi: str = "cfi_v1") -> list[str]:
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
                mm = ratio_cell(p.maxmin, p.maxmin_lo, p.maxmin_hi, low=f"Q{p.min_q}")
                row["max/min IS (return)"] = f"{mm} Q{p.max_q}/Q{p.min_q}"
        wide.append(row)
    ic = study.ic.set_index("feature")
    frame = pd.DataFrame(wide, columns=list(wide[0]) if wide else ["feature"])
    frame["IC fwd 24 h [95% CI]"] = [
        interval(ic.loc[f, "ic"], ic.loc[f, "ci_lo"], ic.loc[f, "ci_hi"], "+.3f") if f in ic.index else "—"
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
        "forward 24 h return over every hour (overlapping windows: the CI's blocks carry that). The "
        f"research's CFI (`{research_cfi}`) is scored in Part 2, with its own CI there."
        + (f" Left out (too few hours): {', '.join(study.skipped)}." if study.skipped else ""),
        "",
        f"![component study]({image})",
        "",
        md_table(frame),
        "",
    ]


def render_model(study: ModelStudy) -> list[str]:
    """Section "The crash model": the published inputs, the last fit, and what each input contributes."""
    m = study.last
    lines = [
        "## The crash model (`crash_prob_24h`): its inputs and what each contributes",
        f"Logistic regression of the crash on {', '.join(f'`{f}`' for f in study.spec.features)} (standardised; "
        f"volatilities in logs), refit at every month start on the hours whose label was known by then "
        f"(label of hour T known at T + {study.spec.horizon_hours + 1} h), {study.fits} fits; each month is "
        "predicted by the fit before it. That walk-forward series is what the signals section scores as "
        "`crash_prob_24h`: what the daemon would have published, recalibrated monthly.",
        "",
    ]
    if m is not None:
        coef = pd.DataFrame(
            {
                "input": m.features,
                "read as": m.transforms,
                "coefficient (per sd)": m.coefficients,
                "s.e.": m.std_errors[1:],
            }
        )
        lines += [
            f"Last fit ({m.fitted_at[:10]}, {m.n_obs:,} hours, {m.n_crashes:,} crash hours, in sample), "
            f"intercept {m.intercept:+.3f}:",
            "",
            md_table(coef, {"coefficient (per sd)": lambda v: f"{v:+.3f}", "s.e.": num}),
            "",
        ]
    c = study.contributions
    if len(c):
        blocks = study.blocks
        table = c[["change", "kind", "n", "crashes", "span"]].copy()
        for b in blocks:
            table[f"ΔBSS, {b // 24}-day blocks"] = [
                interval(v, lo, hi)
                for v, lo, hi in zip(c[f"d_bss_{b}"], c[f"d_bss_{b}_lo"], c[f"d_bss_{b}_hi"], strict=True)
            ]
        lines += [
            "Each change refit the same way and scored on the same out-of-sample hours; ΔBSS = Brier skill "
            "with the input − without it (*drop*: the published model minus the model without the input; "
            "*add*: the model with the candidate minus the published one; *replace*: published minus the "
            f"alternative), paired over the same block-bootstrap resamples (95% CI; the {blocks[-1] // 24}-day "
            "blocks are the honest ones). A CI that straddles zero: the input's contribution is not told "
            "apart from none.",
            "",
            md_table(table, {"n": integer, "crashes": integer}),
            "",
        ]
    return lines + [f"- {n}" for n in study.notes] + [""]


def _signal_table(ev: SignalEvaluation) -> pd.DataFrame:
    t = ev.table
    out = pd.DataFrame({"signal": t["signal"], "how": t["how"]})
    out["AUC [95% CI]"] = [
        interval(v, lo, hi, ".3f") for v, lo, hi in zip(t["auc"], t["auc_lo"], t["auc_hi"], strict=True)
    ]
    out["BSS [95% CI]"] = [
        "0 (reference)" if h == "base rate" else interval(v, lo, hi)
        for v, lo, hi, h in zip(t["bss"], t["bss_lo"], t["bss_hi"], t["how"], strict=True)
    ]
    for b in ev.blocks:
        if f"d_bss_{b}" in t:
            out[f"ΔBSS vs {ev.reference}, {b // 24}-day blocks"] = [
                "—" if s in (ev.reference, "climatology") else interval(v, lo, hi)
                for s, v, lo, hi in zip(
                    t["signal"], t[f"d_bss_{b}"], t[f"d_bss_{b}_lo"], t[f"d_bss_{b}_hi"], strict=True
                )
            ]
    if "ratio" in t:
        out["Q5/Q1 OOS [95% CI]"] = [
            ratio_cell(v, lo, hi, q1, q1_hours=n1)
            for v, lo, hi, q1, n1 in zip(
                t["ratio"], t["ci_lo"], t["ci_hi"], t["q1_crashes"], t["q1_n"], strict=True
            )
        ]
    return out


def _per_year_table(years: pd.DataFrame) -> pd.DataFrame:
    """Signals as rows, calendar years as columns, each cell "AUC / BSS"; a first row of hours and crash
    hours per year."""
    cols = sorted(set(years["year"]))
    counts = years.groupby("year")[["n", "crashes"]].first()
    rows = [
        {"signal": "hours (crash hours)"}
        | {str(y): f"{counts.loc[y, 'n']:,} ({counts.loc[y, 'crashes']:,})" for y in cols}
    ]
    for signal, part in years.groupby("signal", sort=False):
        by = part.set_index("year")
        rows.append(
            {"signal": signal} | {str(y): f"{num(by.loc[y, 'auc'])} / {by.loc[y, 'bss']:+.3f}" for y in cols}
        )
    return pd.DataFrame(rows)


def render_signals(ev: SignalEvaluation, images: Mapping[str, str]) -> list[str]:
    """Section "Signals out of sample": the verdict first, then AUC, Brier skill, the paired differences
    with realised volatility and Q5/Q1 per signal, and the per-year table."""
    head = "## Signals out of sample, against the obvious baselines"
    if ev.probabilities.empty:
        why = "the history is shorter than the training window plus the out-of-sample start"
        return [
            head,
            ev.verdict.line(),
            "",
            f"Not run: no hour of the span has a walk-forward forecast ({why}).",
            "",
        ]
    n, crashes = len(ev.probabilities), int(ev.probabilities["crash"].sum())
    per_year = _per_year_table(ev.per_year)
    return [
        head,
        ev.verdict.line(),
        "",
        *[f"{v.line()}\n" for v in ev.more_verdicts],
        f"Walk-forward over {ev.span}, every signal on the same hours (n = {n:,}, {crashes:,} crash hours in "
        f"{ev.episodes:,} separate episodes: the episodes, not the hours, are the sample's real size); crash = "
        f"{ev.crash}. *mapped*: the score becomes a probability by a logistic fit of the crash on its past "
        "rank, refit monthly on the hours whose label was known before the month (T + 25 h); *probability*: "
        "used as given (`crash_prob_24h`: the walk-forward model of the section above; GARCH(1,1): normal 24 h "
        "return / first passage with hourly monitoring, refit quarterly on the last two years). Climatology = "
        "the past-only base rate. BSS = 1 − Brier / Brier(climatology). ΔBSS = (Brier(reference) − "
        "Brier(signal)) / Brier(climatology), paired: both forecasts on the same resamples. 95% stationary "
        f"block-bootstrap CIs over whole days, {ev.reps} resamples; AUC and BSS at {ev.block_h // 24}-day blocks. "
        "Q5/Q1: quintile edges from past months only.",
        "",
        md_table(_signal_table(ev)),
        "",
        "Per calendar year, AUC / BSS (point estimates, out of sample; a year holds a few dozen crash "
        "episodes, so these move a lot):",
        "",
        md_table(per_year),
        "",
        f"![reliability]({images['reliability']})",
        "",
        f"![brier skill]({images['brier_skill']})",
        "",
    ]


FILTER_CELLS = {
    "mean_exposure": num, "ann_return": pct, "ann_vol": rate, "sharpe": num,
    "max_drawdown": pct, "es99_day": pct, "worst_day": pct,
}  # fmt: skip # one formatter per measure, kept short to read
NET_CELLS: dict[str, Cell] = {
    "turnover": lambda v: "—" if missing(v) else f"{v:.1f}", "cost": pct, "ann_return_gross": pct,
    "ann_return": pct, "sharpe_gross": num, "sharpe": num, "es99_day": pct,
}  # fmt: skip # one formatter per column, in the table's order, kept short to read
FILTER_COLS = [
    "asset",
    "strategy",
    "mean_exposure",
    "ann_return",
    "ann_vol",
    "sharpe",
    "max_drawdown",
    "es99_day",
    "worst_day",
]


def _paired_filter(fr: FilterResult) -> pd.DataFrame:
    p = fr.paired
    return pd.DataFrame(
        {
            "asset": p["asset"],
            "rule": p["strategy"],
            "vs": p["baseline"],
            "ΔES99 (pp)": [
                interval(v * 100, lo * 100, hi * 100, "+.2f")
                for v, lo, hi in zip(p["d_es99"], p["d_es99_lo"], p["d_es99_hi"], strict=True)
            ],
            "ΔSharpe": [
                interval(v, lo, hi, "+.2f")
                for v, lo, hi in zip(p["d_sharpe"], p["d_sharpe_lo"], p["d_sharpe_hi"], strict=True)
            ],
        }
    )


def _filter_intro(fr: FilterResult) -> str:
    """What the filter table compares, at which mean exposure, and what the nested rule is."""
    target = ", ".join(f"{a} {v:.3f}" for a, v in fr.target.items())
    vols = " and ".join(f"{w} h" for w in fr.vol_windows_h)
    return (
        f"Out of sample from {fr.first_test:%Y-%m-%d}: the asset held at exposure = the rule's multiplier set "
        "at each close, earning the next hour's return (no look-ahead). **Every rule at the same mean "
        f"exposure** ({target}: the lowest of the regime variants' means; each regime multiplier scaled down "
        f"to it, *constant* at it, *vol target* = min(c / σ, 1) with σ the realised volatility over {vols} "
        "and c solved for it); *buy and hold* is exposure 1, shown for scale. "
        f"**`{NESTED}`** is the rule scored for the choice of tier signal: at each month start, the "
        "candidate whose out-of-sample probability had the lowest Brier score over the hours whose label "
        "was known by then (the fixed-signal rows beside it are not a choice: picking the best of them "
        "here would be picking on the test set). Annual return compounded (CAGR); volatility and Sharpe "
        "from hourly returns; ES99 = mean of the worst 1% of UTC days. Gross first:"
    )


def render_filter(fr: FilterResult, image: str, choice: TierChoice | None = None) -> list[str]:
    """Section "The filter as bots use it": every rule at one mean exposure, gross; the paired
    differences; net of cost; per year; how the nested choice chose."""
    s = fr.summary
    oos = s[s["period"] == "out of sample"][FILTER_COLS]
    years = s[s["period"] != "out of sample"][["period", *FILTER_COLS]]
    net = fr.net[["asset", "strategy", *NET_CELLS]]
    out = [
        "## The filter as bots use it",
        _filter_intro(fr),
        "",
        f"![filter equity]({image})",
        "",
        md_table(oos, FILTER_CELLS),
        "",
        f"Paired differences (rule − baseline, gross), the same block-bootstrap resamples of days for both, "
        f"mean block {fr.block_h // 24} days, {fr.reps} resamples, 95% CI; ΔES99 > 0: the rule's worst days "
        "are milder:",
        "",
        md_table(_paired_filter(fr)),
        "",
        f"Net of cost: {fr.cost_bps:g} bps of notional per unit of exposure change (`validation.exposure_cost_bps`); "
        "turnover = Σ |Δ exposure| per year, cost = its drag per year:",
        "",
        md_table(net, NET_CELLS),
        "",
        "Per year (gross; exposure scales fixed over the whole span):",
        "",
        md_table(years, FILTER_CELLS),
        "",
    ]
    if choice is not None and len(choice.months):
        picked = choice.months["chosen"].value_counts()
        last = choice.months.iloc[-1]
        out += [
            f"The nested choice over {len(choice.months)} months: "
            + ", ".join(f"`{k}` {v}" for k, v in picked.items())
            + f" months; at the last month start ({last['month']:%Y-%m-%d}) it picks `{last['chosen']}`.",
            "",
        ]
    return out
