"""Figures of the signal parts (component study, out-of-sample scores, the filter), object API only.

Each title says what the figure is: in or out of sample, gross or net, the CI and the sample size.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from riskd.research.components import ComponentStudy
from riskd.research.evaluation import SignalEvaluation
from riskd.research.exposure import FilterResult
from riskd.research.plots import _axes

_IN, _OUT = "#1f77b4", "#ff7f0e"


def component_ratios(study: ComponentStudy, crash: str, *, top: int = 20) -> Figure:
    """Q5/Q1 crash-rate ratio per feature with its 95% CI, in and out of sample (log scale), best first."""
    r = study.ratios[study.ratios["crash"] == crash]
    oos = r[r["sample"] == "out_of_sample"].set_index("feature")
    ins = r[r["sample"] == "in_sample"].set_index("feature")
    order = oos["ratio"].replace(np.inf, 1e6).dropna().sort_values(ascending=False).index[:top][::-1]
    n = int(oos["n"].max()) if len(oos) else 0
    fig, ax = _axes(
        f"Q5/Q1 crash rate by feature, 95% block-bootstrap CI ({study.reps} resamples), n ≤ {n:,} h\n"
        f"crash = {study.crashes.get(crash, crash)}",
        (7.5, 0.28 * len(order) + 1.8),
    )
    y = np.arange(len(order))
    for shift, table, color, label in ((-0.17, ins, _IN, "in sample"), (0.17, oos, _OUT, "out of sample")):
        t = table.reindex(order)
        val = t["ratio"].clip(upper=1e3).to_numpy(dtype=float)
        lo = t["ci_lo"].to_numpy(dtype=float)
        hi = t["ci_hi"].clip(upper=1e3).to_numpy(dtype=float)
        err = np.vstack([np.clip(val - lo, 0, None), np.clip(hi - val, 0, None)])
        ax.errorbar(
            val, y + shift, xerr=np.nan_to_num(err), fmt="o", ms=4, color=color, capsize=2, label=label
        )
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks(y, list(order), fontsize=7)
    ax.set_xlabel("crash rate in Q5 / crash rate in Q1 (log scale; ≥ 1000 drawn at 1000)")
    ax.legend(fontsize=8)
    return fig


def reliability(ev: SignalEvaluation) -> Figure:
    """Reliability diagram: mean out-of-sample forecast vs observed crash rate, by forecast decile."""
    n = len(ev.probabilities)
    fig, ax = _axes(
        f"Reliability, out of sample {ev.span}, n = {n:,} h, deciles of each forecast", (6.5, 5.0)
    )
    rel = ev.reliability
    top = 0.0
    for name, part in rel.groupby("signal", sort=False):
        ax.plot(part["mean_prob"], part["rate"], "o-", ms=3, label=str(name))
        top = max(top, float(part["mean_prob"].max()), float(part["rate"].max()))
    ax.plot([0, top], [0, top], color="black", lw=0.8, ls="--", label="perfect calibration")
    ax.set_xlabel("mean forecast probability")
    ax.set_ylabel(f"observed crash rate ({ev.crash})" if len(ev.crash) < 40 else "observed crash rate")
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(fontsize=7)
    return fig


def filter_equity(fr: FilterResult, asset: str = "BTC") -> Figure:
    """Compounded gross equity of the asset held at each exposure rule, out of sample (log scale)."""
    cols = [c for c in fr.equity.columns if c[0] == asset]
    start = f"{fr.first_test:%Y-%m-%d}"
    fig, ax = _axes(
        f"{asset}: equity at each exposure rule, one mean exposure, gross, out of sample from {start}",
        (7.5, 4.6),
    )
    # one point a day (the last hour's equity), as naive UTC datetime64: matplotlib converts those in
    # one vectorised call (tz-aware timestamps go one by one, seconds for six years of hours)
    daily = fr.equity[cols].groupby(fr.equity.index.floor("D")).last()
    days = daily.index.tz_convert("UTC").tz_localize(None).to_numpy()
    for col in cols:
        ax.plot(days, daily[col].to_numpy(), lw=1.0, label=col[1])
    ax.set_yscale("log")
    ax.set_ylabel("equity (start = 1, log scale)")
    ax.set_xlabel("UTC")
    ax.legend(fontsize=7, ncols=2)
    return fig


def brier_skill(ev: SignalEvaluation) -> Figure:
    """Brier skill against the past-only base rate, with its 95% block-bootstrap CI, per signal."""
    t = ev.table[ev.table["how"] != "base rate"]
    fig, ax = _axes(
        f"Brier skill vs climatology, out of sample {ev.span}, n = {int(t['n'].max()) if len(t) else 0:,} h, "
        f"95% CI",
        (7.0, 0.45 * len(t) + 1.6),
    )
    y = np.arange(len(t))
    val = t["bss"].to_numpy(dtype=float)
    err = np.vstack([val - t["bss_lo"].to_numpy(dtype=float), t["bss_hi"].to_numpy(dtype=float) - val])
    ax.errorbar(val, y, xerr=np.nan_to_num(np.clip(err, 0, None)), fmt="o", color=_OUT, capsize=3)
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(y, [f"{s} ({h})" for s, h in zip(t["signal"], t["how"], strict=True)], fontsize=8)
    ax.set_xlabel("1 − Brier / Brier(climatology)")
    return fig
