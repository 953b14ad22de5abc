"""From the core's batch output to the validation's inputs, and the account of how they were derived.

Pure: the panel and the core's frame in (``riskd validate`` reads the store and runs the core), the
:class:`~riskd.research.config.ValidationInputs` and an :class:`InputsReport` out (the report's "Data and
inputs" section). Also the one offline-only model input: BTC's 24 h realised volatility from 5-minute
bars (:func:`realised_vol_5m`), which the live daemon cannot compute (its panel is hourly).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from riskd.core import Panel, cascade_events, crashing_assets
from riskd.core.output import COVERAGE_PREFIXES, PASS_THROUGH, STATE_COLUMNS
from riskd.core.params import FragilityParams
from riskd.research.config import ValidationInputs
from riskd.research.parts import events_by_level

SIGNALS = ("cfi", "cfi_v1", "cfi_v2", "crash_prob_24h")
"""riskd's published signals, studied and scored out of sample when the core's frame carries them."""
REGIME_COLUMNS = (
    "cascade_level",
    "multi_asset",
    "reason_bits",
    "risk_multiplier",
    "cfi_v1_pct",
    "cfi_v2_pct",
    "rank_btc_rv_24h",
)
"""The core's columns the filter replays the regime from (:mod:`riskd.research.tiers`)."""


@dataclass(frozen=True)
class InputsReport:
    """How the inputs were derived, for the report's "Data and inputs" section and ``results.json``."""

    symbols: tuple[str, ...]
    span: str
    warmup_from: str
    hours: int
    standin_share: dict[str, float]
    events: dict[str, int]
    multi_asset_check: str
    store: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


def feature_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every numeric feature of the core's frame (no state, coverage or pass-through column), the CFI's
    funding-gap component as it enters the CFI (``funding_gap_abs_z`` = |z|), then riskd's signals."""
    skip = set(STATE_COLUMNS) | set(PASS_THROUGH) | set(SIGNALS)
    names = [
        c
        for c in frame.columns
        if c not in skip
        and not c.startswith(COVERAGE_PREFIXES)
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]
    out = frame[names].astype(float)
    if "funding_gap_z" in frame:
        out["funding_gap_abs_z"] = frame["funding_gap_z"].abs()
    for name in SIGNALS:
        if name in frame:
            out[name] = frame[name].astype(float)
    return out


def realised_vol_5m(close: pd.Series, hours: int = 24) -> pd.Series:
    """Per hour T (open time): sqrt of the sum of squared 5-minute log returns of the bars that closed in
    (T + 1 h − ``hours``, T + 1 h], scaled up for missing bars (fewer than half present: NaN). Known at
    the close of hour T, like the hourly row T: no look-ahead."""
    if close.empty:
        return pd.Series(dtype=float, name="btc_rv5m_24h")
    grid = close.resample("5min").last()
    r = np.log(grid).diff()
    hour = r.index.floor("h")
    sq = (r * r).groupby(hour).sum(min_count=1)
    n = r.notna().groupby(hour).sum()
    idx = pd.date_range(sq.index[0], sq.index[-1], freq="h", tz=sq.index.tz)
    s = sq.reindex(idx).fillna(0.0).rolling(hours, min_periods=1).sum()
    k = n.reindex(idx).fillna(0).rolling(hours, min_periods=1).sum()
    bars = hours * 12
    return np.sqrt(s * bars / k).where(k >= bars / 2).rename("btc_rv5m_24h")


def validation_inputs(
    panel: Panel,
    frame: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    params: FragilityParams,
    *,
    offline: pd.DataFrame | None = None,
    notes: Sequence[str] = (),
) -> tuple[ValidationInputs, InputsReport]:
    """The statistics' inputs over the validated span [start, end] (the core ran over the whole panel),
    and the account of how they were derived."""
    inside = (panel.index >= start) & (panel.index <= end)
    closes = pd.DataFrame(panel.close[inside], index=panel.index[inside], columns=list(panel.symbols))
    closes.index.name = "ts"
    part = frame.loc[inside]
    # episodes are grouped over the whole history (as the daemon saw them), then kept if they begin
    # inside the span: one already under way at --from is not counted again from its later hours
    episodes = cascade_events(frame, params.cascade)
    if len(episodes):
        episodes = episodes[(episodes["start"] >= start) & (episodes["start"] <= end)]
    events = events_by_level(episodes) if len(episodes) else {}
    fired = part["multi_asset"].to_numpy(dtype=bool)[:, None]
    crashing = crashing_assets(panel, params).loc[inside] & fired
    check = (
        f"per-asset flags from the core's detector; {int(fired.sum())} multi-asset hours in the span, "
        f"{int(crashing.to_numpy().sum())} asset-hours bought"
    )
    history = feature_frame(frame)
    for name in [c for c in frame.columns if c.startswith("rank_")]:  # the v1 model's inputs
        history[name] = frame[name].astype(float)
    btc = panel.symbols.index(params.universe.btc_symbol)
    history["btc_close"] = panel.close[:, btc]
    inputs = ValidationInputs(
        closes, feature_frame(part), events, crashing,
        regime=part[[c for c in REGIME_COLUMNS if c in part]], params=params,
        offline=offline, history=history, notes=tuple(notes),
    )  # fmt: skip # grouped: prices and events, then the regime, then the model's extra inputs
    stand_in = panel.stand_in[inside] if panel.stand_in is not None else np.zeros(closes.shape, dtype=bool)
    priced = closes.notna().to_numpy()
    share = {
        s: float(stand_in[:, j][priced[:, j]].mean()) if priced[:, j].any() else float("nan")
        for j, s in enumerate(panel.symbols)
    }
    report = InputsReport(
        symbols=tuple(panel.symbols),
        span=inputs.span(),
        warmup_from=f"{panel.index[0]:%Y-%m-%d}",
        hours=len(closes),
        standin_share=share,
        events={k: len(v) for k, v in events.items()},
        multi_asset_check=check,
    )
    return inputs, report
