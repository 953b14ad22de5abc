"""The published crash model, walk-forward, and what each of its inputs contributes.

The published probability is the walk-forward series of the configured model (``model.crash_features``,
default :data:`~riskd.research.calibrate.V2_FEATURES`): refit at every month start on the hours whose
label was known by then (expanding window from the first stored hour), each month predicted by the fit
before it. Each input's **contribution** is measured the same way: the model refit without it (or, for a
candidate input, with it), scored on the same out-of-sample hours, as the paired difference of Brier
skills ``ΔBSS = BSS(with) − BSS(without)`` over the same block-bootstrap resamples, at each block length.

Inputs the live daemon cannot have (5-minute realised volatility: the daemon's panel is hourly) are
measured here and left out of the published model; the note says why. A candidate with too little
history (riskd's liquidation features: two months in the store) is named, with its span, and not fitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from riskd.core.crashprob import CrashModel
from riskd.core.timeseries import CRASH_INPUTS, crash_inputs, realised_vol
from riskd.research.calibrate import CrashSpec, walk_forward_crash_prob
from riskd.research.config import ValidationConfig, ValidationInputs
from riskd.research.events import BTC
from riskd.research.labels import crash_labels
from riskd.research.scoring import Interval, Resampling, paired_skill_draws
from riskd.research.signals import past_base_rate

V1_FEATURES: tuple[str, ...] = ("rank_btc_rv_24h", "rank_xs_ret_std_24h", "rank_agg_funding")
"""The model riskd published before (v1): the CFI v2 components' past-only ranks."""
FUNDING_INPUTS: tuple[str, ...] = ("agg_funding_z", "funding_dispersion_z")
OFFLINE_RV = "btc_rv5m_24h"
RV_ONLY = "btc_rv_24h"
"""The one input of the 24 h-volatility-only model the published one is also compared with."""
LIQUIDATION_INPUTS: tuple[str, ...] = ("liq_notional_z",)


@dataclass(frozen=True)
class ModelStudy:
    """The published walk-forward probability (on the history's index), its last fit, and one row per
    tested change in ``contributions``: ``change``, ``kind`` (``drop``/``add``/``replace``), ``n``,
    ``crashes``, ``span``, per block ``b`` ``d_bss_<b>`` with ``_lo``/``_hi`` (positive: the published
    side is better for ``drop``/``replace``; the addition helps for ``add``), ``published``
    (whether the change is in the published model) and ``note``."""

    spec: CrashSpec
    prob: pd.Series
    rv_only: pd.Series
    """The same walk-forward logistic on ``btc_rv_24h`` alone: the 24 h-volatility-only model."""
    last: CrashModel | None
    fits: int
    contributions: pd.DataFrame
    blocks: tuple[int, ...]
    notes: tuple[str, ...] = ()


def history_frame(inputs: ValidationInputs) -> pd.DataFrame:
    """The hours the model trains and predicts on: ``history`` when given, else the validated span
    (its features and BTC's close), with the offline inputs joined."""
    if inputs.history is not None:
        frame = inputs.history.copy()
    else:
        frame = inputs.features.copy()
        frame["btc_close"] = inputs.closes[BTC]
    if inputs.offline is not None:
        for name in inputs.offline.columns:
            frame[name] = inputs.offline[name].reindex(frame.index)
    if any(k not in frame for k in ("btc_rv_24h", *CRASH_INPUTS)):
        # a synthetic market carries no core frame: the core's own functions over BTC's closes
        close = frame["btc_close"].to_numpy(dtype=float)
        for k, v in {"btc_rv_24h": realised_vol(close, 24), **crash_inputs(close)}.items():
            if k not in frame:
                frame[k] = v
    return frame


def model_labels(frame: pd.DataFrame, inputs: ValidationInputs, cfg: ValidationConfig) -> pd.Series:
    """The crash labels over the model's hours (cascades: the events inside the validated span)."""
    cascade = None
    if cfg.crash.kind == "cascade":
        hours = inputs.events.get(cfg.event_level, pd.DatetimeIndex([]))
        cascade = pd.Series(frame.index.isin(hours), index=frame.index)
    return crash_labels(frame["btc_close"], cfg.crash, cascade)


def _walk(
    frame: pd.DataFrame, labels: pd.Series, spec: CrashSpec, cfg: ValidationConfig, first_fit: pd.Timestamp
) -> pd.Series:
    """The walk-forward probability of another specification, fitted from ``first_fit`` on."""
    wf = walk_forward_crash_prob(
        frame,
        labels,
        spec,
        refit=cfg.refit,
        min_train_hours=cfg.min_train_hours,
        min_train_crashes=cfg.min_train_crashes,
        first_fit=first_fit,
    )
    return wf.prob


