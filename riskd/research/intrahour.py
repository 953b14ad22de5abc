"""``riskd validate --intra-hour``: the provisional detector replayed on real minute bars. Pure.

Hourly cascade events are BTC hours at the ``volume_only`` level of the core (1 h return ≤ −3 %, volume
≥ 2 × the mean of the previous 24 h), computed from the same bars resampled to hours, so the replay
needs nothing but the minute data. Event hours one hour apart, and falls that two of them share, are one
cascade, timed from its **onset** (``riskd.research.onset``: the last high before the trough, and the
point where 10 % of the fall is done). Each detector, riskd's provisional one and the plain price alert
a trader would set (``riskd.research.plain_alert``), is scored the same way (``riskd.research.latency``):
minutes from onset to its first firing bar's close, the share of the fall still ahead then, and false
alarms per month. Figures are split at ``TRAIN_END``: thresholds were tuned on the bars before it only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskd.core.intrahour import PROVISIONAL_CODES, IntrahourParams, minute_features, provisional_levels
from riskd.research.latency import EVENT_COLUMNS, LatencyScore, in_span, score, summary
from riskd.research.onset import OnsetRule, cascades, fall_clock
from riskd.research.plain_alert import PLAIN_ALERT, PlainAlert, plain_firing

TRAIN_END = pd.Timestamp("2024-01-01", tz="UTC")
"""The cut: the detector's thresholds and the plain alert's X and N were chosen on perp bars before it."""
DETECTORS = ("riskd", "plain")
FAMILY_DROPS = tuple(round(0.015 + 0.0025 * i, 4) for i in range(15))  # 1.5 % … 5 %
"""Drops of the plain alert scored beside the fixed one, to compare riskd with it at riskd's own noise."""


@dataclass(frozen=True)
class IntrahourReport:
    """One data set's cascades and each detector's score on them."""

    cascades: pd.DataFrame  # onset.CASCADE_COLUMNS, worst_ret_1h, hourly_before_trough, onset.fall_clock's
    scores: dict[str, LatencyScore]  # by DETECTORS
    bar_minutes: int
    plain_family: dict[PlainAlert, LatencyScore]  # the plain alert at other drops, same window
    plain: PlainAlert  # the fixed one, scores["plain"]


def hourly_events(btc: pd.DataFrame, max_return: float = -0.03, min_vol_ratio: float = 2.0) -> pd.DataFrame:
    """BTC hours (indexed by hour end) at the volume_only level, from bars of any length below an hour."""
    hourly = pd.DataFrame(
        {
            "close": btc["close"].resample("1h").last(),
            "volume": btc["volume"].resample("1h").sum(),
            "bars": btc["close"].resample("1h").count(),
        }
    )
    full = hourly["bars"] == hourly["bars"].max()
    ret = hourly["close"] / hourly["close"].shift(1) - 1.0
    ratio = hourly["volume"] / hourly["volume"].shift(1).rolling(24, min_periods=24).mean()
    hit = (ret <= max_return) & (ratio >= min_vol_ratio) & full
    out = pd.DataFrame({"btc_ret_1h": ret[hit], "vol_ratio": ratio[hit]})
    out.index = out.index + pd.Timedelta(hours=1)
    out.index.name = "as_of"
    return out


def riskd_firing(features: pd.DataFrame, params: IntrahourParams) -> pd.Series:
    """Per bar, whether the provisional level reaches ``params.alert_level`` (the live ``firing``)."""
    codes = provisional_levels(features, params).map(PROVISIONAL_CODES)
    return (codes >= PROVISIONAL_CODES[params.alert_level]).rename("firing")


