"""The hours × symbols panel: alignment, funding timing without look-ahead, fallbacks, missing data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskd.core.panel import Panel, asof_hours, build_panel, hour_numbers, prepare
from riskd.core.params import PanelParams
from riskd.errors import DataError

START = pd.Timestamp("2024-03-01T00:00Z")


def candles(hours: int, start: pd.Timestamp = START, price: float = 100.0, qv: bool = True) -> pd.DataFrame:
    """Hourly candles stamped with their open time, as the store returns them."""
    idx = pd.date_range(start, periods=hours, freq="h", name="ts")
    close = price + np.arange(hours, dtype=float)
    frame = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 10.0}, index=idx
    )
    frame["quote_volume"] = frame["volume"] * frame["close"] * 1.01 if qv else np.nan
    return frame


def prints(times: list[str], rates: list[float], interval: float = 8.0) -> pd.DataFrame:
    """Funding prints as the data contract has them (rate per interval and per hour)."""
    idx = pd.DatetimeIndex(pd.to_datetime(times, utc=True), name="ts")
    rate = np.asarray(rates)
    return pd.DataFrame(
        {
            "rate": rate,
            "interval_hours": interval,
            "interval_inferred": False,
            "rate_per_hour": rate / interval,
        },
        index=idx,
    )


@pytest.mark.parametrize(
    ("print_time", "first_row"),
    [
        ("2024-03-01T08:00:00.002Z", "2024-03-01T08:00Z"),  # a few ms late: known within the 08:00 candle
        ("2024-03-01T08:00:00Z", "2024-03-01T08:00Z"),  # on the hour: usable from that hour's row on
        ("2024-03-01T08:59:59.999Z", "2024-03-01T08:00Z"),  # before the candle closes
        ("2024-03-01T09:00:00Z", "2024-03-01T09:00Z"),  # at the close of 08:00: not for row 08:00
    ],
)
def test_a_print_serves_rows_from_its_own_hour_on(print_time: str, first_row: str) -> None:
    """Row T (known at T+1h) uses a print stamped P only if floor_hour(P) <= T: never earlier."""
    panel = build_panel(
        {"BTC": candles(24)}, {"binance": {"BTC": prints([print_time], [0.0008])}}, symbols=["BTC"]
    )
    rates = panel.frame("funding")["BTC"]
    assert rates.first_valid_index() == pd.Timestamp(first_row)
    assert rates[first_row] == pytest.approx(0.0001)


def test_latest_print_in_an_hour_wins_and_stale_prints_expire() -> None:
    """Two prints in one hour: the later holds; older than the max age: NaN."""
    times = ["2024-03-01T00:00:00Z", "2024-03-01T00:30:00Z"]
    panel = build_panel(
        {"BTC": candles(40)},
        {"binance": {"BTC": prints(times, [0.0008, 0.0016])}},
        symbols=["BTC"],
        params=PanelParams(funding_max_age_hours=24),
    )
    rates = panel.frame("funding")["BTC"]
    assert rates.iloc[0] == pytest.approx(0.0002)
    assert rates.iloc[24] == pytest.approx(0.0002)
    assert np.isnan(rates.iloc[25])


def test_asof_hours_is_order_and_nan_proof() -> None:
    """Prints may come unsorted and with NaN rates; NaN prints are skipped, not carried."""
    ts = pd.DatetimeIndex(
        pd.to_datetime(["2024-03-01T08:00Z", "2024-03-01T00:00Z", "2024-03-01T04:00Z"], utc=True)
    )
    hours = hour_numbers(pd.date_range(START, periods=10, freq="h"))
    out = asof_hours(ts, np.array([3.0, 1.0, np.nan]), hours, max_age=24)
    np.testing.assert_array_equal(out, [1.0] * 8 + [3.0] * 2)


def test_quote_volume_falls_back_to_volume_times_close() -> None:
    """freqtrade files carry no quote volume: volume × close stands in; a reported one is kept."""
    panel = build_panel({"BTC": candles(3, qv=False), "ETH": candles(3)}, symbols=["BTC", "ETH"])
    np.testing.assert_allclose(panel.quote_volume[:, 0], 10.0 * panel.close[:, 0])
    np.testing.assert_allclose(panel.quote_volume[:, 1], 10.1 * panel.close[:, 1])


def test_spot_stands_in_only_where_the_perp_has_no_candle() -> None:
    """Hours before the perp's listing take spot prices and are marked; later hours stay perp."""
    perp = candles(5, start=START + pd.Timedelta(hours=5), price=200.0)
    spot = candles(10, price=50.0)
    panel = build_panel({"SOL": perp}, spot_ohlcv={"SOL": spot}, symbols=["SOL"])
    assert panel.close[:5, 0].tolist() == [50.0, 51.0, 52.0, 53.0, 54.0]
    assert panel.close[5:, 0].tolist() == [200.0, 201.0, 202.0, 203.0, 204.0]
    assert panel.stand_in[:, 0].tolist() == [True] * 5 + [False] * 5
    off = build_panel(
        {"SOL": perp},
        spot_ohlcv={"SOL": spot},
        symbols=["SOL"],
        start=START,
        params=PanelParams(spot_stand_in=False),
    )
    assert np.isnan(off.close[:5, 0]).all()


