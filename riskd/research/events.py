"""Event study: what BTC and the alts do in the hours after a cascade.

Timestamp convention (docs/data.md): rows are candle **open** times, so the close of row ``T`` is known
at ``T + 1h``. An event stamped ``T`` is entered at the close of ``T``; the forward return at horizon
``h`` runs from the close of ``T`` to the close of ``T + h``. The event's own move (the "overshoot")
runs from the close of ``T - k`` to the close of ``T`` (``k = overshoot_hours``). All returns are simple
returns as fractions (0.01 = 1%).

``closes`` everywhere is a frame of close prices, hours x symbols, BTC in column ``BTC``. It is put on
a complete hourly grid first, so a missing candle makes the returns that span it NaN instead of
silently stretching a "1 h" return over two hours.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from arch.bootstrap import IIDBootstrap, StationaryBootstrap
from scipy import stats

HORIZONS: tuple[int, ...] = (1, 2, 4, 12, 24, 48)
"""Forward horizons of the event study, in hours (RESEARCH.md)."""

BTC = "BTC"


def hourly_grid(closes: pd.DataFrame) -> pd.DataFrame:
    """``closes`` reindexed onto every hour between its first and last row (gaps become NaN)."""
    if closes.empty:
        return closes.copy()
    index = closes.index.sort_values()
    full = pd.date_range(index[0], index[-1], freq="h", name=closes.index.name or "ts")
    return closes.reindex(full)


def forward_returns(closes: pd.DataFrame, horizon_h: int) -> pd.DataFrame:
    """Return from the close of each row to the close ``horizon_h`` hours later (fraction)."""
    grid = hourly_grid(closes)
    return grid.shift(-horizon_h) / grid - 1.0


def past_returns(closes: pd.DataFrame, hours: int) -> pd.DataFrame:
    """Return from the close ``hours`` hours before each row to its close (fraction)."""
    grid = hourly_grid(closes)
    return grid / grid.shift(hours) - 1.0


def event_returns(
    closes: pd.DataFrame,
    event_times: Sequence[pd.Timestamp] | pd.DatetimeIndex,
    horizons: Sequence[int] = HORIZONS,
    *,
    overshoot_hours: int = 1,
) -> pd.DataFrame:
    """One row per (event, symbol): the event's own move and the forward returns at each horizon.

    Columns: ``ts`` (event hour), ``symbol``, ``event_ret`` (close ``T - overshoot_hours`` -> close ``T``),
    ``ret_<h>h`` for each horizon (close ``T`` -> close ``T + h``). Symbols without a close at ``T`` are
    left out of that event (not listed yet, delisted, or a gap); a NaN forward return means the horizon
    runs past the data or over a gap.
    """
    grid = hourly_grid(closes)
    times = pd.DatetimeIndex(event_times).intersection(grid.index)
    parts = {"event_ret": past_returns(grid, overshoot_hours).reindex(times)}
    for h in horizons:
        parts[f"ret_{h}h"] = forward_returns(grid, h).reindex(times)
    entry = grid.reindex(times).notna()
    wide = pd.concat(parts, axis=1)
    wide.index.name = "ts"
    long = wide.stack(level=1, future_stack=True)
    long.index.names = ["ts", "symbol"]
    present = entry.stack(future_stack=True)
    present.index.names = ["ts", "symbol"]
    long = long[present.reindex(long.index).fillna(False).to_numpy(dtype=bool)]
    return long.reset_index()


def alt_btc_spread(obs: pd.DataFrame, horizons: Sequence[int] = HORIZONS, *, btc: str = BTC) -> pd.DataFrame:
    """Alts vs BTC after the events, per horizon, with the spread's significance.

    ``obs`` is :func:`event_returns` output. Per horizon: ``n_events``, ``n_obs`` (alt-event
    observations), ``alt_mean`` and ``btc_mean`` (fractions), ``spread_mean`` (alt minus the same event's
    BTC), ``p_obs`` (one-sample t-test over alt-event observations, as the research pooled them) and
    ``p_event`` (t-test over per-event mean spreads: the alts of one event share a shock, so this is
    the honest one), ``alt_win_rate``.
    """
    alts = obs[obs["symbol"] != btc]
    btc_rows = obs[obs["symbol"] == btc].set_index("ts")
    rows = []
    for h in horizons:
        col = f"ret_{h}h"
        btc_ret = btc_rows[col].reindex(alts["ts"]).to_numpy()
        frame = pd.DataFrame({"ts": alts["ts"].to_numpy(), "alt": alts[col].to_numpy(), "btc": btc_ret})
        frame = frame.dropna()
        frame["spread"] = frame["alt"] - frame["btc"]
        per_event = frame.groupby("ts")["spread"].mean()
        rows.append(
            {
                "horizon_h": h,
                "n_events": int(per_event.size),
                "n_obs": len(frame),
                "alt_mean": frame["alt"].mean(),
                "btc_mean": frame.groupby("ts")["btc"].first().mean(),
                "spread_mean": frame["spread"].mean(),
                "p_obs": _ttest_p(frame["spread"]),
                "p_event": _ttest_p(per_event),
                "alt_win_rate": (frame["alt"] > 0).mean() if len(frame) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def spearman_ic(x: pd.Series | np.ndarray, y: pd.Series | np.ndarray) -> dict[str, float]:
    """Spearman rank correlation of ``x`` and ``y`` over pairs where both exist: ``ic``, ``p``, ``n``."""
    frame = pd.DataFrame({"x": np.asarray(x, dtype=float), "y": np.asarray(y, dtype=float)}).dropna()
    if len(frame) < 3 or frame["x"].nunique() < 2 or frame["y"].nunique() < 2:
        return {"ic": np.nan, "p": np.nan, "n": len(frame)}
    res = stats.spearmanr(frame["x"], frame["y"])
    return {"ic": float(res.statistic), "p": float(res.pvalue), "n": len(frame)}


def ic_ci(
    x: pd.Series | np.ndarray,
    y: pd.Series | np.ndarray,
    *,
    clusters: pd.Series | np.ndarray | None = None,
    block: int | None = None,
    reps: int = 500,
    size: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the Spearman IC (arch), resampling what is independent.

    ``clusters`` (e.g. the event of each alt observation) resamples whole clusters, since the alts of
    one event share its shock; ``block`` (hours) uses a stationary block bootstrap for hourly series
    whose forward windows overlap (normal CI from the bootstrap standard error, since a long hourly
    series affords few resamples); otherwise pairs are resampled i.i.d. (percentile CI).
    """
    frame = pd.DataFrame({"x": np.asarray(x, dtype=float), "y": np.asarray(y, dtype=float)})
    if clusters is not None:
        frame["c"] = np.asarray(clusters)
    frame = frame.dropna()
    if len(frame) < 5 or reps <= 0:
        return np.nan, np.nan

    def rho(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # Spearman = Pearson of the (average) ranks; spearmanr's checks cost more than the statistic
        ra, rb = stats.rankdata(a), stats.rankdata(b)
        da, db = ra - ra.mean(), rb - rb.mean()
        den = np.sqrt((da * da).sum() * (db * db).sum())
        return np.array([float((da * db).sum() / den) if den > 0 else 0.0])

    if clusters is not None:
        groups = [g[["x", "y"]].to_numpy() for _, g in frame.groupby("c")]

        def clustered(ids: np.ndarray) -> np.ndarray:
            pairs = np.concatenate([groups[i] for i in ids])
            return rho(pairs[:, 0], pairs[:, 1])

        bs = IIDBootstrap(np.arange(len(groups)), seed=seed)
        lo, hi = bs.conf_int(clustered, reps=reps, method="percentile", size=size)
    else:
        xs, ys = frame["x"].to_numpy(), frame["y"].to_numpy()
        bs = StationaryBootstrap(block, xs, ys, seed=seed) if block else IIDBootstrap(xs, ys, seed=seed)
        # long hourly series: few resamples are affordable, so use their standard error (normal CI)
        lo, hi = bs.conf_int(rho, reps=reps, method="norm" if block else "percentile", size=size)
    return float(lo[0]), float(hi[0])


def overshoot_ic(obs: pd.DataFrame, horizon_h: int = 24, *, btc: str = BTC) -> dict[str, float]:
    """IC of an alt's overshoot (its drop in the event, ``-event_ret``) with its recovery at ``horizon_h``.

    Pooled over alt-event observations, as the research did (1,240 of them).
    """
    alts = obs[obs["symbol"] != btc]
    return spearman_ic(-alts["event_ret"], alts[f"ret_{horizon_h}h"])


def score_ic(
    score: pd.Series, closes: pd.DataFrame, horizon_h: int = 24, *, symbol: str = BTC
) -> dict[str, float]:
    """IC of an hourly score (e.g. the CFI, known at the close of its row) with the forward return.

    ``ic``/``p``/``n`` use every hour, as the research did; overlapping ``horizon_h`` windows make that
    p-value too small, so ``p_nonoverlap``/``n_nonoverlap`` repeat the test on every ``horizon_h``-th hour.
    """
    fwd = forward_returns(closes[[symbol]], horizon_h)[symbol]
    frame = pd.DataFrame({"score": score, "fwd": fwd}).dropna()
    out = spearman_ic(frame["score"], frame["fwd"])
    thin = spearman_ic(frame["score"].iloc[::horizon_h], frame["fwd"].iloc[::horizon_h])
    return {**out, "p_nonoverlap": thin["p"], "n_nonoverlap": thin["n"]}


def overshoot_quintile(obs: pd.DataFrame, *, btc: str = BTC, within_event: bool = True) -> pd.Series:
    """Quintile (1 = least hit, 5 = hardest hit) of each alt observation by its drop in the event.

    ``within_event`` ranks the alts of each event against each other (what a trader can act on at the
    event close); otherwise all observations are pooled. Index aligned with ``obs``; BTC rows are NaN.
    """
    alts = obs[obs["symbol"] != btc].dropna(subset=["event_ret"])
    drop = -alts["event_ret"]
    pct = drop.groupby(alts["ts"]).rank(pct=True) if within_event else drop.rank(pct=True)
    quint = np.ceil(pct * 5).clip(1, 5)
    return quint.reindex(obs.index)


def hardest_hit_quintiles(
    obs: pd.DataFrame, horizon_h: int = 48, *, btc: str = BTC, within_event: bool = True
) -> pd.DataFrame:
    """Forward return at ``horizon_h`` of the alts by overshoot quintile (5 = hardest hit).

    Columns: ``quintile``, ``n``, ``mean``, ``median`` (fractions), ``win_rate``, ``t``, ``p`` (one-sample
    t-test of the mean against zero).
    """
    quint = overshoot_quintile(obs, btc=btc, within_event=within_event)
    frame = pd.DataFrame({"q": quint, "ret": obs[f"ret_{horizon_h}h"]}).dropna()
    rows = []
    for q in range(1, 6):
        r = frame.loc[frame["q"] == q, "ret"]
        t, p = _ttest(r)
        rows.append(
            {
                "quintile": q,
                "n": len(r),
                "mean": r.mean(),
                "median": r.median(),
                "win_rate": (r > 0).mean() if len(r) else np.nan,
                "t": t,
                "p": p,
            }
        )
    return pd.DataFrame(rows)


def _ttest(x: pd.Series) -> tuple[float, float]:
    x = pd.Series(x).dropna()
    if len(x) < 2 or x.std() == 0:
        return np.nan, np.nan
    res = stats.ttest_1samp(x, 0.0)
    return float(res.statistic), float(res.pvalue)


def _ttest_p(x: pd.Series) -> float:
    return _ttest(x)[1]