def replay(
    btc: pd.DataFrame,
    alts: pd.DataFrame | None,
    params: IntrahourParams,
    bar_minutes: int,
    plain: PlainAlert = PLAIN_ALERT,
    rule: OnsetRule | None = None,
) -> IntrahourReport:
    """Run riskd's detector and the plain alert over every bar and score both (module docstring)."""
    feats = minute_features(btc, alts, None, params, bar_minutes=bar_minutes)
    close = feats["btc_close"]
    events = hourly_events(btc)
    table = cascades(close, pd.DatetimeIndex(events.index), rule)
    worst = [
        events.loc[c["first_as_of"] : c["last_as_of"], "btc_ret_1h"].min() for c in table.to_dict("records")
    ]
    table["worst_ret_1h"] = worst if len(table) else pd.Series(dtype=float)
    table["hourly_before_trough"] = table["first_as_of"] < table["trough_at"]
    table = pd.concat([table, fall_clock(close, table)], axis=1)
    bar = pd.Timedelta(minutes=bar_minutes)
    scores = {
        "riskd": score(close, riskd_firing(feats, params), table, bar),
        "plain": score(close, plain_firing(close, plain, bar_minutes), table, bar),
    }
    family = {
        a: score(close, plain_firing(close, a, bar_minutes), table, bar)
        for a in (PlainAlert(d, plain.minutes) for d in FAMILY_DROPS)
    }
    return IntrahourReport(table, scores, bar_minutes, family, plain)


def event_table(reports: dict[str, IntrahourReport]) -> pd.DataFrame:
    """The per-event CSV: one row per data set and cascade, each detector's columns prefixed by its name."""
    frames = []
    for name, rep in reports.items():
        frame = rep.cascades.copy()
        for det, s in rep.scores.items():
            for col in EVENT_COLUMNS:
                frame[f"{det}_{col}"] = s.events[col].to_numpy()
        frame.insert(0, "dataset", name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def spans(cut: pd.Timestamp) -> dict[str, tuple[pd.Timestamp | None, pd.Timestamp | None]]:
    """The report's spans: before the cut (tuning), after it (out of sample), all."""
    return {
        f"before {cut:%Y-%m-%d} (tuning)": (None, cut),
        f"from {cut:%Y-%m-%d} (out of sample)": (cut, None),
        "all": (None, None),
    }


def verdict(rep: IntrahourReport, since: pd.Timestamp | None, until: pd.Timestamp | None) -> str:
    """Whether riskd beats the plain alert on latency at equal or fewer false alarms: against the fixed
    alert, and against the family member with the most false alarms not above riskd's in this span (the
    alert a trader would set to be as noisy as riskd; a comparison at equal noise, not a fit of riskd)."""
    r = summary(rep.scores["riskd"], since, until)
    if not r["cascades"]:
        return "no cascades in this span"
    ours = _never_median(rep.scores["riskd"].events, since, until)
    parts = []
    fixed = rep.scores["plain"]
    parts.append(_versus(f'the fixed "{rep.plain.label()}"', ours, r, fixed, since, until))
    quiet = {
        a: s
        for a, s in rep.plain_family.items()
        if summary(s, since, until)["false_per_month"] <= r["false_per_month"]
    }
    alert = min(quiet, key=lambda a: a.drop) if quiet else None
    if alert is not None and alert != rep.plain:
        parts.append(_versus(f'"{alert.label()}" (as noisy or less)', ours, r, quiet[alert], since, until))
    return "; ".join(parts)


def _versus(
    name: str,
    ours: float,
    r: dict,
    other: LatencyScore,
    since: pd.Timestamp | None,
    until: pd.Timestamp | None,
) -> str:
    o = summary(other, since, until)
    theirs = _never_median(other.events, since, until)
    quieter, faster = r["false_per_month"] <= o["false_per_month"], ours < theirs
    words = {
        (True, True): "beats",
        (False, True): "is faster but noisier than",
        (True, False): "is quieter but not faster than",
        (False, False): "does not beat",
    }
    word = words[(quieter, faster)]
    return (
        f"riskd {word} {name}: warned {r['warned']} vs {o['warned']} of {r['cascades']}, median minutes "
        f"from onset with a miss as never {_fmt(ours, 'g')} vs {_fmt(theirs, 'g')}, false alarms a month "
        f"{r['false_per_month']:.2f} vs {o['false_per_month']:.2f}"
    )


def _never_median(events: pd.DataFrame, since: pd.Timestamp | None, until: pd.Timestamp | None) -> float:
    lat = events.loc[in_span(events, since, until), "latency_min"].to_numpy(dtype=float)
    return float(np.median(np.where(np.isfinite(lat), lat, np.inf))) if len(lat) else float("nan")


def _fmt(x: float, spec: str = ".0f") -> str:
    return "never" if x == np.inf else ("–" if not np.isfinite(x) else format(x, spec))