def test_missing_symbols_and_venues_are_nan_not_errors() -> None:
    """A symbol with no frame, an empty frame or a venue with no prints gives NaN columns."""
    panel = build_panel(
        {"BTC": candles(6), "ETH": candles(0)},
        {"bybit": {}, "binance": {"BTC": prints(["2024-03-01T00:00Z"], [0.0001])}},
        symbols=["BTC", "ETH", "XRP"],
    )
    assert panel.close.shape == (6, 3)
    assert np.isnan(panel.close[:, 1:]).all()
    assert np.isnan(panel.funding["bybit"]).all()
    assert np.isnan(panel.funding["binance"][:, 1:]).all()


def test_open_interest_is_read_in_base_units_with_its_own_max_age() -> None:
    """4 h open-interest readings are carried forward at most 4 hours."""
    idx = pd.date_range(START, periods=2, freq="4h", name="ts")
    oi = pd.DataFrame({"open_interest": [5.0, 7.0], "open_interest_value": [500.0, 700.0]}, index=idx)
    panel = build_panel({"BTC": candles(12)}, open_interest={"BTC": oi}, symbols=["BTC"])
    expected = [5.0] * 4 + [7.0] * 5 + [np.nan] * 3
    np.testing.assert_array_equal(panel.open_interest[:, 0], expected)


def test_inputs_are_not_modified() -> None:
    """build_panel reads its frames and leaves them as they were."""
    frames = {"BTC": candles(5, qv=False)}
    funding = {"binance": {"BTC": prints(["2024-03-01T00:00Z"], [0.0001])}}
    before = (frames["BTC"].copy(), funding["binance"]["BTC"].copy())
    build_panel(frames, funding, spot_ohlcv={"BTC": candles(5)}, symbols=["BTC"])
    pd.testing.assert_frame_equal(frames["BTC"], before[0])
    pd.testing.assert_frame_equal(funding["binance"]["BTC"], before[1])


def test_from_hour_builds_the_daemons_one_row_panel() -> None:
    """Plain mappings for the hour that just closed become a one-row panel; gaps are NaN."""
    panel = Panel.from_hour(
        "2024-03-01T08:00Z",
        close={"BTC": 60_000.0, "ETH": 3_000.0},
        volume={"BTC": 2.0, "ETH": 10.0},
        funding={"binance": {"BTC": 1e-5}},
        symbols=["BTC", "ETH", "SOL"],
    )
    assert panel.index[0] == pd.Timestamp("2024-03-01T08:00Z")
    np.testing.assert_array_equal(panel.quote_volume[0], [120_000.0, 30_000.0, np.nan])
    np.testing.assert_array_equal(panel.funding["binance"][0], [1e-5, np.nan, np.nan])


