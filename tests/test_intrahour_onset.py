"""Onset, latency and false alarms on synthetic minute markets with planted cascades (issue 21)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskd.cli import main
from riskd.core.intrahour import IntrahourParams
from riskd.research.intrahour import event_table, hourly_events, replay
from riskd.research.intrahour_text import markdown
from riskd.research.intrahour_tune import tune
from riskd.research.latency import score, summary
from riskd.research.onset import cascades, fall_clock
from riskd.research.plain_alert import PlainAlert, fit_plain_alert, plain_firing
from riskd.store import HistoryStore
from riskd.testing.minute_market import MinuteMarket, Plant, minute_market

START = pd.Timestamp("2024-03-01", tz="UTC")
DAY, H, M = pd.Timedelta(days=1), pd.Timedelta(hours=1), pd.Timedelta(minutes=1)
PLANTS = (
    Plant(START + 2 * DAY + 10 * H + 5 * M),  # starts in the hour's first minutes, trough inside it
    Plant(START + 3 * DAY + 10 * H + 25 * M, fall=-0.08, minutes=70),  # two event hours, one fall
    Plant(START + 4 * DAY + 5 * H + 45 * M),  # crosses the hour: only the second hour is an event
    Plant(
        START + 5 * DAY + 7 * H + 20 * M, fall=-0.045, minutes=10, recover=1.0, recover_minutes=5, decoy=True
    ),
)
CASCADES = [p for p in PLANTS if not p.decoy]


def market(bar_minutes: int) -> MinuteMarket:
    """Seven quiet days with the four plants above, on bars of ``bar_minutes``."""
    return minute_market(PLANTS, START, days=7, bar_minutes=bar_minutes, seed=3)


@pytest.mark.parametrize("bar_minutes", [1, 5])
def test_onset_and_trough_recover_the_plants(bar_minutes: int) -> None:
    """Each planted cascade is found once, with its planted onset (both definitions) and trough; the
    decoy, which recovers within the hour, is no cascade."""
    m = market(bar_minutes)
    events = hourly_events(m.btc)
    found = cascades(m.btc["close"], pd.DatetimeIndex(events.index))
    truth = m.truth[~m.truth["decoy"]].reset_index(drop=True)
    assert len(events) == 4  # the 70-minute fall makes two event hours …
    assert len(found) == 3  # … that count once
    for col in ("onset_at", "onset10_at", "trough_at"):
        assert list(found[col]) == list(truth[col]), col
    np.testing.assert_allclose(found["fall"], truth["trough_close"] / truth["onset_close"] - 1, rtol=1e-9)
    assert list(found["event_hours"]) == [1, 2, 1]


def test_latency_and_share_ahead_match_the_plant() -> None:
    """A plain 2 %-in-60-minutes alert warns where the planted path first closes 2 % below the onset,
    and the share of the fall ahead is what the plant's formula leaves."""
    m = market(1)
    alert = PlainAlert(0.02, 60)
    found = cascades(m.btc["close"], pd.DatetimeIndex(hourly_events(m.btc).index))
    got = score(m.btc["close"], plain_firing(m.btc["close"], alert, 1), found, M).events
    for i, p in enumerate(CASCADES):
        k = int(np.ceil(np.log(1 - alert.drop) / np.log1p(p.fall) * p.minutes - 1e-9))  # minutes after onset
        top = m.truth.loc[i, "onset_close"]
        price, low = top * (1 + p.fall) ** (k / p.minutes), top * (1 + p.fall)
        assert got.loc[i, "latency_min"] == k
        assert got.loc[i, "share_ahead"] == pytest.approx((price - low) / (top - low), rel=1e-9)
        assert (
            got.loc[i, "latency10_min"] == k - (m.truth.loc[i, "onset10_at"] - m.truth.loc[i, "onset_at"]) / M
        )
        assert not got.loc[i, "after_trough"]


@pytest.mark.parametrize("bar_minutes", [1, 5])
def test_decoy_is_a_false_alarm_and_cascades_are_not(bar_minutes: int) -> None:
    """riskd's detector and the plain alert both fire on the decoy's sharp drop: that hour is their
    only false alarm; every planted cascade is warned before its trough."""
    m = market(bar_minutes)
    rep = replay(
        m.btc, m.alts, IntrahourParams(volume_min_periods=30), bar_minutes, plain=PlainAlert(0.03, 30)
    )
    decoy_hour = PLANTS[-1].onset.floor("h") + H
    for name, s in rep.scores.items():
        assert list(s.false_hours) == [decoy_hour], name
        assert s.events["warned_at"].notna().all(), name
        assert not s.events["after_trough"].any(), name
        assert summary(s)["false_per_month"] == pytest.approx(1 / (7 * 24) * 720)


def test_hourly_path_before_the_trough() -> None:
    """The hourly path alone comes before the trough only when the fall runs past its event hour."""
    rep = replay(market(1).btc, None, IntrahourParams(), 1)
    assert list(rep.cascades["hourly_before_trough"]) == [False, True, False]


