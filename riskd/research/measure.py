"""Our figure for each research finding, read off the parts' tables (keys of ``RESEARCH_FINDINGS``).

Confidence intervals follow what is independent in each sample: alt-event observations are resampled
by event (the alts of one event share its shock), trades are independent (they never overlap), hourly
series use the block bootstrap of their own module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from arch.bootstrap import IIDBootstrap
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from riskd.research import events
from riskd.research.config import ValidationConfig
from riskd.research.findings import Measurement, ratio_text
from riskd.research.labels import all_kinds
from riskd.research.results import BetaDecomposition, EventStudy, Strategies


def clustered_mean_ci(
    values: pd.Series, clusters: pd.Series, *, reps: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile CI of a pooled mean, resampling whole clusters (arch i.i.d. bootstrap of cluster ids)."""
    frame = pd.DataFrame({"v": np.asarray(values, float), "c": np.asarray(clusters)}).dropna()
    if frame["c"].nunique() < 3:
        return np.nan, np.nan
    g = frame.groupby("c")["v"]
    sums, counts = g.sum().to_numpy(), g.count().to_numpy()

    def pooled(ids: np.ndarray) -> np.ndarray:
        return np.array([sums[ids].sum() / counts[ids].sum()])

    lo, hi = IIDBootstrap(np.arange(len(sums)), seed=seed).conf_int(pooled, reps=reps, method="percentile")
    return float(lo[0]), float(hi[0])


def win_rate_ci(wins: int, n: int) -> tuple[float, float]:
    """Wilson 95% interval of a win rate (statsmodels)."""
    if n == 0:
        return np.nan, np.nan
    lo, hi = proportion_confint(wins, n, alpha=0.05, method="wilson")
    return float(lo), float(hi)


def _span(index: pd.Index) -> str:
    idx = pd.DatetimeIndex(index)
    return f"{idx.min():%Y-%m-%d} – {idx.max():%Y-%m-%d}" if len(idx) else ""


def event_measurements(es: EventStudy, *, reps: int = 1000, seed: int = 0) -> dict[str, Measurement]:
    """Event-study figures: counts, mean returns at 24/48 h, the spread's p-value, ICs, hardest-hit Q5."""
    obs, spread, ic, quint = es.observations, es.spread, es.ic, es.quintiles
    span = _span(obs["ts"])
    out: dict[str, Measurement] = {}
    row24 = spread.set_index("horizon_h").reindex([24, 48])
    alts = obs[obs["symbol"] != events.BTC]
    btc = obs[obs["symbol"] == events.BTC]
    n_ev = int(row24.loc[24, "n_events"]) if pd.notna(row24.loc[24, "n_events"]) else 0
    out["es_events"] = Measurement(n_ev, n_ev, span)
    out["es_obs"] = Measurement(row24.loc[24, "n_obs"], n_ev, span)
    for h in (24, 48):
        lo, hi = clustered_mean_ci(alts[f"ret_{h}h"], alts["ts"], reps=reps, seed=seed)
        out[f"es_alt_{h}h"] = Measurement(row24.loc[h, "alt_mean"], n_ev, span, lo, hi, "CI resamples events")
        b = btc[f"ret_{h}h"].dropna()
        lo, hi = _t_ci(b)
        out[f"es_btc_{h}h"] = Measurement(b.mean() if len(b) else np.nan, len(b), span, lo, hi)
    out["es_spread_p"] = Measurement(
        row24.loc[24, "p_obs"],
        n_ev,
        span,
        note=f"pooled over alt-event observations as the research; per-event test p = {row24.loc[24, 'p_event']:.3g}",
    )
    by_name = ic.set_index("ic_name")
    for key, name in (("ic_overshoot", "overshoot"), ("ic_depth", "depth"), ("ic_cfi", "cfi")):
        r = by_name.loc[name]
        out[key] = Measurement(r["ic"], int(r["n"]), span if name != "cfi" else "", r["ci_lo"], r["ci_hi"])
    out["ic_overshoot_p"] = Measurement(
        by_name.loc["overshoot", "p"], int(by_name.loc["overshoot", "n"]), span
    )
    cfi = by_name.loc["cfi"]
    out["ic_cfi_p"] = Measurement(
        cfi["p"],
        int(cfi["n"]),
        note=f"every hour, overlapping 24 h windows; on every 24th hour p = {cfi.get('p_nonoverlap', np.nan):.3g}",
    )
    q5 = quint.set_index("quintile").loc[5]
    mask = events.overshoot_quintile(obs) == 5
    lo, hi = clustered_mean_ci(obs.loc[mask, "ret_48h"], obs.loc[mask, "ts"], reps=reps, seed=seed)
    out["hh_q5_48h"] = Measurement(q5["mean"], int(q5["n"]), span, lo, hi, "quintiles within each event")
    wins = round(q5["win_rate"] * q5["n"]) if q5["n"] else 0
    out["hh_q5_win"] = Measurement(q5["win_rate"], int(q5["n"]), span, *win_rate_ci(wins, int(q5["n"])))
    out["hh_q5_t"] = Measurement(q5["t"], int(q5["n"]), span, note="pooled t over observations")
    return out


