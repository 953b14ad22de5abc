"""Cascade levels, episodes and the multi-asset detector: rules, planted events, planted non-events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskd.core import FragilityParams, Panel, cascade_events, compute_fragility, crashing_assets
from riskd.core.cascade import NO_HOUR, EpisodeMemory, episode_id, episodes, level_code, level_flags

P = FragilityParams()
N_HOURS = 1000
ALTS = ("ETH", "SOL", "XRP", "DOGE", "ADA", "LINK", "AVAX")


@pytest.mark.parametrize(
    ("ret", "vol_ratio", "fr_z", "level"),
    [
        (-0.031, 3.1, 2.1, "strict"),
        (-0.031, 3.0, 2.1, "medium"),  # vol_ratio must EXCEED 3 for strict
        (-0.030, 3.1, 2.1, "medium"),  # the return must be BELOW −3 %
        (-0.021, 2.1, 1.6, "medium"),
        (-0.021, 2.1, 1.5, "loose"),
        (-0.021, 1.6, 1.1, "loose"),
        (-0.021, 1.6, 1.0, "none"),
        (-0.031, 2.1, 0.0, "volume_only"),
        (-0.031, 2.1, np.nan, "volume_only"),  # volume-only ignores funding, even missing
        (-0.031, 1.9, 3.0, "loose"),
        (-0.019, 9.0, 9.0, "none"),
        (np.nan, 9.0, 9.0, "none"),
    ],
)
def test_level_rules_are_research_thresholds_with_strict_inequalities(
    ret: float, vol_ratio: float, fr_z: float, level: str
) -> None:
    """The most selective level whose three conditions hold (RESEARCH.md's table)."""
    flags = level_flags(np.array([ret]), np.array([vol_ratio]), np.array([fr_z]), P.cascade)
    names = ("none", "volume_only", "loose", "medium", "strict")
    assert names[level_code(flags)[0]] == level


@pytest.mark.parametrize(
    ("flags", "cooldown", "starts"),
    [
        ({10: 1, 20: 4, 34: 2}, 24, [10, 10, 10]),
        ({10: 1, 35: 1}, 24, [10, 35]),
        ({10: 1, 34: 1}, 24, [10, 10]),  # a gap of exactly the cool-down still joins
        ({10: 2, 11: 2, 12: 2}, 0, [10, 11, 12]),
    ],
)
def test_episodes_group_flags_by_cool_down(flags: dict[int, int], cooldown: int, starts: list[int]) -> None:
    """Batch grouping and the live memory agree hour by hour: episode start, top level, last flag."""
    hours = np.arange(80, dtype=np.int64)
    level = np.zeros(80, dtype=np.int8)
    level[list(flags)] = list(flags.values())
    ep = episodes(hours, level, cooldown)
    assert ep.start_hour[list(flags)].tolist() == starts
    memory = EpisodeMemory()
    for h in hours.tolist():
        memory = memory.advance(h, int(level[h]), cooldown)
        assert (memory.start_hour, memory.max_level, memory.last_flag_hour) == (
            ep.start_hour[h],
            ep.max_level[h],
            ep.last_flag_hour[h],
        )


def test_an_episode_closes_after_the_cool_down_and_keeps_its_top_level() -> None:
    """Open through last flag + cool-down with the highest level seen, then closed."""
    hours = np.arange(80, dtype=np.int64)
    level = np.zeros(80, dtype=np.int8)
    level[[10, 20]] = [1, 4]
    ep = episodes(hours, level, 24)
    assert ep.max_level[[10, 19, 20, 44]].tolist() == [1, 1, 4, 4]
    assert ep.start_hour[44] == 10
    assert ep.start_hour[45] == NO_HOUR
    assert ep.max_level[45] == 0


def test_episode_ids_are_made_from_the_first_hour() -> None:
    """Readable, stable ids: prefix and the episode's first hour in UTC."""
    hour = pd.Timestamp("2021-05-19T13:00Z").value // 3_600_000_000_000
    assert episode_id(hour, "btc") == "btc-20210519T13Z"


# --- a synthetic market with planted truths -----------------------------------------------------

BTC_EVENTS = {  # hour: (BTC 1 h return, volume multiplier, funding jump just before, expected level)
    250: (-0.035, 3.0, False, "volume_only"),
    300: (-0.040, 1.0, False, "none"),  # a drop without volume
    350: (0.003, 6.0, False, "none"),  # volume without a drop
    404: (-0.040, 5.0, True, "strict"),
    604: (-0.025, 2.5, True, "medium"),
    804: (-0.025, 1.75, True, "loose"),
}
MULTI_EVENTS = {  # hour: (alts that drop, alts whose volume spikes, expected count)
    900: (4, 4, 4),  # crash in four alts: flagged
    930: (2, 2, 2),  # only two assets: not flagged
    960: (4, 0, 0),  # drops without volume: nothing
    990: (0, 4, 0),  # volume without drops: nothing
}


def planted_market(seed: int = 5) -> Panel:
    """Eight symbols, quiet noise (0.2 %/h, ±2 % volume), funding flat at 1e-5/h except 30 h jumps
    to 1e-4/h starting 4 h before the funding-conditioned BTC events, which makes fr_z > 2 there."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=N_HOURS, freq="h", tz="UTC", name="ts")
    n = 1 + len(ALTS)
    ret = rng.normal(0.0, 0.002, (N_HOURS, n))
    volume = 1000.0 * (1.0 + rng.normal(0.0, 0.02, (N_HOURS, n)))
    funding = 1e-5 + rng.normal(0.0, 1e-7, (N_HOURS, n))
    for hour, (r, mult, jump, _) in BTC_EVENTS.items():
        ret[hour, 0], volume[hour, 0] = r, volume[hour, 0] * mult
        if jump:
            funding[hour - 4 : hour + 26] += 9e-5
    for hour, (drops, spikes, _) in MULTI_EVENTS.items():
        ret[hour - 1, 1 : 1 + drops] = -0.012
        ret[hour, 1 : 1 + drops] = -0.025
        volume[hour, 1 : 1 + spikes] *= 6.0
    close = 100.0 * np.cumprod(1.0 + ret, axis=0)
    return Panel(idx, ("BTC", *ALTS), close, volume, volume * close, {"binance": funding})


@pytest.fixture(scope="module")
def planted() -> pd.DataFrame:
    return compute_fragility(planted_market(), P)


@pytest.mark.parametrize(("hour", "expected"), [(h, e[3]) for h, e in BTC_EVENTS.items()])
def test_planted_btc_events_are_found_at_their_hour_and_level(
    planted: pd.DataFrame, hour: int, expected: str
) -> None:
    """Each planted hour shows exactly its level; drops without volume and volume without drops do not fire."""
    assert planted["cascade_level_name"].iloc[hour] == expected


def test_no_level_fires_outside_the_planted_hours(planted: pd.DataFrame) -> None:
    """Quiet noise never reaches a level: the flagged hours are exactly the planted events."""
    flagged = np.flatnonzero(planted["cascade_level"].to_numpy() > 0).tolist()
    assert flagged == [h for h, e in BTC_EVENTS.items() if e[3] != "none"]


def test_funding_conditioned_events_really_had_high_funding_z(planted: pd.DataFrame) -> None:
    """The planted funding jumps put fr_z above 2 at the strict/medium/loose hours (the test's premise)."""
    assert (planted["agg_funding_z"].iloc[[404, 604, 804]] > 2).all()
    assert abs(planted["agg_funding_z"].iloc[250]) < 1


@pytest.mark.parametrize(("hour", "count"), [(h, e[2]) for h, e in MULTI_EVENTS.items()])
def test_multi_asset_detector_counts_crashing_assets(planted: pd.DataFrame, hour: int, count: int) -> None:
    """Drops in 1 h and 2 h with a volume spike count; two assets are not enough to flag the hour."""
    assert planted["multi_asset_count"].iloc[hour] == count
    assert planted["multi_asset"].iloc[hour] == (count >= 3)


def test_crashing_assets_are_the_planted_assets_and_add_up_to_the_count(planted: pd.DataFrame) -> None:
    """The per-asset cells of the detector (what the offline strategies buy) are exactly the assets that
    both dropped and spiked at each planted hour, nothing else anywhere, and their row sums are the
    feature multi_asset_count on every hour, across block boundaries (small blocks force several)."""
    flags = crashing_assets(planted_market(), P, block_rows=97)
    expected = np.zeros(flags.shape, dtype=bool)
    for hour, (drops, spikes, _) in MULTI_EVENTS.items():
        expected[hour, 1 : 1 + min(drops, spikes)] = True
    for hour, (ret, mult, _, _) in BTC_EVENTS.items():  # BTC's own planted crashes meet the rule too when
        expected[hour, 0] = ret < P.multi_asset.max_return_2h and mult > 2  # 1 h alone is past −3 % (2 h)
    assert expected[:, 0].sum() == 2  # hours 250 and 404; the −2.5 % drops miss the 2 h bar
    np.testing.assert_array_equal(flags.to_numpy(), expected)
    assert list(flags.columns) == ["BTC", *ALTS]
    np.testing.assert_array_equal(
        flags.sum(axis=1).to_numpy(dtype=float), planted["multi_asset_count"].to_numpy()
    )


def test_multi_asset_fires_only_at_the_planted_crash(planted: pd.DataFrame) -> None:
    """The only flagged multi-asset hour is the four-asset crash, with its own episode id."""
    assert np.flatnonzero(planted["multi_asset"].to_numpy()).tolist() == [900]
    assert planted["multi_episode_id"].iloc[900] == "multi-" + f"{planted.index[900]:%Y%m%dT%H}Z"


def test_events_table_has_one_episode_per_planted_event(planted: pd.DataFrame) -> None:
    """cascade_events lists each level's episodes with the planted hour as start."""
    events = cascade_events(planted, P.cascade)
    counts = events.groupby("level").size().to_dict()
    assert counts == {"volume_only": 2, "loose": 3, "medium": 2, "strict": 1, "multi_asset": 1}
    strict = events[events["level"] == "strict"].iloc[0]
    assert strict["start"] == planted.index[404]
    assert strict["episode_id"] == planted["episode_id"].iloc[404]


def test_episode_stays_open_for_the_cool_down_then_closes(planted: pd.DataFrame) -> None:
    """The strict episode's id is shown from its hour through 24 h after, then cleared."""
    ids = planted["episode_id"]
    assert ids.iloc[403] is pd.NA or pd.isna(ids.iloc[403])
    assert (ids.iloc[404:429] == ids.iloc[404]).all()
    assert pd.isna(ids.iloc[429])
    assert planted["episode_level"].iloc[410] == 4
