"""How soon after a cascade's onset a detector warned, and how often it warned for nothing. Pure.

Any detector is a boolean per bar (``firing``, indexed by bar open time; the bar's close is when the
warning can go out). Per cascade of :func:`riskd.research.onset.cascades`:

- **warned_at**: the close of the first firing bar after the onset, up to the later of the trough and
  the last event hour's close (after that the hourly path has spoken); NaT when none;
- **latency** from onset A (the last high) and from onset B (10 % of the fall done), minutes;
- **share_ahead**: the share of the onset-to-trough fall still to come at the warning's close (0 at or
  after the trough); **after_trough**: the warning came at or after the trough;
- **hourly_before_trough**: the hourly path alone (the first event hour's close) came before the trough.

**False alarms** are counted as the live side raises them, one per hour: an hour with a firing bar is
false when it lies outside every cascade's span (from an hour before the earlier of the onset and the
first event hour's open, to an hour after the later of the trough and the last event hour's close).
The rate is per 30 days of bars with data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

HOUR = pd.Timedelta(hours=1)
MINUTE = pd.Timedelta(minutes=1)
MONTH_HOURS = 24 * 30
EVENT_COLUMNS = ("warned_at", "latency_min", "latency10_min", "share_ahead", "after_trough")


@dataclass(frozen=True)
class LatencyScore:
    """One detector on one data set: per-cascade warnings and the false-alarm count."""

    events: pd.DataFrame  # the cascades' columns plus EVENT_COLUMNS
    alarm_hours: pd.DatetimeIndex  # hour ends with a firing bar
    false_hours: pd.DatetimeIndex  # those outside every cascade's span
    data_hours: pd.DatetimeIndex  # hour ends with bars

    @property
    def false_per_month(self) -> float:
        """False alarms per 30 days of data."""
        n = len(self.data_hours)
        return len(self.false_hours) / (n / MONTH_HOURS) if n else float("nan")


def _spans(cascades: pd.DataFrame) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Per cascade, the time span in which a firing hour is not a false alarm (module docstring)."""
    return [
        (min(c["onset_at"], c["first_as_of"] - HOUR) - HOUR, max(c["trough_at"], c["last_as_of"]) + HOUR)
        for c in cascades.to_dict("records")
    ]


def score(close: pd.Series, firing: pd.Series, cascades: pd.DataFrame, bar: pd.Timedelta) -> LatencyScore:
    """Score ``firing`` (bool per bar open) against ``cascades`` on the closes ``close`` (same grid)."""
    fire_close = firing.index[firing.fillna(False).to_numpy(dtype=bool)] + bar
    values = close.to_numpy(dtype="float64")
    closes_at = close.index + bar
    rows = []
    for c in cascades.to_dict("records"):
        end = max(c["trough_at"], c["last_as_of"])
        hits = fire_close[(fire_close > c["onset_at"]) & (fire_close <= end)]
        rows.append(_warning(c, hits[0] if len(hits) else pd.NaT, values, closes_at))
    events = pd.concat(
        [cascades.reset_index(drop=True), pd.DataFrame(rows, columns=list(EVENT_COLUMNS))], axis=1
    )
    alarms = pd.DatetimeIndex(fire_close - pd.Timedelta(microseconds=1)).floor("h").unique() + HOUR
    spans = _spans(cascades)
    near = np.array([any(h - HOUR < end and h > start for start, end in spans) for h in alarms], dtype=bool)
    seen = close.notna().groupby(close.index.floor("h")).any()
    data_hours = pd.DatetimeIndex(seen.index[seen.to_numpy(dtype=bool)]) + HOUR
    return LatencyScore(events, pd.DatetimeIndex(alarms), pd.DatetimeIndex(alarms[~near]), data_hours)