def test_summary_counts_misses_as_never_within() -> None:
    """Within-k shares are over all cascades; latency quantiles only over the warned ones."""
    m = market(1)
    found = cascades(m.btc["close"], pd.DatetimeIndex(hourly_events(m.btc).index))
    only_first = plain_firing(m.btc["close"], PlainAlert(0.02, 60), 1)
    only_first[only_first.index > PLANTS[1].onset - H] = False  # the later cascades are missed
    f = summary(score(m.btc["close"], only_first, found, M))
    assert (f["cascades"], f["warned"]) == (3, 1)
    assert f["within_30"] == pytest.approx(1 / 3)
    assert f["median_latency"] == f["p80_latency"] == 14


def test_plain_alert_fit_avoids_the_decoy() -> None:
    """On a training span whose decoy a ≤ 4.5 % alert would fire on (above a 1.5 a month budget),
    the fit picks the fastest grid alert that stays quiet there: 5 % within 60 minutes."""
    m = market(5)
    found = cascades(m.btc["close"], pd.DatetimeIndex(hourly_events(m.btc).index))
    alert, value = fit_plain_alert(m.btc["close"], found, 5, until=START + 7 * DAY)
    assert alert == PlainAlert(0.05, 60)
    assert np.isfinite(value)


def test_event_table_has_one_row_per_cascade_and_detector_columns() -> None:
    """The CSV table: one row per cascade with the data set's name and each detector's columns."""
    m = market(5)
    table = event_table({"synthetic": replay(m.btc, m.alts, IntrahourParams(), 5)})
    assert len(table) == 3
    assert {"dataset", "onset_at", "onset10_at", "riskd_latency_min", "plain_share_ahead"} <= set(
        table.columns
    )


def test_fall_clock_matches_the_plant() -> None:
    """Minutes from onset to 1 % and 2 % down and to half the fall are the plant's closed form."""
    m = market(1)
    found = cascades(m.btc["close"], pd.DatetimeIndex(hourly_events(m.btc).index))
    clock = fall_clock(m.btc["close"], found)
    for i, p in enumerate(CASCADES):
        for drop, col in ((0.01, "min_to_1pct"), (0.02, "min_to_2pct")):
            assert clock.loc[i, col] == np.ceil(np.log1p(-drop) / np.log1p(p.fall) * p.minutes - 1e-9)
        half = -p.fall / 2  # half of the fall, as a fraction of the onset close
        assert clock.loc[i, "min_to_half"] == np.ceil(np.log1p(-half) / np.log1p(p.fall) * p.minutes - 1e-9)


SMALL_GRID = {"volume_surge": (3.0, 50.0), "drop_from_high": (None, -0.02)}


def test_tuning_chooses_on_the_training_span_only() -> None:
    """The tuned parameters are the best on the bars before the cut, and do not change when the bars
    after it change (the decoy there removed)."""
    cut = START + 4 * DAY + 12 * H
    base = IntrahourParams(volume_min_periods=30)
    m = market(5)
    tuned = tune(m.btc, m.alts, 5, cut, base, budget=10.0, grid=SMALL_GRID)
    assert tuned.table["objective"].iloc[0] == tuned.table["objective"].min() < np.inf
    assert {"train_median_latency", "test_median_latency", "test_false_per_month"} <= set(tuned.table.columns)
    calm = minute_market(PLANTS[:3], START, days=7, bar_minutes=5, seed=3)
    assert tune(calm.btc, calm.alts, 5, cut, base, budget=10.0, grid=SMALL_GRID).best == tuned.best
    assert tuned.best.drop_from_high == -0.02  # the drawdown path warns sooner on these falls


def test_report_names_the_comparison_and_the_aim() -> None:
    """The markdown gives each span's verdict against the plain alert, how soon a price-based warning
    could come, the aim table and one row per cascade, with no unformatted NaN."""
    m = market(5)
    rep = replay(m.btc, m.alts, IntrahourParams(volume_min_periods=30), 5, plain=PlainAlert(0.03, 30))
    text = markdown({"synthetic": rep}, IntrahourParams(), PlainAlert(0.03, 30), START + 4 * DAY)
    assert re.search(
        r"riskd (beats|does not beat|is faster but noisier than|is quieter but not faster than) the fixed",
        text,
    )
    assert "how soon a price-based warning could come" in text
    assert "| aim (riskd, out of sample) |" in text
    assert text.count("| 2024-03-0") >= 3
    assert "nan" not in text.lower()


def test_validate_intra_hour_writes_report_and_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``riskd validate --intra-hour`` on a store holding a planted 5-minute market writes intrahour.md and
    the per-event CSV, one row per cascade."""
    m = market(5)
    store = HistoryStore(tmp_path / "data" / "store")
    for symbol, close in {"BTC": m.btc["close"], **{s: m.alts[s] for s in m.alts}}.items():
        frame = pd.DataFrame({"open": close, "high": close, "low": close, "close": close,
                              "volume": m.btc["volume"], "quote_volume": m.btc["volume"] * close})  # fmt: skip
        store.append("ohlcv_5m", "binance", symbol, frame)
    monkeypatch.setenv("RISKD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RISKD_UNIVERSE__SYMBOLS", '["BTC", "ETH", "SOL", "XRP", "DOGE"]')
    assert main(["validate", "--intra-hour", "--out", str(tmp_path / "out")]) == 0
    table = pd.read_csv(tmp_path / "out" / "intrahour_events.csv")
    assert len(table) == 3
    assert (table["dataset"] == "ohlcv_5m (binance, 5-minute bars)").all()
    assert "## ohlcv_5m" in (tmp_path / "out" / "intrahour.md").read_text()
