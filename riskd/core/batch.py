"""The batch path: a whole history in, the full result frame out (the offline module's entry point).

Stage 1 runs over blocks of hours (a loop over ~100 blocks, never over hours or symbols), each block a
few cache-sized numpy arrays with the look-back rows it needs in front. Everything after stage 1 works
on one value per hour. The regime machine is the one loop over hours, over plain Python numbers.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from riskd.core.cascade import NO_HOUR, EpisodeMemory, Episodes, episode_ids, episodes
from riskd.core.crashprob import CrashModel
from riskd.core.crosssection import CrossSection, Window, stage1_lookback
from riskd.core.features import cross_section, multi_asset_hits, stage1_features
from riskd.core.incremental import FragilityState
from riskd.core.output import assemble, cascade_relevant, derive, hour_reasons, stateful_signals
from riskd.core.panel import Panel
from riskd.core.params import FragilityParams
from riskd.core.regime import RegimeMemory, reason_text, risk_multiplier, run
from riskd.core.windows import expanding_rank_counts, pad_front

BLOCK_ROWS = 512
"""Hours per stage-1 block: 512 × 600 symbols × 8 bytes ≈ 2.5 MB per array, cache-friendly."""


def compute_fragility(
    panel: Panel, params: FragilityParams | None = None, crash_model: CrashModel | None = None
) -> pd.DataFrame:
    """Features, CFI, cascade levels and episodes, regime and risk multiplier for every hour of ``panel``.

    Row ``ts = T`` describes the hour [T, T+1h) and uses only what was known at T+1h. Without a
    ``crash_model`` the ``crash_prob_24h`` column is NaN (never a made-up number).
    """
    return compute_fragility_with_state(panel, params, crash_model)[0]


def compute_fragility_with_state(
    panel: Panel, params: FragilityParams | None = None, crash_model: CrashModel | None = None
) -> tuple[pd.DataFrame, FragilityState]:
    """:func:`compute_fragility` plus the live state after its last hour (to warm-start the daemon)."""
    p = params or FragilityParams()
    s1 = stage1_batch(panel, p)
    d = derive(s1, p)
    hours = panel.hours
    memories = _stateful_columns(d, hours, p, crash_model)
    frame = assemble(panel.index, d, list(stage1_features(p)))
    state = FragilityState.from_history(panel, s1, d, memories, p)
    return frame, state


def stage1_batch(panel: Panel, p: FragilityParams, block_rows: int = BLOCK_ROWS) -> dict[str, np.ndarray]:
    """Every cross-sectional feature for every hour, computed block by block."""
    n_hours = len(panel.index)
    out = {name: np.empty(n_hours) for name in stage1_features(p)}
    for a, b, win in _blocks(panel, p, block_rows):
        for name, values in cross_section(win, p).items():
            out[name][a:b] = values
    return out


def crashing_assets(
    panel: Panel, params: FragilityParams | None = None, block_rows: int = BLOCK_ROWS
) -> pd.DataFrame:
    """Per hour and symbol, whether the multi-asset detector counts that asset as crashing (bool,
    hours × symbols): the cells behind ``multi_asset_count``, by the same code, for the strategies that
    buy the crashing assets. Row sums equal ``multi_asset_count`` by construction."""
    p = params or FragilityParams()
    hit = np.zeros(panel.close.shape, dtype=bool)
    for a, _, win in _blocks(panel, p, block_rows):
        rows, cols = multi_asset_hits(CrossSection(win, p))
        hit[a + rows, cols] = True
    return pd.DataFrame(hit, index=panel.index, columns=list(panel.symbols))


def _blocks(panel: Panel, p: FragilityParams, block_rows: int) -> Iterator[tuple[int, int, Window]]:
    """Rows [a, b) of the panel in blocks, each as a Window with its look-back context in front."""
    n_hours = len(panel.index)
    lookback, w_multi = stage1_lookback(p), p.multi_asset.volume_window_hours
    btc = panel.symbols.index(p.universe.btc_symbol) if p.universe.btc_symbol in panel.symbols else None
    for a in range(0, n_hours, block_rows):
        b = min(a + block_rows, n_hours)
        yield (
            a,
            b,
            Window(
                close=_context(panel.close, a, b, lookback),
                volume=_context(panel.volume, a, b, lookback),
                quote_volume=_context(panel.quote_volume, a, b, lookback),
                funding={v: _context(arr, a, b, lookback) for v, arr in panel.funding.items()},
                open_interest=None
                if panel.open_interest is None
                else _context(panel.open_interest, a, b, lookback),
                stand_in=None if panel.stand_in is None else _context_bool(panel.stand_in, a, b, lookback),
                volume_history=_context(panel.volume, a, b, w_multi),
                lookback=lookback,
                btc=btc,
                first_hour=int(panel.hours[a]),
                quote_volume_1d=None
                if panel.quote_volume_1d is None
                else _context(panel.quote_volume_1d, a, b, lookback),
                liquidations=None if panel.liquidations is None else panel.liquidations[a:b],
            ),
        )


def _context(arr: np.ndarray, a: int, b: int, lookback: int) -> np.ndarray:
    """Rows [a − lookback, b) of ``arr``; rows before the history are NaN."""
    if a >= lookback:
        return arr[a - lookback : b]
    return pad_front(arr[:b], lookback - a)


def _context_bool(arr: np.ndarray, a: int, b: int, lookback: int) -> np.ndarray:
    if a >= lookback:
        return arr[a - lookback : b]
    return np.concatenate([np.zeros((lookback - a, arr.shape[1]), dtype=bool), arr[:b]])


def last_flag_hours(flags: np.ndarray, hours: np.ndarray) -> np.ndarray:
    """Hour of the latest flagged hour at or before each row (NO_HOUR before the first)."""
    last_row = np.maximum.accumulate(np.where(flags, np.arange(len(flags)), -1))
    return np.where(last_row >= 0, hours[np.maximum(last_row, 0)], NO_HOUR)


def _stateful_columns(
    d: dict[str, np.ndarray], hours: np.ndarray, p: FragilityParams, model: CrashModel | None
) -> dict[str, object]:
    """Ranks, percentiles, episodes and regime over the whole history; fills ``d``, returns end memories."""
    stateful_signals(d, p, lambda _, values: expanding_rank_counts(values), model)

    btc = episodes(hours, d["cascade_level"], p.cascade.cooldown_hours)
    multi = episodes(hours, d["multi_asset"].astype(np.int8), p.cascade.cooldown_hours)
    d["episode_id"] = episode_ids(btc.start_hour, "btc")
    d["episode_level"] = btc.max_level
    d["multi_episode_id"] = episode_ids(multi.start_hour, "multi")

    last_cascade = last_flag_hours(cascade_relevant(d, p), hours)
    since = hours - last_cascade
    states, dwell, why, regime = run(d["regime_signal"], since, p.regime)
    bits = why | hour_reasons(d)
    d["regime_code"] = states
    d["hours_in_regime"] = dwell
    d["risk_multiplier"] = risk_multiplier(states, d["degraded"], p.regime)
    d["reason_bits"] = bits
    d["reasons"] = reason_text(bits)
    return {
        "btc_episode": _end_memory(btc),
        "multi_episode": _end_memory(multi),
        "last_cascade_hour": int(last_cascade[-1]) if len(hours) else NO_HOUR,
        "regime": regime if len(hours) else RegimeMemory(),
    }


def _end_memory(ep: Episodes) -> EpisodeMemory:
    if not len(ep.start_hour):
        return EpisodeMemory()
    return EpisodeMemory(int(ep.start_hour[-1]), int(ep.max_level[-1]), int(ep.last_flag_hour[-1]))