def _warning(
    c: dict[str, Any], at: pd.Timestamp, values: np.ndarray, closes_at: pd.DatetimeIndex
) -> dict[str, Any]:
    if pd.isna(at):
        return {
            "warned_at": pd.NaT,
            "latency_min": np.nan,
            "latency10_min": np.nan,
            "share_ahead": np.nan,
            "after_trough": False,
        }
    price = values[closes_at.get_loc(at)]
    top, low = c["onset_close"], c["trough_close"]
    after = bool(at >= c["trough_at"])
    ahead = 0.0 if after else float((price - low) / (top - low))
    return {
        "warned_at": at,
        "latency_min": (at - c["onset_at"]) / MINUTE,
        "latency10_min": (at - c["onset10_at"]) / MINUTE,
        "share_ahead": ahead,
        "after_trough": after,
    }


def median_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of a median from order statistics (binomial); NaN when n is too small."""
    x = np.sort(values[np.isfinite(values)])
    n = len(x)
    if n < 3:
        return float("nan"), float("nan")
    lo = int(stats.binom.ppf((1 - level) / 2, n, 0.5))
    hi = int(stats.binom.isf((1 - level) / 2, n, 0.5))
    lo, hi = max(lo - 1, 0), min(hi, n - 1)
    return float(x[lo]), float(x[hi])


def share_ci(k: int, n: int) -> tuple[float, float]:
    """Wilson 95 % interval of a share k / n."""
    if n == 0:
        return float("nan"), float("nan")
    ci = stats.binomtest(k, n).proportion_ci(method="wilson")
    return float(ci.low), float(ci.high)


def summary(
    s: LatencyScore, since: pd.Timestamp | None = None, until: pd.Timestamp | None = None
) -> dict[str, Any]:
    """The summary figures over cascades whose onset lies in [since, until), and false alarms there.

    Latency quantiles and the share ahead are over warned cascades; the "within k minutes" shares
    are over all cascades (a miss is never within)."""
    false, data = s.false_hours, s.data_hours
    if since is not None:
        false, data = false[false > since], data[data > since]
    if until is not None:
        false, data = false[false <= until], data[data <= until]
    ev, hours = s.events[in_span(s.events, since, until)], len(data)
    lat = ev["latency_min"].to_numpy(dtype=float)
    warned = np.isfinite(lat)
    n, k = len(ev), int(warned.sum())
    out = {
        "cascades": n,
        "warned": k,
        "warned_share": k / n if n else np.nan,
        "warned_ci": share_ci(k, n),
        "median_latency": float(np.median(lat[warned])) if k else np.nan,
        "median_latency_ci": median_ci(lat),
        "p80_latency": float(np.quantile(lat[warned], 0.8)) if k else np.nan,
        "median_latency10": float(np.nanmedian(ev["latency10_min"])) if k else np.nan,
        "median_share_ahead": float(np.nanmedian(ev["share_ahead"])) if k else np.nan,
        "after_trough": int(ev["after_trough"].sum()),
        "false_alarms": len(false),
        "hours": hours,
        "false_per_month": len(false) / (hours / MONTH_HOURS) if hours else np.nan,
    }
    for m in (5, 10, 30):
        out[f"within_{m}"] = float((lat[warned] <= m).sum() / n) if n else np.nan
    return out


def objective(
    s: LatencyScore, since: pd.Timestamp | None, until: pd.Timestamp | None, budget: float
) -> float:
    """What tuning minimises: the median latency from onset with a miss counted as never (a detector
    that misses half the cascades scores infinity), infinite above ``budget`` false alarms a month;
    ties go to the fewer false alarms (a thousandth of a minute per alarm a month)."""
    fig = summary(s, since, until)
    if not fig["cascades"] or fig["false_per_month"] > budget:
        return float("inf")
    lat = s.events.loc[in_span(s.events, since, until), "latency_min"].to_numpy(dtype=float)
    lat = np.where(np.isfinite(lat), lat, np.inf)
    return float(np.median(lat)) + 1e-3 * fig["false_per_month"]


def in_span(events: pd.DataFrame, since: pd.Timestamp | None, until: pd.Timestamp | None) -> pd.Series:
    """Cascades whose onset lies in [since, until) (either bound optional)."""
    keep = pd.Series(True, index=events.index)
    if since is not None:
        keep &= events["onset_at"] >= since
    if until is not None:
        keep &= events["onset_at"] < until
    return keep