@pytest.mark.parametrize("bad", ["2024-03-01T08:30Z", "2024-03-01T08:00:00.001Z"])
def test_rows_must_be_whole_hours(bad: str) -> None:
    """A row stamp that is not a candle's open hour is refused with a clear message."""
    with pytest.raises(DataError, match="whole hour"):
        Panel.from_hour(bad, close={"BTC": 1.0}, volume={"BTC": 1.0})


def test_panel_checks_shapes() -> None:
    """Arrays that do not match (hours, symbols) are refused."""
    idx = pd.date_range(START, periods=3, freq="h", name="ts")
    with pytest.raises(DataError, match="shape"):
        Panel(idx, ("BTC",), np.ones((3, 1)), np.ones((3, 1)), np.ones((2, 1)))


def test_panel_rows_must_be_consecutive_whole_hours() -> None:
    """The core lags by rows, so a hand-made panel with a missing hour is refused (build_panel fills it)."""
    idx = pd.DatetimeIndex(["2024-03-01T00:00Z", "2024-03-01T02:00Z"], name="ts")
    with pytest.raises(DataError, match="consecutive"):
        Panel(idx, ("BTC",), np.ones((2, 1)), np.ones((2, 1)), np.ones((2, 1)))


def test_prepared_inputs_build_the_same_panel_as_frames() -> None:
    """The live daemon hands build_panel prepared arrays (``prepare``); the panel must be identical to
    the batch path's from frames, including the awkward inputs: unsorted rows, a duplicated hour (the
    later row wins), a NaN print that must not hide the previous one, a spot stand-in, an empty frame."""
    perp = candles(10, start=START + pd.Timedelta(hours=2), price=200.0)
    dup = perp.iloc[[3]].assign(close=999.0)
    messy = pd.concat([perp.iloc[::-1], dup])  # reversed, and hour 5 twice (999 arrives last)
    funding = prints(
        [
            "2024-03-01T08:00:00.004Z",
            "2024-03-01T00:00:00.000Z",
            "2024-03-01T04:00:00.000Z",
            "2024-03-01T04:30:00.000Z",
        ],
        [0.0003, 0.0001, 0.0002, np.nan],
    )
    oi = pd.DataFrame(
        {"open_interest": [5.0, 7.0]}, index=pd.date_range(START, periods=2, freq="4h", name="ts")
    )
    ohlcv = {"BTC": messy, "ETH": candles(0)}
    spot = {"BTC": candles(12, price=50.0)}
    args = dict(symbols=["BTC", "ETH", "XRP"], start=START, end=START + pd.Timedelta(hours=11))
    from_frames = build_panel(ohlcv, {"binance": {"BTC": funding}}, {"BTC": oi}, spot, **args)
    prepared = build_panel(
        {s: prepare("ohlcv", f) for s, f in ohlcv.items()},
        {"binance": {"BTC": prepare("funding", funding)}},
        {"BTC": prepare("open_interest", oi)},
        {s: prepare("spot_ohlcv", f) for s, f in spot.items()},
        **args,
    )
    assert from_frames.close[5, 0] == 999.0
    assert from_frames.stand_in is not None
    assert from_frames.stand_in[:2, 0].all()
    assert from_frames.funding["binance"][4, 0] == pytest.approx(0.0002 / 8)  # the NaN at 04:30 hides nothing
    for name in ("close", "volume", "quote_volume", "open_interest", "stand_in"):
        np.testing.assert_array_equal(getattr(prepared, name), getattr(from_frames, name), err_msg=name)
    np.testing.assert_array_equal(prepared.funding["binance"], from_frames.funding["binance"])
    assert prepared.index.equals(from_frames.index)


def test_prepare_names_an_unknown_dataset() -> None:
    with pytest.raises(DataError, match="unknown dataset 'trades'"):
        prepare("trades", candles(2))
