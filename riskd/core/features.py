"""Cross-sectional hourly features: one value per hour from the symbols' values in that hour.

Stage 1 of the core. Each feature is one small function of a
:class:`~riskd.core.crosssection.CrossSection` (the shared pieces of a block of hours), so the batch
path (blocks of ~500 hours) and the live path (a block of one hour) run the very same code.
Units: funding per hour (fraction), returns as fractions, volume in base and quote units.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from riskd.core import liquidations
from riskd.core.crosssection import OI_LAGS, CrossSection, Window, count, mean_std, share, weighted_mean
from riskd.core.params import FragilityParams
from riskd.core.windows import nan_to_zero

_CHUNK = 8192
"""Multi-asset candidates ranked at once (8192 × 720 hours × 8 bytes ≈ 47 MB at most)."""


# --- funding (rates per hour) -------------------------------------------------------------------


def agg_funding(xs: CrossSection) -> np.ndarray:
    """Quote-volume-weighted mean primary-venue funding over the top-N symbols (per hour)."""
    return weighted_mean(xs.primary, xs)


def venue_agg_funding(venue: str) -> Callable[[CrossSection], np.ndarray]:
    """Same aggregate on another venue, over the same top-N set and weights."""

    def feature(xs: CrossSection) -> np.ndarray:
        return weighted_mean(xs.rates(venue), xs)

    feature.__name__ = f"agg_funding_{venue}"
    return feature


def funding_gap(xs: CrossSection) -> np.ndarray:
    """Primary minus the mean of the gap venues, symbol by symbol, then weighted (per hour)."""
    others = [r for r in (xs.rates(v) for v in xs.p.funding.gap_venues) if r is not None]
    if xs.primary is None or not others:
        return np.full(xs.rows, np.nan)
    total, count = np.zeros_like(others[0]), np.zeros_like(others[0])
    for rates in others:
        present = ~np.isnan(rates)
        total += np.where(present, rates, 0.0)
        count += present
    with np.errstate(invalid="ignore", divide="ignore"):
        return weighted_mean(xs.primary - total / count, xs)


def funding_dispersion(xs: CrossSection) -> np.ndarray:
    """Cross-sectional std (ddof=1, unweighted) of primary funding over the top-N set (per hour)."""
    if xs.primary is None:
        return np.full(xs.rows, np.nan)
    return mean_std(xs.primary, xs.primary_top, xs.p.universe.min_symbols)[1]


def funding_max(xs: CrossSection) -> np.ndarray:
    """Highest primary funding in the top-N set (per hour): the most crowded long."""
    if xs.primary is None:
        return np.full(xs.rows, np.nan)
    vals = np.where(xs.primary_top, xs.primary, -np.inf).max(axis=1)
    return np.where(np.isfinite(vals), vals, np.nan)


def extreme_funding_share(xs: CrossSection) -> np.ndarray:
    """Share of the top-N set whose |primary funding| is at or above the extreme threshold."""
    if xs.primary is None:
        return np.full(xs.rows, np.nan)
    hit = np.abs(xs.primary) >= xs.p.funding.extreme_abs_per_hour
    return share(hit, xs.primary_top, xs.p.universe.min_symbols)


def positive_funding_share(xs: CrossSection) -> np.ndarray:
    """Share of the top-N set paying positive funding (longs pay shorts)."""
    if xs.primary is None:
        return np.full(xs.rows, np.nan)
    return share(xs.primary > 0, xs.primary_top, xs.p.universe.min_symbols)


def funding_universe_n(xs: CrossSection) -> np.ndarray:
    """Symbols in the funding universe with a primary-venue rate this hour: the aggregates' coverage."""
    return count(xs.primary_top)


# --- prices and volumes ---------------------------------------------------------------------------


def xs_ret_mean(xs: CrossSection) -> np.ndarray:
    """Equal-weight mean 1 h return across symbols (fraction)."""
    return xs.ret_stats[0]


def xs_ret_std(xs: CrossSection) -> np.ndarray:
    """Cross-sectional std of 1 h returns (fraction)."""
    return xs.ret_stats[1]


def breadth_down(xs: CrossSection) -> np.ndarray:
    """Share of symbols whose 1 h return is below −breadth_threshold."""
    return share(xs.r1 < -xs.p.market.breadth_threshold, xs.r1_valid, xs.p.universe.min_symbols)


