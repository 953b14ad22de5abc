"""The real May 2021 sample (Binance, tests/data/sample_2021_05): the 19 May crash is detected.

The sample holds perps with funding for BTC, ETH, XRP, LTC, ADA and spot candles for the other
eleven universe alts (the documented stand-in), 2021-04-20 … 2021-06-10.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from riskd.config import DEFAULT_UNIVERSE
from riskd.core import FragilityParams, build_panel, cascade_events, compute_fragility
from riskd.testing.sample import load_sample_store


@pytest.fixture(scope="module")
def may_2021(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    store = load_sample_store(Path(tmp_path_factory.mktemp("sample")))
    symbols = list(DEFAULT_UNIVERSE)
    panel = build_panel(
        store.read_many("ohlcv", "binance", symbols),
        {"binance": store.read_many("funding", "binance", symbols)},
        spot_ohlcv=store.read_many("spot_ohlcv", "binance", symbols),
        symbols=symbols,
    )
    return compute_fragility(panel, FragilityParams())


def test_19_may_2021_is_detected_at_the_volume_only_level(may_2021: pd.DataFrame) -> None:
    """The level found on 2021-05-19 is volume_only: BTC −4.1 % (01:00), −3.2 % (04:00) and −9.4 %
    (12:00 UTC) with vol_ratio 3.1–3.3; aggregate funding z was only ≈ −1.4 … +0.7, so no
    funding-conditioned level (loose needs fr_z > 1) fires. One episode, btc-20210519T01Z."""
    day = may_2021.loc["2021-05-19"]
    flagged = day[day["cascade_level"] > 0]
    assert [t.hour for t in flagged.index] == [1, 4, 12]
    assert set(flagged["cascade_level_name"]) == {"volume_only"}
    crash = may_2021.loc["2021-05-19 12:00"]
    assert crash["btc_ret_1h"] == pytest.approx(-0.0943, abs=5e-4)
    assert crash["btc_vol_ratio"] > 3
    assert crash["agg_funding_z"] < 1
    assert set(flagged["episode_id"]) == {"btc-20210519T01Z"}


def test_19_may_2021_is_a_multi_asset_crash_and_a_cascade_regime(may_2021: pd.DataFrame) -> None:
    """All 16 universe assets crash in the 12:00 hour; the regime is 'cascade' with multiplier 0."""
    crash = may_2021.loc["2021-05-19 12:00"]
    assert crash["multi_asset"]
    assert crash["multi_asset_count"] == 16
    assert crash["regime"] == "cascade"
    assert crash["risk_multiplier"] == 0.0
    assert crash["coverage"] == 1.0
    assert crash["spot_standin_share"] == pytest.approx(11 / 16)


def test_the_sample_episodes_around_the_crash(may_2021: pd.DataFrame) -> None:
    """The events table names the 19 May episode and nothing stricter than volume-only that day."""
    events = cascade_events(may_2021, FragilityParams().cascade)
    on_19 = events[events["start"].dt.strftime("%Y-%m-%d") == "2021-05-19"]
    assert set(on_19["level"]) == {"volume_only", "multi_asset"}
