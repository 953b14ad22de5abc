"""The live path: one new hour and the state so far in, that hour's result row and the new state out.

The state holds exactly what the next hour needs: the last few rows of every per-symbol array (the
stage-1 look-back, and the multi-asset volume ranking's window), the last :func:`stage2_lookback`
hours of stage-1 series, the sorted past values of every series ranked against its own past (the CFI
v2 components, both CFIs), and the episode and regime memories. Each hour
runs the batch path's own functions on those buffers, so the answers agree with a batch run over the
same history (tests: to 1e-12 over 2,000 hours; in practice bit for bit).

The state is plain data: :meth:`FragilityState.to_dict` gives JSON-safe values (arrays as base64
float64) and :meth:`FragilityState.from_dict` restores it, refusing a state saved under other params.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from riskd.core.cascade import NO_HOUR, EpisodeMemory, episode_id
from riskd.core.cfi import insert_sorted
from riskd.core.crashprob import CrashModel
from riskd.core.crosssection import Window, stage1_lookback
from riskd.core.features import cross_section, stage1_features
from riskd.core.output import (
    assemble,
    cascade_relevant,
    derive,
    hour_reasons,
    ranked_series,
    stateful_signals,
)
from riskd.core.panel import HOUR_NS, Panel
from riskd.core.params import FragilityParams
from riskd.core.regime import RegimeMemory, reason_text, risk_multiplier, transition
from riskd.core.timeseries import stage2_lookback
from riskd.core.windows import pad_front

STATE_VERSION = 3
"""3: the stage-1 buffer grew to 722 hours for the crash model's 30-day inputs (a version-2 state is
rebuilt from the store)."""
_NO_LIQUIDATIONS = np.array([np.nan, np.nan, 0.0])
"""An hour without a liquidation record: no figures, coverage 0 (as the batch panel's grid has it)."""


def tracked_venues(p: FragilityParams) -> tuple[str, ...]:
    """Funding venues the features read: the primary, then the gap venues."""
    return tuple(dict.fromkeys((p.funding.primary_venue, *p.funding.gap_venues)))


@dataclass(frozen=True)
class FragilityState:
    """Everything the live path carries from one hour to the next (see the module docstring)."""

    fingerprint: str
    symbols: tuple[str, ...]
    last_hour: int | None
    context: dict[str, np.ndarray]
    stage1: dict[str, np.ndarray]
    ranked: dict[str, np.ndarray]
    """Series name (``output.RANKED``) → its past valid values, sorted."""
    btc_episode: EpisodeMemory = field(default_factory=EpisodeMemory)
    multi_episode: EpisodeMemory = field(default_factory=EpisodeMemory)
    last_cascade_hour: int = NO_HOUR
    regime: RegimeMemory = field(default_factory=RegimeMemory)

    @classmethod
    def empty(cls, symbols: tuple[str, ...], p: FragilityParams) -> FragilityState:
        """The state before the first hour: all buffers hold 'no data'."""
        n = len(symbols)
        rows, long_rows = stage1_lookback(p), _volume_rows(p)
        context = {name: np.full((rows, n), np.nan) for name in _context_names(p)}
        context["volume"] = np.full((long_rows, n), np.nan)
        context["stand_in"] = np.zeros((rows, n), dtype=bool)
        r = stage2_lookback(p)
        stage1 = {name: np.full(r, np.nan) for name in stage1_features(p)}
        ranked = {k: np.empty(0) for k in ranked_series(p)}
        return cls(p.fingerprint(), tuple(symbols), None, context, stage1, ranked)

    @classmethod
    def from_history(
        cls,
        panel: Panel,
        s1: dict[str, np.ndarray],
        d: dict[str, np.ndarray],
        memories: dict[str, Any],
        p: FragilityParams,
    ) -> FragilityState:
        """The state after a batch run over ``panel`` (used by ``compute_fragility_with_state``)."""
        rows, long_rows, n = stage1_lookback(p), _volume_rows(p), len(panel.symbols)

        def tail(arr: np.ndarray | None, k: int) -> np.ndarray:
            if arr is None:
                return np.full((k, n), np.nan)
            return pad_front(arr[-k:], k - min(k, arr.shape[0])).copy()

        context = {
            "close": tail(panel.close, rows),
            "volume": tail(panel.volume, long_rows),
            "quote_volume": tail(panel.quote_volume, rows),
            "open_interest": tail(panel.open_interest, rows),
            "quote_volume_1d": tail(panel.quote_volume_1d, rows),
        }
        for venue in tracked_venues(p):
            context[f"funding:{venue}"] = tail(panel.funding.get(venue), rows)
        stand_in = panel.stand_in[-rows:] if panel.stand_in is not None else np.zeros((0, n), dtype=bool)
        context["stand_in"] = np.concatenate([np.zeros((rows, n), dtype=bool), stand_in])[-rows:]
        r = stage2_lookback(p)
        stage1 = {name: tail(values, r) for name, values in s1.items()}
        return cls(
            fingerprint=p.fingerprint(),
            symbols=tuple(panel.symbols),
            last_hour=int(panel.hours[-1]) if len(panel.index) else None,
            context=context,
            stage1=stage1,
            ranked={k: np.sort(d[k][~np.isnan(d[k])]) for k in ranked_series(p)},
            btc_episode=memories["btc_episode"],
            multi_episode=memories["multi_episode"],
            last_cascade_hour=memories["last_cascade_hour"],
            regime=memories["regime"],
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe plain data; floats round-trip exactly (raw float64 bytes, base64)."""
        return {
            "version": STATE_VERSION,
            "fingerprint": self.fingerprint,
            "symbols": list(self.symbols),
            "last_hour": self.last_hour,
            "context": {k: _encode(v) for k, v in self.context.items()},
            "stage1": {k: _encode(v) for k, v in self.stage1.items()},
            "ranked": {k: _encode(v) for k, v in self.ranked.items()},
            "btc_episode": list(vars(self.btc_episode).values()),
            "multi_episode": list(vars(self.multi_episode).values()),
            "last_cascade_hour": self.last_cascade_hour,
            "regime": list(vars(self.regime).values()),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], p: FragilityParams) -> FragilityState:
        """Restore :meth:`to_dict`'s output; ValueError if it was saved under other params or version."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"state version {data.get('version')!r}, expected {STATE_VERSION}")
        if data["fingerprint"] != p.fingerprint():
            raise ValueError("state was saved under different fragility params; rebuild it from history")
        return cls(
            fingerprint=data["fingerprint"],
            symbols=tuple(data["symbols"]),
            last_hour=data["last_hour"],
            context={k: _decode(v) for k, v in data["context"].items()},
            stage1={k: _decode(v) for k, v in data["stage1"].items()},
            ranked={k: _decode(v) for k, v in data["ranked"].items()},
            btc_episode=EpisodeMemory(*data["btc_episode"]),
            multi_episode=EpisodeMemory(*data["multi_episode"]),
            last_cascade_hour=int(data["last_cascade_hour"]),
            regime=RegimeMemory(*data["regime"]),
        )

    @property
    def last_ts(self) -> pd.Timestamp | None:
        """Open time of the last hour processed (UTC), or None before the first."""
        return None if self.last_hour is None else pd.Timestamp(self.last_hour * HOUR_NS, tz="UTC")


def step(
    state: FragilityState | None,
    panel: Panel,
    params: FragilityParams | None = None,
    crash_model: CrashModel | None = None,
) -> tuple[pd.DataFrame, FragilityState]:
    """Feed the hour(s) in ``panel`` (usually one row) after ``state``; returns their rows and the new state.

    ``state=None`` starts from nothing. ``crash_model`` (the batch path's, for the same answer) gives
    ``crash_prob_24h``; without one it is NaN. Hours skipped since the state's last hour are fed as 'no data'
    first (and returned too), so the live grid stays the batch grid. New symbols join the state; missing
    ones read as NaN. An hour at or before the state's last hour raises ValueError.
    """
    p = params or FragilityParams()
    state = state or FragilityState.empty(tuple(panel.symbols), p)
    if state.fingerprint != p.fingerprint():
        raise ValueError("state was built under different fragility params")
    state = _with_symbols(state, panel.symbols)
    position = {s: i for i, s in enumerate(panel.symbols)}  # a dict: 600 symbols, not 600² comparisons
    cols = [position.get(s, -1) for s in state.symbols]
    rows: list[dict[str, np.ndarray]] = []
    hours: list[int] = []
    for i, hour in enumerate(panel.hours.tolist()):
        if state.last_hour is not None and hour <= state.last_hour:
            raise ValueError(f"hour {pd.Timestamp(hour * HOUR_NS, tz='UTC')} was already processed")
        while state.last_hour is not None and state.last_hour + 1 < hour:
            gap = state.last_hour + 1
            row, state = _advance(state, _empty_row(state, p), gap, p, crash_model)
            rows.append(row)
            hours.append(gap)
        row, state = _advance(state, _panel_row(panel, i, cols, p), hour, p, crash_model)
        rows.append(row)
        hours.append(hour)
    index = pd.DatetimeIndex(np.asarray(hours, dtype=np.int64) * HOUR_NS, tz="UTC", name="ts")
    index = index.as_unit(panel.index.unit)  # the same resolution as the input, like the batch path
    merged = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]} if rows else {}
    frame = assemble(index, merged, list(stage1_features(p))) if rows else pd.DataFrame()
    return frame, state