def _paired(
    with_: pd.Series,
    without: pd.Series,
    labels: pd.Series,
    cfg: ValidationConfig,
    first: pd.Timestamp,
    draws: dict[tuple[int, int], Resampling | None],
) -> dict[str, object]:
    """ΔBSS(with − without) on the out-of-sample hours both have, with CIs at each block length
    (``draws``: resamples by (hours, block), drawn once and shared)."""
    clim = past_base_rate(labels, horizon_h=cfg.crash.horizon_h)
    frame = pd.DataFrame({"a": with_, "b": without, "y": labels, "c": clim}).loc[first:].dropna()
    row: dict[str, object] = {"n": len(frame), "crashes": int(frame["y"].sum()) if len(frame) else 0}
    row["span"] = f"{frame.index[0]:%Y-%m} – {frame.index[-1]:%Y-%m}" if len(frame) else "no hours"
    y = frame["y"].to_numpy()
    err_a, err_b, clim_err = ((frame[k].to_numpy() - y) ** 2 for k in ("a", "b", "c"))
    point = float((err_b - err_a).sum() / clim_err.sum()) if clim_err.sum() > 0 else np.nan
    for block in (cfg.block_h, cfg.long_block_h):
        if (len(frame), block) not in draws:
            draws[(len(frame), block)] = Resampling.draw(len(frame), block, cfg.bootstrap_reps, cfg.seed)
        r = draws[(len(frame), block)]
        d = Interval.of(point, None if r is None else paired_skill_draws(err_a, err_b, clim_err, r))
        row |= {f"d_bss_{block}": d.value, f"d_bss_{block}_lo": d.lo, f"d_bss_{block}_hi": d.hi}
    return row


def _changes(frame: pd.DataFrame, features: Sequence[str]) -> list[tuple[str, str, tuple[str, ...], bool]]:
    """(change, kind, features of the other model, published?) for every change that can be fitted."""
    out = [(f"without {f}", "drop", tuple(x for x in features if x != f), True) for f in features]
    if all(f in frame for f in V1_FEATURES):
        out.append(("v1 (CFI v2 components' ranks) instead", "replace", V1_FEATURES, False))
    if all(f in frame for f in FUNDING_INPUTS):
        out.append(("+ funding z and funding dispersion z", "add", (*features, *FUNDING_INPUTS), False))
    return out


def model_part(inputs: ValidationInputs, cfg: ValidationConfig, *, contributions: bool = True) -> ModelStudy:
    """The published model's walk-forward probability and every input's measured contribution."""
    frame = history_frame(inputs)
    labels = model_labels(frame, inputs, cfg)
    spec = CrashSpec(tuple(cfg.model_features), cfg.crash)
    first = pd.Timestamp(cfg.oos_start, tz="UTC")
    # the published series from the validated span's first month (the regime replays it from there); the
    # alternatives only where they are scored; the earlier hours train them all
    span_start = inputs.closes.index[0].floor("D") if len(inputs.closes) else first
    wf = walk_forward_crash_prob(
        frame,
        labels,
        spec,
        refit=cfg.refit,
        min_train_hours=cfg.min_train_hours,
        min_train_crashes=cfg.min_train_crashes,
        first_fit=span_start - pd.offsets.MonthBegin(1),
    )
    rv_only = _walk(frame, labels, replace(spec, features=(RV_ONLY,)), cfg, first)
    rows: list[dict[str, object]] = []
    notes: list[str] = []
    draws: dict[tuple[int, int], Resampling | None] = {}
    for change, kind, feats, published in _changes(frame, spec.features) if contributions else []:
        other = _walk(frame, labels, replace(spec, features=feats), cfg, first)
        a, b = (other, wf.prob) if kind == "add" else (wf.prob, other)
        row = _paired(a, b, labels, cfg, first, draws)
        rows.append({"change": change, "kind": kind, "published": published} | row)
    if contributions:
        rows_off, notes = _offline(frame, labels, spec, cfg, first, draws)
        rows += rows_off
    last = wf.models[-1] if wf.models else None
    blocks = (cfg.block_h, cfg.long_block_h)
    notes_all = (*notes, *inputs.notes)
    return ModelStudy(spec, wf.prob, rv_only, last, len(wf.models), pd.DataFrame(rows), blocks, notes_all)


def _offline(
    frame: pd.DataFrame,
    labels: pd.Series,
    spec: CrashSpec,
    cfg: ValidationConfig,
    first: pd.Timestamp,
    draws: dict[tuple[int, int], Resampling | None],
) -> tuple[list[dict[str, object]], list[str]]:
    """The candidates the published model leaves out: 5-minute realised volatility (both models refit on
    the hours that have it, so only the input differs) and the liquidation features."""
    rows: list[dict[str, object]] = []
    notes: list[str] = []
    if OFFLINE_RV in frame and frame[OFFLINE_RV].notna().sum() >= cfg.min_train_hours:
        have = frame[OFFLINE_RV].notna()
        base = _walk(frame, labels.where(have), spec, cfg, first)
        more = _walk(
            frame, labels.where(have), replace(spec, features=(*spec.features, OFFLINE_RV)), cfg, first
        )
        row = _paired(more, base, labels.where(have), cfg, first, draws)
        rows.append(
            {"change": f"+ {OFFLINE_RV} (5-minute bars, offline only)", "kind": "add", "published": False}
            | row
        )
        notes.append(
            f"`{OFFLINE_RV}` (BTC's 24 h realised volatility from 5-minute perp bars) is measured, not "
            "published: the daemon's panel is hourly (its minute streams are optional, off by default, "
            "and keep no 24 h of 5-minute bars), so live it would be missing and live ≠ batch."
        )
    elif OFFLINE_RV in frame:
        notes.append(f"`{OFFLINE_RV}`: {int(frame[OFFLINE_RV].notna().sum()):,} hours, too few to fit.")
    for name in (n for n in LIQUIDATION_INPUTS if n in frame):
        have = frame[name].dropna()
        span = f"{have.index[0]:%Y-%m-%d} – {have.index[-1]:%Y-%m-%d}" if len(have) else "none"
        if len(have) < cfg.min_train_hours:
            notes.append(
                f"`{name}` (riskd's liquidation features): {len(have):,} hours in the store ({span}), fewer "
                f"than the {cfg.min_train_hours:,} a first fit needs: not measurable, not published."
            )
    return rows, notes
