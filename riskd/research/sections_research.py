"""The report sections of the research's parts: one renderer per section, typed result in, Markdown lines
out (the signal parts' sections are in :mod:`riskd.research.sections`)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from riskd.research.config import ValidationConfig
from riskd.research.inputs import InputsReport
from riskd.research.mdtable import Cell, integer, md_table, num, pct, rate, ratio_cell
from riskd.research.results import BetaDecomposition, EventStudy, Strategies, ValidationResult

STAT_FMT: dict[str, Cell] = {
    "mean": pct, "median": pct, "win_rate": pct, "total_return": pct, "max_drawdown": pct,
    "n": integer, "t": num, "p": num, "sharpe_ann": num, "sharpe_hold_ann": num,
}  # fmt: skip # one formatter per statistic, kept as a two-line table to read
STAT_COLS = [
    "n",
    "mean",
    "win_rate",
    "t",
    "p",
    "sharpe_ann",
    "sharpe_hold_ann",
    "total_return",
    "max_drawdown",
]


def render_findings(result: ValidationResult) -> list[str]:
    """The report's head and section "Findings": the research's figures beside ours, with the rule."""
    cfg, f = result.config, result.findings
    counts = f["verdict"].value_counts()
    return [
        "# riskd offline validation",
        f"Data: {result.span}. Events: `{cfg.event_level}` cascades (depth IC: `{cfg.depth_level}`). "
        f"Costs: {cfg.cost_bps:g} bps round trip per leg. Crash (riskd's one definition, every part): "
        f"{cfg.crash.describe()}. The research's CFI claims are scored with the research's CFI "
        f"(`{cfg.research_cfi}`).",
        "",
        "## Findings: the research's figures beside ours",
        "  ".join(f"**{k}**: {v}" for k, v in counts.items()),
        "",
        md_table(
            f[["part", "claim", "research", "ours", "ci", "n", "span", "verdict", "reason", "note"]],
            {"n": integer},
        ),
        "",
        "Verdict rule: a figure with a sampling error is *reproduced* when the research's value lies in our "
        "95% CI (the `ci` column; the one CI of that figure) and our estimate has its sign; a p-value when "
        "it leads to the same conclusion at 5%; a count or path figure when it is within the stated "
        "tolerance. *Not testable* says what is missing.",
        "",
    ]


def render_event_study(es: EventStudy, image: str) -> list[str]:
    """Section 1: returns after the events, the ICs, the hardest-hit quintiles."""
    return [
        "## 1. Event study",
        f"![event study]({image})",
        "",
        md_table(es.spread, {"alt_mean": pct, "btc_mean": pct, "spread_mean": pct, "alt_win_rate": pct}),
        "",
        "`p_obs` pools alt-event observations (as the research); `p_event` tests per-event mean spreads.",
        "",
        md_table(es.ic),
        "",
        "Hardest-hit alts by quintile (within each event, 5 = hardest hit), return at 48 h:",
        "",
        md_table(es.quintiles, {"mean": pct, "median": pct, "win_rate": pct}),
        "",
    ]


def tail_table(tail: pd.DataFrame) -> pd.DataFrame:
    """One crash kind's tail-risk table as printed: rates per quintile, the ratio worded."""
    rows = []
    for r in tail.itertuples(index=False):
        if r.bucket == "Q5/Q1":
            q1 = tail[(tail["sample"] == r.sample) & (tail["bucket"] == "Q1")]
            text = ratio_cell(
                r.value, r.ci_lo, r.ci_hi, float(q1["crashes"].iloc[0]), q1_hours=float(q1["n"].iloc[0])
            )
        else:
            text = (
                "—"
                if pd.isna(r.value)
                else f"{r.value:.2%}" + ("" if pd.isna(r.ci_lo) else f" [{r.ci_lo:.2%}, {r.ci_hi:.2%}]")
            )
        rows.append(
            {"sample": r.sample, "bucket": r.bucket, "n": r.n, "crashes": r.crashes, "value [95% CI]": text}
        )
    return pd.DataFrame(rows)


def render_tail(tail: pd.DataFrame, cfg: ValidationConfig, image: str) -> list[str]:
    """Section 2: the research's CFI's crash rate by quintile (the configured kind in full, Q5/Q1 under
    every kind); the findings table reads these figures (one CI per figure)."""
    mine = tail[tail["crash"] == cfg.crash.kind].drop(columns="crash")
    ratios = tail[tail["bucket"] == "Q5/Q1"][["crash", "sample", "value", "ci_lo", "ci_hi"]]
    return [
        f"## 2. CFI tail risk (the research's CFI, `{cfg.research_cfi}`)",
        f"Crash: {cfg.crash.describe()}. Stationary block bootstrap over whole days, mean block {cfg.block_h} h, "
        f"{cfg.bootstrap_reps} resamples, the same for every kind. Out of sample: quintile cut-offs from earlier "
        "hours only.",
        "",
        f"![crash rates]({image})",
        "",
        md_table(tail_table(mine), {"n": integer, "crashes": integer}),
        "",
        "Q5/Q1 under each crash kind (the research does not say which it meant):",
        "",
        md_table(
            ratios.assign(
                ratio=[
                    ratio_cell(v, lo, hi)
                    for v, lo, hi in zip(ratios["value"], ratios["ci_lo"], ratios["ci_hi"], strict=True)
                ]
            )[["crash", "sample", "ratio"]]
        ),
        "",
    ]