def _advance(
    state: FragilityState,
    row: dict[str, np.ndarray],
    hour: int,
    p: FragilityParams,
    model: CrashModel | None,
) -> tuple[dict[str, np.ndarray], FragilityState]:
    """One hour: stage 1 on the context + row, stage 2 on the buffer, then the stateful parts."""
    grown = {k: np.concatenate([state.context[k], row[k][None, :]]) for k in state.context}
    s1_row = cross_section(_window(grown, state.symbols, hour, p, row["liquidations"]), p)
    buffer = {k: np.concatenate([state.stage1[k][1:], s1_row[k]]) for k in state.stage1}
    d = {k: v[-1:] for k, v in derive(buffer, p).items()}
    memories = _stateful(state, d, hour, p, model)
    context = {k: v[1:] for k, v in grown.items()}
    return d, replace(state, last_hour=hour, context=context, stage1=buffer, **memories)


def _window(
    grown: dict[str, np.ndarray], symbols: tuple[str, ...], hour: int, p: FragilityParams, liq: np.ndarray
) -> Window:
    """The one-hour block: the context rows plus the new row, as the batch path's blocks are laid out."""
    lookback, vol = stage1_lookback(p), grown["volume"]
    return Window(
        close=grown["close"],
        volume=vol[-(lookback + 1) :],
        quote_volume=grown["quote_volume"],
        funding={v: grown[f"funding:{v}"] for v in tracked_venues(p)},
        open_interest=grown["open_interest"],
        stand_in=grown["stand_in"],
        volume_history=vol[-(p.multi_asset.volume_window_hours + 1) :],
        lookback=lookback,
        btc=symbols.index(p.universe.btc_symbol) if p.universe.btc_symbol in symbols else None,
        first_hour=hour,
        quote_volume_1d=grown["quote_volume_1d"],
        liquidations=liq[None, :],
    )