def strategy_measurements(strat: Strategies) -> dict[str, Measurement]:
    """Walk-forward figures: the fade grid's train/OOS gap and the fixed rules' out-of-sample results."""
    return {**fade_measurements(strat), **rule_measurements(strat)}


def fade_measurements(strat: Strategies) -> dict[str, Measurement]:
    """The BTC fade grid: train Sharpe, and the out-of-sample Sharpe, win rate and mean per trade."""
    fs = strat.fade_summary
    oos = strat.fade.oos
    span = _span(oos.index)
    out = {
        "fade_train_sharpe": Measurement(
            fs["train_sharpe_hold"],
            int(fs["windows"]),
            span,
            note=f"mean over windows, per-hold basis; per trades-per-year: {fs['train_sharpe']:.2f}",
        ),
        "fade_oos_sharpe": _hold_basis(
            fs["oos_sharpe_hold_ann"],
            fs["oos_sharpe_ann"],
            int(fs["oos_n"]),
            span,
            (fs["oos_sharpe_ci_lo"], fs["oos_sharpe_ci_hi"]),
        ),
        "fade_oos_win": Measurement(
            fs["oos_win_rate"],
            int(fs["oos_n"]),
            span,
            *win_rate_ci(int((oos["net"] > 0).sum()), len(oos)),
        ),
        "fade_oos_bps": Measurement(
            fs["oos_mean"] * 1e4,
            int(fs["oos_n"]),
            span,
            fs.get("oos_mean_ci_lo", np.nan) * 1e4,
            fs.get("oos_mean_ci_hi", np.nan) * 1e4,
        ),
    }
    return out


def rule_measurements(strat: Strategies) -> dict[str, Measurement]:
    """The fixed rules out of sample: the alt contagion's figures, the spread's test, the cross-section."""
    summary = strat.summary.set_index("strategy")
    alt = summary.loc["alt_contagion"]
    trades = strat.trades["alt_contagion"]
    span = _span(trades.index)
    n = int(alt["n"])
    years = strat.per_year["alt_contagion"]
    out: dict[str, Measurement] = {}
    out.update(
        {
            "alt_mean": Measurement(alt["mean"], n, span, alt["mean_ci_lo"], alt["mean_ci_hi"]),
            "alt_p": Measurement(alt["p"], n, span),
            "alt_sharpe": _hold_basis(
                alt["sharpe_hold_ann"], alt["sharpe_ann"], n, span, (alt["sharpe_ci_lo"], alt["sharpe_ci_hi"])
            ),
            "alt_trades": Measurement(n, n, span),
            "alt_cum": Measurement(alt["total_return"], n, span),
            "alt_pos_years": Measurement(
                int((years["total_return"] > 0).sum()) if len(years) else np.nan,
                n,
                span,
                note=f"of {len(years)} years with trades",
            ),
            "alt_maxdd": Measurement(alt["max_drawdown"], n, span, note="trade-by-trade equity"),
        }
    )
    out["spread_p"] = gross_test(strat.trades["market_neutral"])
    xs = summary.loc["cross_sectional"]
    out["xs_mean"] = Measurement(
        xs["mean"],
        int(xs["n"]),
        _span(strat.trades["cross_sectional"].index),
        xs["mean_ci_lo"],
        xs["mean_ci_hi"],
    )
    return out


