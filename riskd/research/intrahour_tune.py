"""Tuning the provisional detector on a training span, scored after it. Pure.

The candidates are real :class:`~riskd.core.intrahour.IntrahourParams` (the grid ``GRID`` over a base),
replayed through the detector's own ``minute_features`` → ``provisional_levels``, so what is tuned is
what runs live. Each is scored from the cascades' onsets (``riskd.research.latency``) and ranked by
:func:`~riskd.research.latency.objective` on the bars before the cut only: the median latency from
onset with a miss counted as never, within a false-alarm budget. The figures after the cut are
reported for every candidate but never used to choose.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pandas as pd

from riskd.core.intrahour import IntrahourParams, minute_features
from riskd.research.intrahour import hourly_events, riskd_firing
from riskd.research.latency import objective, score, summary
from riskd.research.onset import OnsetRule, cascades

GRID: dict[str, tuple[Any, ...]] = {
    "drop_15m": (-0.025, -0.03),
    "drop_60m": (-0.03, -0.04),
    "drop_from_high": (None, -0.025, -0.03),
    "high_window_minutes": (30, 60),
    "volume_window_minutes": (5, 10, 15),
    "volume_surge": (3.0, 4.0, 5.0),
}
"""The tuned thresholds and their values (the rest stay at the base's); defined before any was scored."""
FEATURE_KEYS = ("volume_window_minutes", "high_window_minutes")  # the ones minute_features reads


@dataclass(frozen=True)
class Tuning:
    """The chosen parameters and every candidate's figures before and after the cut."""

    best: IntrahourParams
    table: pd.DataFrame  # one row per candidate: its grid values, objective, train_* and test_* figures


def candidates(base: IntrahourParams, grid: dict[str, tuple[Any, ...]] = GRID) -> list[IntrahourParams]:
    """Every combination of ``grid`` over ``base``; a window is only varied where its feature is used."""
    out, seen = [], set()
    for values in itertools.product(*grid.values()):
        update = dict(zip(grid, values, strict=True))
        if update.get("drop_from_high") is None:
            update["high_window_minutes"] = base.high_window_minutes
        p = base.model_copy(update=update)
        key = tuple(sorted(p.model_dump().items(), key=lambda kv: kv[0]))
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def tune(
    btc: pd.DataFrame,
    alts: pd.DataFrame | None,
    bar_minutes: int,
    cut: pd.Timestamp,
    base: IntrahourParams,
    budget: float = 1.5,
    grid: dict[str, tuple[Any, ...]] = GRID,
    rule: OnsetRule | None = None,
) -> Tuning:
    """Score every candidate; choose by the objective before ``cut`` (ties: the earlier in the grid)."""
    bar = pd.Timedelta(minutes=bar_minutes)
    rows, cached = [], {}
    table_cascades = None
    for i, p in enumerate(candidates(base, grid)):
        fkey = tuple(getattr(p, k) for k in FEATURE_KEYS)
        if fkey not in cached:
            cached[fkey] = minute_features(btc, alts, None, p, bar_minutes=bar_minutes)
        feats = cached[fkey]
        if table_cascades is None:
            table_cascades = cascades(feats["btc_close"], pd.DatetimeIndex(hourly_events(btc).index), rule)
        s = score(feats["btc_close"], riskd_firing(feats, p), table_cascades, bar)
        row: dict[str, Any] = {"candidate": i, **{k: getattr(p, k) for k in grid}}
        row["objective"] = objective(s, None, cut, budget)
        for span, (since, until) in {"train": (None, cut), "test": (cut, None)}.items():
            f = summary(s, since, until)
            for k in (
                "warned",
                "cascades",
                "median_latency",
                "median_latency10",
                "median_share_ahead",
                "after_trough",
                "false_per_month",
                "within_30",
            ):
                row[f"{span}_{k}"] = f[k]
        rows.append(row)
    table = pd.DataFrame(rows).sort_values(["objective", "candidate"], kind="stable").reset_index(drop=True)
    best = candidates(base, grid)[int(table["candidate"].iloc[0])]
    return Tuning(best, table)