def _stateful(
    state: FragilityState, d: dict[str, np.ndarray], hour: int, p: FragilityParams, model: CrashModel | None
) -> dict[str, Any]:
    """Ranks, percentiles, episodes and regime for the hour (filled into ``d``); returns the new memories."""
    ranked = dict(state.ranked)

    def counts(name: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ranked[name], less, equal, past = insert_sorted(ranked[name], float(values[0]))
        return np.array([less]), np.array([equal]), np.array([past])

    stateful_signals(d, p, counts, model)
    cooldown = p.cascade.cooldown_hours
    btc_ep = state.btc_episode.advance(hour, int(d["cascade_level"][0]), cooldown)
    multi_ep = state.multi_episode.advance(hour, int(d["multi_asset"][0]), cooldown)
    d["episode_id"] = _id_of(btc_ep, "btc")
    d["episode_level"] = np.array([btc_ep.max_level], dtype=np.int8)
    d["multi_episode_id"] = _id_of(multi_ep, "multi")
    last_cascade = hour if bool(cascade_relevant(d, p)[0]) else state.last_cascade_hour
    regime, why = transition(state.regime, float(d["regime_signal"][0]), hour - last_cascade, p.regime)
    d["regime_code"] = np.array([regime.state], dtype=np.int8)
    d["hours_in_regime"] = np.array([regime.hours_in_state], dtype=np.int64)
    d["risk_multiplier"] = risk_multiplier(d["regime_code"], d["degraded"], p.regime)
    d["reason_bits"] = np.array([why], dtype=np.int64) | hour_reasons(d)
    d["reasons"] = reason_text(d["reason_bits"])
    return {
        "ranked": ranked,
        "btc_episode": btc_ep,
        "multi_episode": multi_ep,
        "last_cascade_hour": last_cascade,
        "regime": regime,
    }


def _id_of(memory: EpisodeMemory, prefix: str) -> np.ndarray:
    value = None if memory.start_hour == NO_HOUR else episode_id(memory.start_hour, prefix)
    return np.array([value], dtype=object)


def _context_names(p: FragilityParams) -> list[str]:
    names = ["close", "quote_volume", "open_interest", "quote_volume_1d"]
    return [*names, *(f"funding:{v}" for v in tracked_venues(p))]


def _volume_rows(p: FragilityParams) -> int:
    return max(stage1_lookback(p), p.multi_asset.volume_window_hours)


def _empty_row(state: FragilityState, p: FragilityParams) -> dict[str, np.ndarray]:
    n = len(state.symbols)
    row = {k: np.full(n, np.nan) for k in state.context}
    row["stand_in"] = np.zeros(n, dtype=bool)
    row["liquidations"] = _NO_LIQUIDATIONS
    return row


def _panel_row(panel: Panel, i: int, cols: list[int], p: FragilityParams) -> dict[str, np.ndarray]:
    """Row ``i`` of the panel in the state's symbol order (absent symbols and venues: NaN)."""
    idx = np.asarray(cols)
    missing = idx < 0

    def pick(arr: np.ndarray | None) -> np.ndarray:
        if arr is None:
            return np.full(len(idx), np.nan)
        out = arr[i, np.maximum(idx, 0)].astype(np.float64)
        out[missing] = np.nan
        return out

    names = ("close", "volume", "quote_volume", "open_interest", "quote_volume_1d")
    row = {name: pick(getattr(panel, name)) for name in names}
    for venue in tracked_venues(p):
        row[f"funding:{venue}"] = pick(panel.funding.get(venue))
    stand_in = np.zeros(len(idx), dtype=bool)
    if panel.stand_in is not None:
        stand_in = panel.stand_in[i, np.maximum(idx, 0)] & ~missing
    row["stand_in"] = stand_in
    row["liquidations"] = _NO_LIQUIDATIONS if panel.liquidations is None else panel.liquidations[i]
    return row


def _with_symbols(state: FragilityState, symbols: tuple[str, ...]) -> FragilityState:
    """The state with any new symbols appended as columns that have no history."""
    known = set(state.symbols)
    new = [s for s in symbols if s not in known]
    if not new:
        return state
    context = {}
    for k, v in state.context.items():
        extra = (
            np.zeros((v.shape[0], len(new)), dtype=bool)
            if v.dtype == bool
            else np.full((v.shape[0], len(new)), np.nan)
        )
        context[k] = np.concatenate([v, extra], axis=1)
    return replace(state, symbols=(*state.symbols, *new), context=context)


def _encode(arr: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(arr)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode()}


def _decode(blob: dict[str, Any]) -> np.ndarray:
    raw = base64.b64decode(blob["data"])
    return np.frombuffer(raw, dtype=np.dtype(blob["dtype"])).reshape(blob["shape"]).copy()