def gross_test(trades: pd.DataFrame) -> Measurement:
    """The t-test p-value of a strategy's **gross** mean per trade; the cost and the net figures in the note
    (a cost is a constant per trade: testing net returns mixes it into the return)."""
    gross = trades["gross"].dropna() if len(trades) else pd.Series(dtype=float)
    if len(gross) < 2 or gross.std() == 0:
        return Measurement(np.nan, len(gross), _span(trades.index), note="fewer than 2 trades")
    g = stats.ttest_1samp(gross, 0.0)
    net = stats.ttest_1samp(trades["net"].dropna(), 0.0)
    cost = float(trades["cost"].mean())
    note = (
        f"gross mean {gross.mean():+.2%} per trade (p = {g.pvalue:.3g}); cost {cost:.2%} per trade "
        f"on its own; net mean {trades['net'].mean():+.2%} (p = {net.pvalue:.3g})"
    )
    return Measurement(float(g.pvalue), len(gross), _span(trades.index), note=note)


def beta_measurements(beta: BetaDecomposition, span: str) -> dict[str, Measurement]:
    """Beta-decomposition figures (gross trade returns): beta, R², alpha with and without the volatility
    control, the split; the cost and alpha net of it in the notes."""
    reg = beta.regression.set_index("model")
    base = reg.loc["base"]
    n = int(base["n"])
    cost = beta.cost.set_index("model") if len(beta.cost) else None
    hac = f"gross; HAC p = {base.get('alpha_p_hac', np.nan):.3g}"
    net_note = "gross trade returns"
    if cost is not None and "base" in cost.index:
        c0 = cost.loc["base"]
        net_note = (
            f"gross; cost {c0['cost']:.2%} per trade on its own line; alpha net of cost {c0['alpha_net']:+.2%} "
            f"[{c0['alpha_net_ci_lo']:+.2%}, {c0['alpha_net_ci_hi']:+.2%}], HAC p = {c0['alpha_net_p_hac']:.3g}"
        )
    out = {
        "beta": Measurement(
            base["beta"], n, span, base.get("beta_ci_lo", np.nan), base.get("beta_ci_hi", np.nan)
        ),
        "r2": Measurement(base["r2"], n, span),
        "alpha": Measurement(
            base["alpha"], n, span, base.get("alpha_ci_lo", np.nan), base.get("alpha_ci_hi", np.nan), net_note
        ),
        "alpha_p": Measurement(base.get("alpha_p", np.nan), n, span, note=hac),
    }
    if "controlled" in reg.index:
        c = reg.loc["controlled"]
        out["alpha_vol"] = Measurement(
            c["alpha"],
            int(c["n"]),
            span,
            c.get("alpha_ci_lo", np.nan),
            c.get("alpha_ci_hi", np.nan),
            "gross; control centred: alpha at the mean pre-event BTC volatility",
        )
        out["alpha_vol_p"] = Measurement(c.get("alpha_p", np.nan), int(c["n"]), span)
    split = beta.split.set_index("case")
    for key, case in (("up", "btc_recovers"), ("down", "btc_keeps_falling")):
        r = split.loc[case]
        out[f"{key}_n"] = Measurement(int(r["n"]), int(r["n"]), span)
        out[f"{key}_alt"] = Measurement(
            r["alt_mean"], int(r["n"]), span, r["alt_ci_lo"], r["alt_ci_hi"], "gross alt-basket return"
        )
    return out


