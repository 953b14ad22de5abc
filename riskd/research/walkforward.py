"""Walk-forward evaluation: choose on the train window only, trade the next window, repeat.

Every candidate (a parameter set) is first turned into its trades over the whole history; a window
then only filters them by time, so the grid search costs one pass per candidate. A train trade counts
only if its exit close is known by the end of the train window (``exit_ts + 1h <= train_end``), so no
result from the test window leaks into the choice. Test trades are those entered inside the test window
(they may exit after it: the position was opened on the window's decision). Consecutive windows may
choose different candidates; an out-of-sample trade that would overlap the previous one is dropped.

The **gap** is the mean annualised train Sharpe of the chosen candidates minus the annualised Sharpe of
all out-of-sample trades together (annualisation: :mod:`riskd.research.backtest`). A rule with nothing
to choose has no gap in expectation; a grid search over rare events has a large one.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskd.research.backtest import HOURS_PER_YEAR, YEAR, grouped_sharpe, trade_stats, utc

_HOUR = pd.Timedelta(hours=1)


def rolling_windows(start, end, *, train_months: int = 3, test_months: int = 3) -> pd.DataFrame:
    """Back-to-back test windows of ``test_months`` from ``start + train_months`` to ``end``, each trained
    on the ``train_months`` just before it. Bounds are month starts (UTC); ends are exclusive."""
    first = _month_start(start) + pd.DateOffset(months=train_months)
    last = utc(end)
    rows = []
    test_start = first
    while test_start < last:
        test_end = test_start + pd.DateOffset(months=test_months)
        rows.append(
            (test_start - pd.DateOffset(months=train_months), test_start, test_start, min(test_end, last))
        )
        test_start = test_end
    return pd.DataFrame(rows, columns=["train_start", "train_end", "test_start", "test_end"])


def annual_windows(years: Sequence[int], *, train_start) -> pd.DataFrame:
    """One test window per calendar year, trained on everything from ``train_start`` up to its 1 January."""
    rows = []
    for y in years:
        jan = pd.Timestamp(year=int(y), month=1, day=1, tz="UTC")
        rows.append((utc(train_start), jan, jan, jan + pd.DateOffset(years=1)))
    return pd.DataFrame(rows, columns=["train_start", "train_end", "test_start", "test_end"])


@dataclass(frozen=True)
class WalkForward:
    """The result: one row per window, and the out-of-sample trades (``window``, ``params`` columns)."""

    windows: pd.DataFrame
    oos: pd.DataFrame

    def summary(self) -> dict[str, float]:
        """Train vs out-of-sample figures: ``train_sharpe`` (mean over windows), the OOS trade statistics
        (prefixed ``oos_``; annualised over the total test time) and ``gap`` = train − OOS Sharpe;
        ``train_sharpe_hold`` and ``oos_sharpe_hold_ann`` are the same on the per-holding-period basis."""
        test_years = float(((self.windows["test_end"] - self.windows["test_start"]) / YEAR).sum())
        hold = float(self.oos["hold_h"].mean()) if len(self.oos) else None
        oos = trade_stats(self.oos["net"], years=test_years, hold_h=hold)
        train = self.windows["train_sharpe_ann"].replace([np.inf, -np.inf], np.nan)
        train_hold = self.windows["train_sharpe_hold_ann"].replace([np.inf, -np.inf], np.nan)
        out = {
            "windows": len(self.windows),
            "train_sharpe": float(train.mean()),
            "train_sharpe_hold": float(train_hold.mean()),
        }
        out.update({f"oos_{k}": v for k, v in oos.items()})
        out["gap"] = out["train_sharpe"] - out["oos_sharpe_ann"]
        return out


def walk_forward(
    candidates: Mapping[Any, pd.DataFrame], windows: pd.DataFrame, *, min_train_trades: int = 3
) -> WalkForward:
    """Pick, per window, the candidate with the best per-trade Sharpe on its train trades (at least
    ``min_train_trades`` of them), and keep that candidate's trades in the test window.

    ``candidates`` maps a parameter set to its trades (:func:`riskd.research.backtest.make_trades`).
    With a single candidate this is a plain out-of-sample evaluation of a fixed rule, window by window:
    it trades every window, whatever its train record.
    """
    keys = list(candidates)
    parts = [candidates[k].assign(_key=i) for i, k in enumerate(keys) if len(candidates[k])]
    empty = pd.DataFrame({"exit_ts": [], "net": [], "_key": []}, index=pd.DatetimeIndex([], tz="UTC"))
    every = pd.concat(parts) if parts else empty
    hold_of = {
        i: float(candidates[k]["hold_h"].mean()) if len(candidates[k]) else np.nan for i, k in enumerate(keys)
    }
    rows, oos = [], []
    for w in windows.itertuples(index=False):
        train = every[(every.index >= w.train_start) & (every["exit_ts"] + _HOUR <= w.train_end)]
        scores = grouped_sharpe(train["net"], train["_key"].to_numpy())
        scores = scores[(scores["n"] >= min_train_trades) & scores["sharpe_trade"].notna()]
        row = {**w._asdict(), "chosen": None, "train_n": 0, "train_mean": np.nan}
        row.update(train_sharpe_ann=np.nan, train_sharpe_hold_ann=np.nan)
        best = int(scores["sharpe_trade"].idxmax()) if len(scores) else (0 if len(keys) == 1 else None)
        if best is not None:
            row["chosen"] = _label(keys[best])
            if best in scores.index:
                pick = scores.loc[best]
                train_years = (w.train_end - w.train_start) / YEAR
                row.update(
                    train_n=int(pick["n"]),
                    train_mean=pick["mean"],
                    train_sharpe_ann=pick["sharpe_trade"] * np.sqrt(pick["n"] / train_years),
                    train_sharpe_hold_ann=pick["sharpe_trade"] * np.sqrt(HOURS_PER_YEAR / hold_of[best]),
                )
            mine = every[every["_key"] == best]
            test = mine[(mine.index >= w.test_start) & (mine.index < w.test_end)]
            oos.append(test.drop(columns="_key").assign(window=w.test_start, params=row["chosen"]))
        rows.append(row)
    trades = _drop_overlaps(pd.concat(oos)) if oos else every.iloc[:0].drop(columns="_key")
    extra = ["chosen", "train_n", "train_mean", "train_sharpe_ann", "train_sharpe_hold_ann"]
    table = pd.DataFrame(rows, columns=[*windows.columns, *extra])
    stats = trades.groupby("window")["net"].agg(["count", "mean"]) if len(trades) else None
    table["test_n"] = (
        table["test_start"].map(stats["count"]).fillna(0).astype(int) if stats is not None else 0
    )
    table["test_mean"] = table["test_start"].map(stats["mean"]) if stats is not None else np.nan
    return WalkForward(windows=table, oos=trades)


def _drop_overlaps(trades: pd.DataFrame) -> pd.DataFrame:
    trades = trades.sort_index()
    keep, free_from = [], None
    for entry, exit_ in zip(trades.index, trades["exit_ts"], strict=True):
        ok = free_from is None or entry >= free_from
        keep.append(ok)
        if ok:
            free_from = exit_
    return trades[np.asarray(keep, dtype=bool)]


def _label(key: Hashable) -> str:
    label = getattr(key, "label", None)
    return label() if callable(label) else str(key)


def _month_start(ts) -> pd.Timestamp:
    return utc(ts).normalize().replace(day=1)
