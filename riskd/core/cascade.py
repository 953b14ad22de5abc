"""Cascade detection: RESEARCH.md's four BTC levels, episodes with stable ids, and event tables.

A level fires on an hour when all three of its strict inequalities hold (BTC 1 h return, BTC
``vol_ratio``, aggregate funding z; volume-only ignores funding). ``cascade_level`` is the most
selective level that fired, ranked by how rare the research found them: 4 strict (4 events),
3 medium (15), 2 loose (36), 1 volume-only (84), 0 none. The levels are not nested (volume-only
needs −3% but no funding), so each level's flag is reported too.

Episodes: a flagged hour within ``cooldown_hours`` of the previous flagged hour joins its episode;
otherwise it starts a new one. The id is made from the episode's first hour only
(``btc-20210519T13Z``), so the live path, a restart and a batch re-run all name it the same. An
episode stays open (its id shown) until ``cooldown_hours`` after its last flagged hour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskd.core.panel import HOUR_NS
from riskd.core.params import CascadeLevel, CascadeParams

LEVELS: tuple[str, ...] = ("volume_only", "loose", "medium", "strict")
"""Level names by code 1…4 (code 0 is ``none``)."""
LEVEL_NAMES: tuple[str, ...] = ("none", *LEVELS)
NO_HOUR = -(2**62)
"""Hour number meaning 'never' (far enough in the past that no window reaches it)."""


def level_flag(
    ret_1h: np.ndarray, vol_ratio: np.ndarray, funding_z: np.ndarray, rule: CascadeLevel
) -> np.ndarray:
    """Hours where one level's three conditions hold (NaN inputs never fire)."""
    hit = (ret_1h < rule.max_return) & (vol_ratio > rule.min_vol_ratio)
    if rule.min_funding_z is not None:
        hit &= funding_z > rule.min_funding_z
    return hit


def level_flags(
    ret_1h: np.ndarray, vol_ratio: np.ndarray, funding_z: np.ndarray, p: CascadeParams
) -> dict[str, np.ndarray]:
    """Each level's flags, keyed by level name."""
    return {name: level_flag(ret_1h, vol_ratio, funding_z, getattr(p, name)) for name in LEVELS}


def level_code(flags: dict[str, np.ndarray]) -> np.ndarray:
    """Most selective level that fired per hour: 0 none … 4 strict (int8)."""
    code = np.zeros(len(flags[LEVELS[0]]), dtype=np.int8)
    for i, name in enumerate(LEVELS, start=1):
        code[flags[name]] = i
    return code


@dataclass(frozen=True)
class Episodes:
    """Per hour: the open episode's first hour (NO_HOUR if none), its highest level so far, and
    the hour of the latest flag (NO_HOUR if none yet)."""

    start_hour: np.ndarray
    max_level: np.ndarray
    last_flag_hour: np.ndarray


def episodes(hours: np.ndarray, level: np.ndarray, cooldown: int) -> Episodes:
    """Group flagged hours (``level > 0``) into episodes, vectorised (batch path)."""
    n = len(hours)
    rows = np.flatnonzero(level > 0)
    if not len(rows):
        never = np.full(n, NO_HOUR, dtype=np.int64)
        return Episodes(never, np.zeros(n, dtype=np.int8), never.copy())
    f_hours = hours[rows].astype(np.int64)
    opens = np.diff(f_hours, prepend=NO_HOUR) > cooldown  # this flag starts a new episode
    episode_no = np.cumsum(opens) - 1
    start_of_flag = f_hours[opens][episode_no]
    key = episode_no * 8 + level[rows]  # levels < 8: a running max that restarts with each episode
    max_of_flag = np.maximum.accumulate(key) - episode_no * 8
    last_row = np.maximum.accumulate(np.where(level > 0, np.arange(n), -1))
    at = np.searchsorted(rows, np.maximum(last_row, 0))  # the latest flag, among the flagged rows
    last_flag = np.where(last_row >= 0, f_hours[at], NO_HOUR)
    open_ = (last_row >= 0) & (hours - last_flag <= cooldown)
    start = np.where(open_, start_of_flag[at], NO_HOUR)
    return Episodes(start, np.where(open_, max_of_flag[at], 0).astype(np.int8), last_flag)


@dataclass(frozen=True)
class EpisodeMemory:
    """What the live path remembers of the episode grouping between hours."""

    start_hour: int = NO_HOUR
    max_level: int = 0
    last_flag_hour: int = NO_HOUR

    def advance(self, hour: int, level: int, cooldown: int) -> EpisodeMemory:
        """The memory after one more hour: the live counterpart of :func:`episodes`."""
        start, top, last = self.start_hour, self.max_level, self.last_flag_hour
        if level > 0:
            if hour - last > cooldown:
                start, top = hour, level
            else:
                top = max(top, level)
            last = hour
        if hour - last > cooldown or last == NO_HOUR:
            return EpisodeMemory(NO_HOUR, 0, last)
        return EpisodeMemory(start, top, last)


def episode_ids(start_hour: np.ndarray, prefix: str) -> np.ndarray:
    """``prefix-YYYYmmddTHHZ`` of each start hour (None where no episode is open), object array."""
    out = np.full(len(start_hour), None, dtype=object)
    open_ = start_hour != NO_HOUR
    for h in np.unique(start_hour[open_]):
        out[start_hour == h] = episode_id(int(h), prefix)
    return out


def episode_id(start_hour: int, prefix: str) -> str:
    """The stable id of an episode that began at hour number ``start_hour``."""
    ts = pd.Timestamp(start_hour * HOUR_NS, tz="UTC")
    return f"{prefix}-{ts:%Y%m%dT%H}Z"


def cascade_events(result: pd.DataFrame, p: CascadeParams) -> pd.DataFrame:
    """One row per episode of each level (and of the multi-asset detector), from a core result frame.

    Each level is grouped on its own flags with the same cool-down, so the counts per level are
    comparable with the research's 4 / 15 / 36 / 84.
    """
    hours = result.index.as_unit("ns").asi8 // HOUR_NS
    rows = []
    columns = {name: f"cascade_{name}" for name in LEVELS} | {"multi_asset": "multi_asset"}
    for name, column in columns.items():
        flag = result[column].to_numpy(dtype=bool)
        ep = episodes(hours, flag.astype(np.int8), p.cooldown_hours)
        flagged = np.flatnonzero(flag)
        for start in np.unique(ep.start_hour[flagged]):
            members = flagged[ep.start_hour[flagged] == start]
            sub = result.iloc[members]
            rows.append(
                {
                    "level": name,
                    "episode_id": episode_id(int(start), "multi" if name == "multi_asset" else "btc"),
                    "start": result.index[members[0]],
                    "end": result.index[members[-1]],
                    "flagged_hours": len(members),
                    "min_btc_ret_1h": sub["btc_ret_1h"].min(),
                    "max_btc_vol_ratio": sub["btc_vol_ratio"].max(),
                    "max_agg_funding_z": sub["agg_funding_z"].max(),
                    "max_multi_asset_count": sub["multi_asset_count"].max(),
                }
            )
    return pd.DataFrame(rows)