def tail_measurements(tail: pd.DataFrame, descriptions: dict[str, str], cfi: str) -> dict[str, Measurement]:
    """The research's CFI Q5/Q1 claim under each crash kind, scored with the research's CFI (Part 2's
    table, in sample as the research reported; the out-of-sample ratio in the note)."""
    out = {}
    for kind, text in descriptions.items():
        t = tail[tail["crash"] == kind].set_index(["sample", "bucket"])
        if ("in_sample", "Q5/Q1") not in t.index:
            continue
        ins, oos = t.loc[("in_sample", "Q5/Q1")], t.loc[("out_of_sample", "Q5/Q1")]
        span = f"{ins['start']:%Y-%m-%d} – {ins['end']:%Y-%m-%d}" if pd.notna(ins["start"]) else ""
        q1, q5 = t.loc[("in_sample", "Q1"), "crashes"], t.loc[("in_sample", "Q5"), "crashes"]
        oos_q1 = t.loc[("out_of_sample", "Q1"), "crashes"]
        note = (
            f"`{cfi}`; crash = {text}; in sample {int(q1)} crashes in Q1, {int(q5)} in Q5; out of sample "
            f"(past-only edges) {ratio_text(oos['value'], oos['ci_lo'], oos['ci_hi'], oos_q1)}"
        )
        out[f"cfi_ratio_{kind}"] = Measurement(
            ins["value"], int(ins["n"]), span, ins["ci_lo"], ins["ci_hi"], note
        )
    return out


def seed_measurements(seed: pd.DataFrame) -> dict[str, Measurement]:
    """The first seed document's figures: 1 h hold without costs (as quoted), the 2 h hold in the note."""
    if seed.empty:
        why = "the multi-asset detector's per-symbol flags were not provided"
        keys = ["seed_trades", "seed_total", "seed_mean", "seed_maxdd", "seed_sharpe"]
        keys += ["seed_2020a_sharpe", "seed_2020b_sharpe", "seed_2021_sharpe"]
        return {k: Measurement(np.nan, 0, note=why) for k in keys}
    rows = seed[(seed["hold_h"] == seed["hold_h"].min()) & (seed["cost_bps"] == 0.0)].set_index("window")
    s = rows.loc["seed sample"]
    n = int(s["n"])
    out = {
        "seed_trades": Measurement(n, n, "seed sample", note="1 h hold, no costs (as the document)"),
        "seed_total": Measurement(s["total_return"], n, "seed sample"),
        "seed_mean": Measurement(s["mean"], n, "seed sample", s["mean_ci_lo"], s["mean_ci_hi"]),
        "seed_maxdd": Measurement(s["max_drawdown"], n, "seed sample"),
        "seed_sharpe": Measurement(s["sharpe_ann"], n, "seed sample", s["sharpe_ci_lo"], s["sharpe_ci_hi"]),
    }
    for key, name in (
        ("seed_2020a_sharpe", "Mar–Apr 2020"),
        ("seed_2020b_sharpe", "May–Dec 2020"),
        ("seed_2021_sharpe", "2021"),
    ):
        r = rows.loc[name]
        out[key] = Measurement(r["sharpe_ann"], int(r["n"]), name, r["sharpe_ci_lo"], r["sharpe_ci_hi"])
    return out


def measurements(
    es: EventStudy,
    tail: pd.DataFrame,
    strat: Strategies,
    beta: BetaDecomposition,
    seed: pd.DataFrame,
    *,
    cfg: ValidationConfig,
) -> dict[str, Measurement]:
    """Every measurement, keyed like ``RESEARCH_FINDINGS`` (the research's CFI: ``cfg.research_cfi``)."""
    out = event_measurements(es, reps=cfg.bootstrap_reps, seed=cfg.seed)
    out.update(strategy_measurements(strat))
    out.update(beta_measurements(beta, _span(strat.trades["alt_contagion"].index)))
    kinds = {k: d.describe() for k, d in all_kinds(cfg.crash).items()}
    out.update(tail_measurements(tail, kinds, cfg.research_cfi))
    out.update(seed_measurements(seed))
    return out


def _hold_basis(hold: float, ours: float, n: int, span: str, ci: tuple[float, float]) -> Measurement:
    """A Sharpe on the research's basis (per holding period, sqrt(8766 / hold_h)), the CI scaled alike,
    with our own basis (trades per year) in the note."""
    k = hold / ours if ours else np.nan
    note = f"per-hold annualisation as the research; ours (sqrt(trades per year)) = {ours:.2f}"
    return Measurement(hold, n, span, ci[0] * k, ci[1] * k, note)


def _t_ci(x: pd.Series) -> tuple[float, float]:
    if len(x) < 2 or x.std() == 0:
        return np.nan, np.nan
    lo, hi = stats.ttest_1samp(x, 0.0).confidence_interval(0.95)
    return float(lo), float(hi)
