"""The report's figures: each takes the tables of a part and returns a matplotlib ``Figure``.

Figures are built with the object API (``Figure()``, no pyplot state), so they draw with the Agg
canvas in any thread and nothing here touches the screen or the disk; the report module saves them.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

_ALT, _BTC, _GREY = "#1f77b4", "#7f7f7f", "#bbbbbb"


def _axes(title: str, size: tuple[float, float] = (7.5, 4.2)):
    """A figure with one axes and its title wrapped to the figure's width (a long title is never cut)."""
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.subplots()
    width = max(int(size[0] * 10.5), 30)  # about 10.5 characters per inch at 11 pt
    lines = [textwrap.fill(part, width) for part in title.split("\n")]
    ax.set_title("\n".join(lines), fontsize=11)
    ax.grid(alpha=0.3)
    return fig, ax


def event_study_curves(spread: pd.DataFrame) -> Figure:
    """Mean return of the alts and of BTC after the events, by horizon (``alt_btc_spread`` output)."""
    n_ev = int(spread["n_events"].max()) if "n_events" in spread and len(spread) else 0
    fig, ax = _axes(f"After the cascade: alts vs BTC, gross mean returns, in sample, {n_ev} events")
    h = np.r_[0, spread["horizon_h"].to_numpy()]
    ax.plot(h, np.r_[0, spread["alt_mean"]], "o-", color=_ALT, label="alts (mean of alt-event obs.)")
    ax.plot(h, np.r_[0, spread["btc_mean"]], "s--", color=_BTC, label="BTC")
    for row in spread.itertuples():
        ax.annotate(
            f"p={row.p_event:.2g}",
            (row.horizon_h, row.alt_mean),
            textcoords="offset points",
            xytext=(0, 6),
            fontsize=7,
            ha="center",
        )
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("hours after the event close")
    ax.set_ylabel("mean return")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(fontsize=8)
    ax.text(
        0.99, 0.02, "p: alts − BTC spread, per-event t-test", transform=ax.transAxes, ha="right", fontsize=7
    )
    return fig


def equity_vs_benchmark(equity: pd.Series, benchmark: pd.Series, *, label: str = "alt contagion") -> Figure:
    """Compounded equity of a strategy beside BTC bought at the same closes (buy the dip)."""
    fig, ax = _axes(
        f"Equity, net of costs, out of sample: strategy vs BTC buy-the-dip (same entries, n = {max(len(equity) - 1, 0)})"
    )
    if len(equity):
        ax.step(equity.index, equity.to_numpy(), where="post", color=_ALT, label=label)
    if len(benchmark):
        ax.step(
            benchmark.index, benchmark.to_numpy(), where="post", color=_BTC, ls="--", label="BTC buy-the-dip"
        )
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_ylabel("equity (start = 1)")
    if len(equity) or len(benchmark):
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no out-of-sample trades", ha="center", va="center", transform=ax.transAxes)
    return fig


def trade_scatter(x: pd.Series, y: pd.Series, alpha: float, beta: float) -> Figure:
    """Each trade's alt-basket return against BTC's, with the fitted line ``y = alpha + beta x``."""
    fig, ax = _axes(
        f"Trades (out of sample, n = {len(x.dropna())}): gross alt basket vs BTC, OLS fit", (6.0, 5.0)
    )
    frame = pd.concat({"x": x, "y": y}, axis=1).dropna()
    win = frame["y"] > 0
    ax.scatter(frame.loc[win, "x"], frame.loc[win, "y"], s=18, color="#2ca02c", label="profitable")
    ax.scatter(frame.loc[~win, "x"], frame.loc[~win, "y"], s=18, color="#d62728", label="loss")
    if len(frame) and np.isfinite(beta):
        xs = np.linspace(frame["x"].min(), frame["x"].max(), 50)
        ax.plot(xs, alpha + beta * xs, color="black", label=f"β = {beta:.2f}, α = {alpha:+.2%}")
    ax.axhline(0, color=_GREY, lw=0.8)
    ax.axvline(0, color=_GREY, lw=0.8)
    ax.set_xlabel("BTC return over the trade")
    ax.set_ylabel("alt basket gross return")
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(fontsize=8)
    return fig


def crash_rates(tail: pd.DataFrame) -> Figure:
    """Crash rate per CFI quintile with its bootstrap CI, in sample and out of sample (``tail_risk``)."""
    n = int(tail.loc[tail["bucket"] != "Q5/Q1", "n"].sum() / 2) if len(tail) else 0
    fig, ax = _axes(f"Crash rate by CFI quintile, in vs out of sample, 95% block-bootstrap CI, n ≈ {n:,} h")
    buckets = [f"Q{k}" for k in range(1, 6)]
    pos = np.arange(5)
    for i, (sample, color) in enumerate((("in_sample", _ALT), ("out_of_sample", "#ff7f0e"))):
        t = tail[tail["sample"] == sample].set_index("bucket").reindex(buckets)
        err = np.vstack([t["value"] - t["ci_lo"], t["ci_hi"] - t["value"]]).clip(min=0)
        ax.bar(
            pos + (i - 0.5) * 0.38,
            t["value"],
            0.38,
            yerr=err,
            capsize=3,
            color=color,
            label=sample.replace("_", " "),
        )
    ax.set_xticks(pos, buckets)
    ax.set_xlabel("CFI quintile (Q5 = most fragile)")
    ax.set_ylabel("share of hours followed by a crash")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(fontsize=8)
    return fig


def drawdown_chart(equity: pd.Series, *, label: str = "alt contagion") -> Figure:
    """Drawdown of the compounded equity below its running peak."""
    fig, ax = _axes(f"Drawdown, net of costs, out of sample: {label}", (7.5, 3.2))
    if len(equity):
        dd = equity / np.maximum(equity.cummax(), 1.0) - 1.0
        ax.fill_between(dd.index, dd.to_numpy(), 0, step="post", color="#d62728", alpha=0.5)
        ax.annotate(f"max {dd.min():.1%}", (dd.idxmin(), dd.min()), fontsize=8)
    ax.set_ylabel("drawdown")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    return fig


def walk_forward_gap(windows: pd.DataFrame) -> Figure:
    """Per window: the chosen parameter set's train Sharpe and the mean return it then made out of sample."""
    fig, ax = _axes(
        f"BTC fade grid, net: in-sample train Sharpe vs out-of-sample test mean, {len(windows)} windows"
    )
    ax.bar(
        windows["test_start"], windows["train_sharpe_ann"], width=60, color=_GREY, label="train Sharpe (ann.)"
    )
    ax.set_ylabel("train Sharpe")
    ax2 = ax.twinx()
    ax2.plot(windows["test_start"], windows["test_mean"], "o", color="#d62728", label="test mean per trade")
    ax2.axhline(0, color="#d62728", lw=0.6)
    ax2.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax2.set_ylabel("test mean per trade")
    fig.legend(fontsize=8, loc="outside lower center", ncols=2)
    return fig
