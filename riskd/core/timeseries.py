"""Time-series features: BTC velocity, volume ratio, realised volatility and the trailing z-scores.

Stage 2 of the core. It works on the hourly series that stage 1 produced (one value per hour), with
finite look-backs only, so the live path gets the same numbers from a buffer of the last
:func:`stage2_lookback` hours as the batch path from the whole history. Units: returns, drawdowns and
volatilities as fractions; vol ratios unitless; funding per hour.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from riskd.core import liquidations
from riskd.core.params import FragilityParams
from riskd.core.windows import (
    lag,
    previous_mean,
    rolling_max,
    rolling_mean,
    rolling_sum_count,
    rolling_zscore,
)

Series = Mapping[str, np.ndarray]

WEEK_HOURS = 168
MONTH_HOURS = 720
"""The crash model's horizons (HAR-style realised volatility over a day, a week and 30 days; the drawdown
from the week's high): fixed by the model's design (docs/features.md, Crash probability), not settings."""
CRASH_INPUTS: tuple[str, ...] = (
    "btc_rv_7d",
    "btc_rv_30d",
    "btc_drawdown_7d",
    "btc_ret_24h",
    "btc_downside_rv_24h",
)
"""The columns :func:`crash_inputs` adds (with ``btc_rv_24h``, the crash model's inputs)."""


def stage2_lookback(p: FragilityParams) -> int:
    """Hours of stage-1 history the live path keeps: the longest chain of windows below, plus slack
    (the 30-day realised volatility needs 720 hourly returns, so 721 closes)."""
    m = p.market
    inner = max(m.rv_short_hours, m.rv_long_hours, m.volume_baseline_hours, m.drawdown_hours, 24, 8)
    rows = max(p.zscore.window_hours + inner + 2, MONTH_HOURS + 2)
    return max(rows, p.liquidations.window_hours + 2) if p.liquidations.enabled else rows


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def btc_ret(close: np.ndarray, hours: int) -> np.ndarray:
    """BTC simple return over ``hours`` (fraction): the velocity."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return close / lag(close, hours) - 1.0


def acceleration(velocity: np.ndarray, hours: int) -> np.ndarray:
    """Change of a velocity over ``hours`` (fraction per step)."""
    return velocity - lag(velocity, hours)


def vol_ratio(volume: np.ndarray, p: FragilityParams) -> np.ndarray:
    """This hour's volume / mean volume of the PREVIOUS 24 h (RESEARCH.md's ``vol_ratio``)."""
    m = p.market
    return _ratio(volume, previous_mean(volume, m.volume_baseline_hours, m.volume_baseline_min_periods))


def realised_vol(close: np.ndarray, hours: int) -> np.ndarray:
    """sqrt(sum of squared hourly log returns) over ``hours`` (fraction per ``hours``).

    Missing hours are made up for by scaling with window / valid count; fewer than half valid: NaN.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        log_ret = np.log(close / lag(close, 1))
    s, n = rolling_sum_count(log_ret * log_ret, hours)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= hours / 2, np.sqrt(s * hours / n), np.nan)


def downside_vol(close: np.ndarray, hours: int) -> np.ndarray:
    """sqrt of the downside semivariance: the sum of squared *negative* hourly log returns over
    ``hours``, scaled like :func:`realised_vol` (fraction per ``hours``). Falls alone count: a market
    that has been dropping, not merely moving."""
    with np.errstate(invalid="ignore", divide="ignore"):
        log_ret = np.log(close / lag(close, 1))
    down = np.where(log_ret < 0, log_ret * log_ret, np.where(np.isnan(log_ret), np.nan, 0.0))
    s, n = rolling_sum_count(down, hours)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= hours / 2, np.sqrt(s * hours / n), np.nan)


def crash_inputs(close: np.ndarray) -> dict[str, np.ndarray]:
    """The crash model's own inputs from BTC's hourly closes (:data:`CRASH_INPUTS`): realised volatility
    over 7 and 30 days, the drawdown from the 7-day high, the 24 h return (momentum) and the 24 h downside
    volatility. Finite windows only: the live buffer (:func:`stage2_lookback`) gives the same bits."""
    return {
        "btc_rv_7d": realised_vol(close, WEEK_HOURS),
        "btc_rv_30d": realised_vol(close, MONTH_HOURS),
        "btc_drawdown_7d": drawdown(close, WEEK_HOURS),
        "btc_ret_24h": btc_ret(close, 24),
        "btc_downside_rv_24h": downside_vol(close, 24),
    }


def rv_ratio(close: np.ndarray, p: FragilityParams) -> np.ndarray:
    """Short realised vol over the long one rescaled to the short horizon (>1: volatility expanding)."""
    short, long = p.market.rv_short_hours, p.market.rv_long_hours
    return _ratio(realised_vol(close, short), realised_vol(close, long) * np.sqrt(short / long))


def drawdown(close: np.ndarray, hours: int) -> np.ndarray:
    """Close / highest close of the trailing ``hours`` (current included) − 1 (fraction, ≤ 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return close / rolling_max(close, hours) - 1.0


def change(series: np.ndarray, hours: int) -> np.ndarray:
    """Difference with the value ``hours`` earlier, in the series' units."""
    return series - lag(series, hours)


def zscore(series: np.ndarray, p: FragilityParams, floor: float) -> np.ndarray:
    """Trailing z-score over ``zscore.window_hours`` (current hour included), std floored."""
    z = p.zscore
    return rolling_zscore(series, z.window_hours, z.min_periods, floor)


def stage2(s1: Series, p: FragilityParams) -> dict[str, np.ndarray]:
    """Every time-series feature, aligned with the stage-1 series (same length)."""
    close, volume, zf = s1["btc_close"], s1["btc_volume"], p.zscore
    out: dict[str, np.ndarray] = {}
    out["btc_ret_1h"] = btc_ret(close, 1)
    out["btc_ret_4h"] = btc_ret(close, 4)
    out["btc_accel_1h"] = acceleration(out["btc_ret_1h"], 1)
    out["btc_accel_4h"] = acceleration(out["btc_ret_4h"], 4)
    out["btc_vol_ratio"] = vol_ratio(volume, p)
    out["btc_rv_24h"] = realised_vol(close, p.market.rv_short_hours)
    out["btc_rv_ratio"] = rv_ratio(close, p)
    out["btc_drawdown_24h"] = drawdown(close, p.market.drawdown_hours)
    out["xs_ret_std_24h"] = rolling_mean(s1["xs_ret_std"], 24, 12)
    out["market_volume_ratio"] = vol_ratio(s1["market_quote_volume"], p)
    out["agg_funding_change_24h"] = change(s1["agg_funding"], 24)
    out["agg_funding_z"] = zscore(s1["agg_funding"], p, zf.funding_std_floor)
    out["funding_dispersion_z"] = zscore(s1["funding_dispersion"], p, zf.funding_std_floor)
    out["funding_gap_z"] = zscore(s1["funding_gap"], p, zf.funding_std_floor)
    out["extreme_funding_share_z"] = zscore(s1["extreme_funding_share"], p, zf.share_std_floor)
    out["oi_change_24h_z"] = zscore(s1["oi_change_24h"], p, zf.return_std_floor)
    out["btc_rv_24h_z"] = zscore(out["btc_rv_24h"], p, zf.return_std_floor)
    out["market_volume_ratio_z"] = zscore(out["market_volume_ratio"], p, zf.ratio_std_floor)
    out.update(crash_inputs(close))
    if p.liquidations.enabled:
        out.update(liquidations.stage2_series(s1, p.liquidations))
    return out