def render_walk_forward(strat: Strategies, cfg: ValidationConfig, images: Mapping[str, str]) -> list[str]:
    """Section 3: the fade grid's train/OOS gap, the fixed rules out of sample, per year."""
    fs = strat.fade_summary
    out = [
        "## 3. Walk-forward",
        "`sharpe_ann` = per-trade mean / sd x sqrt(trades per year of evaluated time), our basis; trades never "
        "overlap. `sharpe_hold_ann` = per-trade Sharpe x sqrt(8766 h / hold): the basis the research's figures "
        "match (n = 72, p = 0.029 gives 3.55 on it, vs 3.58 quoted), which treats a mostly flat strategy as if "
        "it traded back to back; the findings table compares on the research's basis.",
        "",
        f"BTC fade over the {len(strat.fade.windows)} rolling {cfg.fade_test_months}-month windows "
        f"(grid chosen on the previous {cfg.fade_train_months} months): train Sharpe "
        f"{fs['train_sharpe']:.2f}, out of sample {fs['oos_sharpe_ann']:.2f} over {fs['oos_n']:.0f} trades, "
        f"gap {fs['gap']:.2f}.",
        "",
        f"![walk forward]({images['walk_forward']})",
        "",
        f"Fixed rules, out of sample {cfg.oos_years[0]}–{cfg.oos_years[-1]}, hold {cfg.hold_h} h, net of "
        f"{cfg.cost_bps:g} bps per leg:",
        "",
        md_table(strat.summary[["strategy", *STAT_COLS]], STAT_FMT),
        "",
        f"![equity]({images['equity']})",
        "",
        f"![drawdown]({images['drawdown']})",
        "",
    ]
    for name, table in strat.per_year.items():
        cols = ["year", *[c for c in STAT_COLS if c in table.columns]]
        out += [f"Per year, {name.replace('_', ' ')}:", "", md_table(table[cols], STAT_FMT), ""]
    return out


def render_beta(beta: BetaDecomposition, image: str) -> list[str]:
    """Section 4: the alt contagion's gross trade return on BTC's, the cost apart, the split."""
    net_cols = ("alpha_gross", "cost", "alpha_net", "alpha_net_ci_lo", "alpha_net_ci_hi")
    return [
        "## 4. Beta decomposition",
        "The alt contagion's **gross** trade return (before costs) on BTC's return over the same hold; the "
        "cost per trade is on its own line below and alpha net of it beside; the split is gross.",
        "",
        f"![trade scatter]({image})",
        "",
        md_table(beta.regression, {"alpha": pct, "n": integer, "hac_lags": integer}),
        "",
        md_table(beta.cost, dict.fromkeys(net_cols, pct)) if len(beta.cost) else "",
        "",
        md_table(beta.split, {"alt_mean": pct, "btc_mean": pct, "alt_win_rate": rate, "n": integer}),
        "",
    ]


def render_seed(seed: pd.DataFrame) -> list[str]:
    """Section 5: the first seed document's multi-asset hold, without costs and with the configured cost."""
    return [
        "## 5. The first seed document's multi-asset hold",
        md_table(seed[["window", "hold_h", "cost_bps", *STAT_COLS]], STAT_FMT)
        if len(seed)
        else "Not run: the multi-asset detector's flags were not provided.",
        "",
    ]


def render_inputs(account: InputsReport) -> list[str]:
    """Section "Data and inputs": the store, the span and warm-up, prices, events, the detector."""
    spot = ", ".join(f"{s} {v:.0%}" for s, v in account.standin_share.items() if v == v and v > 0)
    return [
        "",
        "## Data and inputs",
        f"- Store: `{account.store}`; symbols: {', '.join(account.symbols)}.",
        f"- Validated span: {account.span} ({account.hours:,} hours); the core ran from "
        f"{account.warmup_from} so the span starts warmed up (the crash model trains from there too).",
        "- Prices: Binance perp closes, with the spot close standing in where the perp has no candle "
        "(`panel.spot_stand_in`); a return across a switch mixes spot and perp (one basis-sized jump).",
        f"- Share of priced hours from spot: {spot or 'none'}.",
        "- Events: first hour of each episode per level (`cascade_events`, core cool-down): "
        + ", ".join(f"{k} {v}" for k, v in sorted(account.events.items())),
        f"- Multi-asset detector: {account.multi_asset_check}.",
        *[f"- {n}" for n in account.notes],
        "",
    ]
