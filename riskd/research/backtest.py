"""Trades from entry hours, and the statistics of a list of trades.

Conventions (see :mod:`riskd.research.events`): a trade stamped ``entry_ts = T`` buys at the close of
row ``T`` and sells at the close of row ``exit_ts = T + hold_h``; its result is known at ``exit_ts + 1h``.
Trades of one strategy never overlap: a signal is taken only once the previous trade has exited, so the
strategy is always fully in one trade or flat and the per-trade returns compound into its equity.

Returns are simple fractions. Costs are a round trip in basis points per unit of gross notional: a
long-only trade pays ``cost_bps`` once, a long/short trade (two legs of 1x each) pays it twice.

**Sharpe annualisation**: ``sharpe_ann = sharpe_trade * sqrt(trades_per_year)``, where ``sharpe_trade``
is the mean over the standard deviation (ddof 1) of per-trade net returns and ``trades_per_year`` is the
number of trades over the length of the evaluated period in years (365.25 days). It is the Sharpe of the
strategy's time series only if flat periods earn nothing, which is how cash-or-trade strategies are
quoted; the t-statistic is ``sharpe_trade * sqrt(n)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from riskd.research.events import forward_returns

YEAR = pd.Timedelta(days=365.25)
TRADE_COLUMNS = ("exit_ts", "hold_h", "gross", "cost", "net")


def non_overlapping(entries: Sequence[pd.Timestamp] | pd.DatetimeIndex, hold_h: int) -> pd.DatetimeIndex:
    """The entries a one-position-at-a-time strategy takes: each waits until the previous trade exits."""
    hold = pd.Timedelta(hours=hold_h)
    taken: list[pd.Timestamp] = []
    free_from: pd.Timestamp | None = None
    for t in pd.DatetimeIndex(entries).sort_values().unique():
        if free_from is None or t >= free_from:
            taken.append(t)
            free_from = t + hold
    return pd.DatetimeIndex(taken, name="entry_ts")


def make_trades(
    gross: pd.Series, *, hold_h: int, cost_bps: float, legs: int = 1, **extra: pd.Series
) -> pd.DataFrame:
    """The trades frame: index ``entry_ts``; ``exit_ts``, ``hold_h``, ``gross``, ``cost``, ``net`` (+ extras).

    Rows with a NaN gross return (no price at entry or exit) are dropped.
    """
    idx = pd.DatetimeIndex(gross.index, name="entry_ts")
    frame = pd.DataFrame(
        {
            "exit_ts": idx + pd.Timedelta(hours=hold_h),
            "hold_h": hold_h,
            "gross": gross.to_numpy(dtype=float),
            "cost": legs * cost_bps / 1e4,
        },
        index=idx,
    )
    frame["net"] = frame["gross"] - frame["cost"]
    for name, values in extra.items():
        frame[name] = values.reindex(idx).to_numpy()
    return frame[frame["gross"].notna()]


def basket_returns(
    closes: pd.DataFrame, entries: pd.DatetimeIndex, hold_h: int, symbols: Sequence[str] | None = None
) -> tuple[pd.Series, pd.Series]:
    """Equal-weight basket return over ``hold_h`` from each entry close, and how many symbols it held.

    A symbol without a close at the entry or the exit (not listed yet, delisted, gap) is left out of
    that trade's basket; a basket with no symbol is NaN.
    """
    cols = list(symbols) if symbols is not None else list(closes.columns)
    fwd = forward_returns(closes[cols], hold_h).reindex(entries)
    return fwd.mean(axis=1), fwd.notna().sum(axis=1)


HOURS_PER_YEAR = 8766.0
"""365.25 days of hours."""


def trade_stats(
    net: pd.Series, *, years: float | None = None, exits: pd.Series | None = None, hold_h: float | None = None
) -> dict[str, float]:
    """Summary of per-trade net returns (fractions): the numbers every table in the report prints.

    ``years`` is the length of the evaluated period; by default the span from the first entry to the
    last exit (``exits``) or last entry. Keys: ``n``, ``mean``, ``median``, ``std``, ``win_rate``, ``t``,
    ``p`` (two-sided one-sample t-test, scipy), ``mean_ci_lo``/``mean_ci_hi`` (its 95% CI), ``sharpe_trade``, ``trades_per_year``, ``sharpe_ann``,
    ``total_return`` (compounded), ``max_drawdown`` (of the trade-by-trade equity, a negative fraction),
    and with ``hold_h`` ``sharpe_hold_ann`` = sharpe_trade x sqrt(hours per year / hold_h): the basis the
    research's Sharpe figures match (as if trades followed each other all year; it overstates a strategy
    that is mostly flat, which is why ``sharpe_ann`` is the one we report).
    """
    r = pd.Series(net, dtype=float).dropna()
    n = len(r)
    if years is None:
        years = _span_years(r.index, exits)
    out: dict[str, float] = {"n": n, "years": years}
    if n == 0:
        return {**out, **dict.fromkeys(_STAT_KEYS, np.nan)}
    std = r.std(ddof=1) if n > 1 else np.nan
    t, p, lo, hi = (np.nan,) * 4
    if n > 1 and std > 0:
        res = stats.ttest_1samp(r, 0.0)
        t, p = float(res.statistic), float(res.pvalue)
        lo, hi = res.confidence_interval(0.95)
    sharpe = r.mean() / std if n > 1 and std > 0 else np.nan
    per_year = n / years if years and years > 0 else np.nan
    equity = (1.0 + r).cumprod()
    return {
        **out,
        "mean": r.mean(),
        "mean_ci_lo": float(lo),
        "mean_ci_hi": float(hi),
        "median": r.median(),
        "std": std,
        "win_rate": float((r > 0).mean()),
        "t": t,
        "p": p,
        "sharpe_trade": sharpe,
        "trades_per_year": per_year,
        "sharpe_ann": sharpe * np.sqrt(per_year),
        "sharpe_hold_ann": sharpe * np.sqrt(HOURS_PER_YEAR / hold_h) if hold_h else np.nan,
        "total_return": float(equity.iloc[-1] - 1.0),
        "max_drawdown": float(drawdown(equity).min()),
    }


_STAT_KEYS = (
    "mean", "mean_ci_lo", "mean_ci_hi", "median", "std", "win_rate", "t", "p", "sharpe_trade", "trades_per_year",
    "sharpe_ann", "sharpe_hold_ann",
    "total_return", "max_drawdown",
)  # fmt: skip # the column names in reading order, several to a line


def sharpe_ci(
    net: pd.Series, *, years: float, reps: int = 1000, size: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the annualised Sharpe (trades resampled with replacement).

    Trades do not overlap, so an i.i.d. bootstrap over them is the natural one; the resamples are one
    ``reps × n`` draw of trade indices (numpy's generator, ``seed``), every statistic at once.
    """
    r = pd.Series(net, dtype=float).dropna().to_numpy()
    if len(r) < 3 or reps <= 0 or not years or r.std() == 0:
        return np.nan, np.nan
    scale = np.sqrt(len(r) / years)
    draws = r[np.random.default_rng(seed).integers(0, len(r), (reps, len(r)))]
    sd = draws.std(axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sharpe = np.where(sd > 0, draws.mean(axis=1) / sd * scale, 0.0)
    tail = (1.0 - size) / 2.0
    lo, hi = np.quantile(sharpe, [tail, 1.0 - tail])
    return float(lo), float(hi)


def grouped_sharpe(net: pd.Series, groups: pd.Series | np.ndarray) -> pd.DataFrame:
    """Per group: ``n``, ``mean``, ``std`` (ddof 1), ``sharpe_trade`` and ``t`` = sharpe x sqrt(n), vectorised.

    Used to score many parameter sets at once; a test checks it against ``scipy.stats.ttest_1samp``.
    """
    g = pd.Series(net, dtype=float).groupby(np.asarray(groups))
    out = pd.DataFrame({"n": g.count(), "mean": g.mean(), "std": g.std(ddof=1)})
    out["sharpe_trade"] = (out["mean"] / out["std"]).where(out["std"] > 0)
    out["t"] = out["sharpe_trade"] * np.sqrt(out["n"])
    return out


def per_year(trades: pd.DataFrame, column: str = "net", *, start=None, end=None) -> pd.DataFrame:
    """:func:`trade_stats` per calendar year of entry; ``years`` is the share of the year inside
    ``[start, end]`` (the data span), so a half year annualises its Sharpe over half a year."""
    rows = []
    for year, part in trades.groupby(trades.index.year):
        y0 = pd.Timestamp(year=int(year), month=1, day=1, tz="UTC")
        y1 = y0 + pd.DateOffset(years=1)
        lo = max(y0, utc(start)) if start is not None else y0
        hi = min(y1, utc(end)) if end is not None else y1
        rows.append({"year": int(year), **trade_stats(part[column], years=max((hi - lo) / YEAR, 1 / 365.25))})
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["year", "n", *_STAT_KEYS])


def equity_curve(trades: pd.DataFrame, column: str = "net") -> pd.Series:
    """Compounded equity (starts at 1.0 at the first entry), stamped at each trade's exit hour."""
    if trades.empty:
        return pd.Series(dtype=float, name="equity")
    eq = (1.0 + trades[column]).cumprod()
    eq.index = pd.DatetimeIndex(trades["exit_ts"], name="ts")
    start = pd.Series([1.0], index=pd.DatetimeIndex([trades.index[0]], name="ts"))
    return pd.concat([start, eq]).rename("equity")


def drawdown(equity: pd.Series) -> pd.Series:
    """Fall of the equity below its running peak (0 at a new high, -0.34 = 34% below it)."""
    peak = np.maximum(equity.cummax(), 1.0)
    return (equity / peak - 1.0).rename("drawdown")


def utc(ts) -> pd.Timestamp:
    """A timestamp in UTC; a naive one is taken to be UTC already."""
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _span_years(index: pd.Index, exits: pd.Series | None) -> float:
    if len(index) == 0:
        return np.nan
    last = pd.Timestamp(exits.max()) if exits is not None and len(exits) else pd.Timestamp(index.max())
    return max((last - pd.Timestamp(index.min())) / YEAR, 1 / 365.25)