def breadth_up(xs: CrossSection) -> np.ndarray:
    """Share of symbols whose 1 h return is above +breadth_threshold."""
    return share(xs.r1 > xs.p.market.breadth_threshold, xs.r1_valid, xs.p.universe.min_symbols)


def alt_excess_ret(xs: CrossSection) -> np.ndarray:
    """Equal-weight mean 1 h return of the alts minus BTC's (fraction): alts over- or undershooting."""
    if xs.win.btc is None:
        return np.full(xs.rows, np.nan)
    alts = xs.r1_valid.copy()
    alts[:, xs.win.btc] = False
    n = count(alts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.add.reduce(np.where(alts, xs.r1, 0.0), axis=1) / n
    return np.where(n >= xs.p.universe.min_symbols, mean, np.nan) - xs.r1[:, xs.win.btc]


def market_quote_volume(xs: CrossSection) -> np.ndarray:
    """Total quote volume of the priced symbols this hour (quote units); NaN when none is priced."""
    total = np.add.reduce(nan_to_zero(xs.now(xs.win.quote_volume)), axis=1)
    return np.where(count(xs.priced) > 0, total, np.nan)


def volume_surge_share(xs: CrossSection) -> np.ndarray:
    """Share of symbols whose volume exceeds volume_surge_ratio × their previous-24 h mean."""
    base = xs.volume_baseline
    among = ~np.isnan(base) & (base > 0) & ~np.isnan(xs.now(xs.win.volume))
    with np.errstate(invalid="ignore", divide="ignore"):
        hit = xs.now(xs.win.volume) > xs.p.market.volume_surge_ratio * base
    return share(hit, among, xs.p.universe.min_symbols)


def multi_asset_hits(xs: CrossSection) -> tuple[np.ndarray, np.ndarray]:
    """The (row, symbol) cells crashing by the first seed document's rule (1 h and 2 h drops + volume
    spike): the multi-asset detector, whose per-hour count is a feature and whose per-asset cells the
    offline strategies trade (``riskd.core.crashing_assets``).

    The volume spike ranks this hour's volume against the asset's own previous ``volume_window_hours``
    (past only): it must exceed at least ``volume_quantile`` of them. Ranked only for the few cells
    that already show both drops (a few percent of them).
    """
    m = xs.p.multi_asset
    rows, cols = np.nonzero(xs.r1 < m.max_return_1h)
    r2 = xs.close[rows, cols] / xs.now(xs.win.close, 2)[rows, cols] - 1.0
    rows, cols = rows[r2 < m.max_return_2h], cols[r2 < m.max_return_2h]
    w, hist = m.volume_window_hours, xs.win.volume_history
    current = hist[w + rows, cols]
    symbols = np.unique(cols)
    # The candidates' columns, transposed, make every past window a contiguous slice to compare with.
    columns = hist.T[symbols]
    windows = sliding_window_view(columns, w, axis=1)
    at = np.searchsorted(symbols, cols)
    gappy = np.isnan(columns).any(axis=1)[at]  # only these need their valid hours counted
    hit = np.zeros(rows.shape, dtype=bool)
    for lo in range(0, len(rows), _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        past = windows[at[sl], rows[sl]]
        n_valid = np.full(len(past), w)
        if gappy[sl].any():
            n_valid[gappy[sl]] = np.count_nonzero(~np.isnan(past[gappy[sl]]), axis=1)
        n_below = np.count_nonzero(past < current[sl, None], axis=1)
        hit[sl] = (n_valid >= m.volume_min_periods) & (n_below >= m.volume_quantile * n_valid)
    return rows[hit], cols[hit]


def multi_asset_count(xs: CrossSection) -> np.ndarray:
    """Assets crashing this hour by the first seed document's rule (1 h and 2 h drops + volume spike)."""
    rows, _ = multi_asset_hits(xs)
    return np.bincount(rows, minlength=xs.rows).astype(np.float64)


def _oi_change(lag: int) -> Callable[[CrossSection], np.ndarray]:
    def feature(xs: CrossSection) -> np.ndarray:
        oi = xs.win.open_interest
        if oi is None:
            return np.full(xs.rows, np.nan)
        now, before = xs.now(oi), xs.now(oi, lag)
        use = ~np.isnan(now) & ~np.isnan(before) & xs.priced
        num = np.add.reduce(np.where(use, now * xs.close, 0.0), axis=1)
        den = np.add.reduce(np.where(use, before * xs.close, 0.0), axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / den - 1.0, np.nan)

    feature.__doc__ = f"Open-interest change over {lag} h at today's prices (fraction, base-unit OI)."
    return feature


# --- coverage and pass-through ----------------------------------------------------------------------


def coverage(xs: CrossSection) -> np.ndarray:
    """Share of the panel's symbols with a price this hour."""
    return count(xs.priced) / xs.close.shape[1]


def funding_coverage(venue: str) -> Callable[[CrossSection], np.ndarray]:
    """Share of the panel's symbols with a rate on ``venue`` this hour."""

    def feature(xs: CrossSection) -> np.ndarray:
        rates = xs.win.funding.get(venue)
        if rates is None:
            return np.zeros(xs.rows)
        return count(~np.isnan(xs.now(rates))) / xs.close.shape[1]

    return feature


def oi_coverage(xs: CrossSection) -> np.ndarray:
    """Share of the panel's symbols with open interest this hour."""
    if xs.win.open_interest is None:
        return np.zeros(xs.rows)
    return count(~np.isnan(xs.now(xs.win.open_interest))) / xs.close.shape[1]


def spot_standin_share(xs: CrossSection) -> np.ndarray:
    """Share of the priced symbols whose price this hour comes from spot (the documented stand-in)."""
    if xs.win.stand_in is None:
        return np.where(count(xs.priced) > 0, 0.0, np.nan)
    return share(xs.now(xs.win.stand_in), xs.priced, 1)


def btc_close(xs: CrossSection) -> np.ndarray:
    """BTC perp close (quote units), handed to the time-series stage."""
    return xs.close[:, xs.win.btc] if xs.win.btc is not None else np.full(xs.rows, np.nan)


def btc_volume(xs: CrossSection) -> np.ndarray:
    """BTC perp volume (base units), handed to the time-series stage."""
    if xs.win.btc is None:
        return np.full(xs.rows, np.nan)
    return xs.now(xs.win.volume)[:, xs.win.btc]


def _liquidation(name: str) -> Callable[[CrossSection], np.ndarray]:
    """One of riskd's own liquidation figures for the hour (``riskd.core.liquidations.stage1_series``)."""

    def feature(xs: CrossSection) -> np.ndarray:
        rows = xs.win.liquidations
        if rows is None:  # nothing recorded: no figures, coverage 0
            rows = np.column_stack([np.full((xs.rows, 2), np.nan), np.zeros(xs.rows)])
        return liquidations.stage1_series(rows, xs.p.liquidations)[name]

    feature.__name__ = name
    return feature


def stage1_features(p: FragilityParams) -> dict[str, Callable[[CrossSection], np.ndarray]]:
    """Name → function of every cross-sectional feature, in output order."""
    gap_venues = [v for v in p.funding.gap_venues if v != p.funding.primary_venue]
    features: dict[str, Callable[[CrossSection], np.ndarray]] = {"agg_funding": agg_funding}
    features.update({f"agg_funding_{v}": venue_agg_funding(v) for v in gap_venues})
    features.update(
        {
            "funding_gap": funding_gap,
            "funding_dispersion": funding_dispersion,
            "funding_max": funding_max,
            "extreme_funding_share": extreme_funding_share,
            "positive_funding_share": positive_funding_share,
            "funding_universe_n": funding_universe_n,
            "xs_ret_mean": xs_ret_mean,
            "xs_ret_std": xs_ret_std,
            "breadth_down": breadth_down,
            "breadth_up": breadth_up,
            "alt_excess_ret": alt_excess_ret,
            "market_quote_volume": market_quote_volume,
            "volume_surge_share": volume_surge_share,
            "multi_asset_count": multi_asset_count,
        }
    )
    features.update({f"oi_change_{lag}h": _oi_change(lag) for lag in OI_LAGS})
    features["coverage"] = coverage
    for venue in (p.funding.primary_venue, *gap_venues):
        features[f"funding_coverage_{venue}"] = funding_coverage(venue)
    features.update(
        {
            "oi_coverage": oi_coverage,
            "spot_standin_share": spot_standin_share,
            "btc_close": btc_close,
            "btc_volume": btc_volume,
        }
    )
    if p.liquidations.enabled:  # off: the output is exactly what it was before riskd recorded any
        features.update({name: _liquidation(name) for name in liquidations.STAGE1})
    return features


def cross_section(win: Window, p: FragilityParams) -> dict[str, np.ndarray]:
    """Every stage-1 feature for the block's output rows."""
    xs = CrossSection(win, p)
    return {name: fn(xs) for name, fn in stage1_features(p).items()}
