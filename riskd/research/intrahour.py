"""``riskd validate --intra-hour``: the provisional detector replayed on real minute bars. Pure.

Hourly cascade events are BTC hours at the ``volume_only`` level of the core (1 h return ≤ −3 %, volume
≥ 2 × the mean of the previous 24 h), computed from the same bars resampled to hours, so the replay
needs nothing but the minute data. For each event the detector runs over the bars up to the hour close;
the result is how many minutes before the close its first firing bar closed (or that it did not fire).
False provisional alarms are hours in which it fired with no event in that hour or the one before or
after it (a fall that starts late in an hour or runs on past it is the same event), per month of data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskd.core.intrahour import (
    IntrahourParams,
    first_firing,
    lead_minutes,
    minute_features,
    provisional_levels,
)


@dataclass(frozen=True)
class IntrahourReport:
    """Per-event lead times and the false-alarm rate of one replay."""

    events: pd.DataFrame  # as_of, btc_ret_1h, vol_ratio, fired, first_bar_close, lead_minutes
    false_alarms: int
    months: float
    hours: int

    @property
    def false_per_month(self) -> float:
        """False provisional alarms per 30 days of minute data."""
        return self.false_alarms / self.months if self.months else float("nan")


def hourly_events(btc: pd.DataFrame, max_return: float = -0.03, min_vol_ratio: float = 2.0) -> pd.DataFrame:
    """BTC hours (indexed by hour end) at the volume_only level, from bars of any length below an hour."""
    hourly = pd.DataFrame({"close": btc["close"].resample("1h").last(), "volume": btc["volume"].resample("1h").sum(),
                           "bars": btc["close"].resample("1h").count()})  # fmt: skip
    full = hourly["bars"] == hourly["bars"].max()
    ret = hourly["close"] / hourly["close"].shift(1) - 1.0
    ratio = hourly["volume"] / hourly["volume"].shift(1).rolling(24, min_periods=24).mean()
    hit = (ret <= max_return) & (ratio >= min_vol_ratio) & full
    out = pd.DataFrame({"btc_ret_1h": ret[hit], "vol_ratio": ratio[hit]})
    out.index = out.index + pd.Timedelta(hours=1)
    out.index.name = "as_of"
    return out


def replay(
    btc: pd.DataFrame, alts: pd.DataFrame | None, params: IntrahourParams, bar_minutes: int
) -> IntrahourReport:
    """Run the detector over every bar and score it against the hourly events (module docstring)."""
    feats = minute_features(btc, alts, None, params, bar_minutes=bar_minutes)
    levels = provisional_levels(feats, params)
    fired = first_firing(levels, params)
    events = hourly_events(btc)
    rows = []
    for as_of, ev in events.iterrows():
        first = fired.get(as_of)
        lead = lead_minutes(first, as_of, bar_minutes) if first is not None else np.nan
        close = first + pd.Timedelta(minutes=bar_minutes) if first is not None else pd.NaT
        rows.append({"as_of": as_of, "btc_ret_1h": ev["btc_ret_1h"], "vol_ratio": ev["vol_ratio"],
                     "fired": first is not None, "first_bar_close": close, "lead_minutes": lead})  # fmt: skip
    table = pd.DataFrame(
        rows, columns=["as_of", "btc_ret_1h", "vol_ratio", "fired", "first_bar_close", "lead_minutes"]
    )
    near = (pd.Timedelta(hours=-1), pd.Timedelta(0), pd.Timedelta(hours=1))
    event_hours = {t + d for t in events.index for d in near}
    false = sum(1 for h in fired.index if h not in event_hours)
    hours = int(btc["close"].resample("1h").count().gt(0).sum())
    return IntrahourReport(table, false, hours / (24 * 30), hours)


def markdown(reports: dict[str, IntrahourReport], params: IntrahourParams) -> str:
    """The report: one table per data set, then the false-alarm rates."""
    lines = ["# Provisional intra-hour detector on real minute data", "",
             f"Thresholds: {params.model_dump()}", ""]  # fmt: skip
    for name, rep in reports.items():
        lines += [f"## {name}", "", "| hour close (UTC) | BTC 1h | vol ratio | fired | minutes before close |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for r in rep.events.itertuples():
            lead = f"{r.lead_minutes:.0f}" if r.fired else "did not fire"
            lines.append(f"| {r.as_of:%Y-%m-%d %H:%M} | {r.btc_ret_1h:+.1%} | {r.vol_ratio:.1f} | "
                         f"{'yes' if r.fired else 'no'} | {lead} |")  # fmt: skip
        n, hit = len(rep.events), int(rep.events["fired"].sum())
        med = rep.events["lead_minutes"].median()
        lines += ["", f"{hit} of {n} events fired (median {med:.0f} min before the close); "
                  f"false provisional alarms: {rep.false_alarms} in {rep.hours} h = {rep.false_per_month:.2f} per month", ""]  # fmt: skip
    return "\n".join(lines)
