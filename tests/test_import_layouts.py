"""Every market-data layout of the shared data, on small real cuts (tests/data/layouts, README.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from riskd.importer import ImportReport, import_path
from riskd.importer.layouts import GAP_FILL
from riskd.store import HistoryStore

LAYOUTS = Path(__file__).parent / "data" / "layouts"
RENAMES = {"FTM": "S"}


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def load(src: Path, root: Path) -> tuple[HistoryStore, ImportReport]:
    store = HistoryStore(root / "store")
    return store, import_path(src, store, renames=RENAMES, progress=False)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[HistoryStore, ImportReport]:
    """All the layout samples imported together, as ``riskd data import`` would."""
    return load(LAYOUTS, tmp_path_factory.mktemp("layouts"))


@pytest.mark.parametrize(
    ("rel", "dataset", "venue", "symbol", "rows"),
    [
        ("silertrades_gravestone/4h/BTCUSDT.csv.gz", "ohlcv_4h", "binance", "BTC", 12),
        ("silertrades_gravestone/1d/BTCUSDT.csv.gz", "ohlcv_1d", "binance", "BTC", 12),
        ("yagokhan_varanus/1h/SOLUSDT_1h.parquet", "ohlcv", "binance", "SOL", 12),
        ("emanuelgoldman_datareport/1h/SOLUSDT_1h.csv.gz", "ohlcv", "binance", "SOL", 18),
        (
            "catman77_cyft/binance/futures/BTC_USDT_USDT-5m-futures.feather.gz",
            "ohlcv_5m",
            "binance",
            "BTC",
            24,
        ),
        ("trickbaker_ftrepos/binance/futures/BTC_USDT-5m-futures.json.gz", "ohlcv_5m", "binance", "BTC", 24),
        ("iterativv_nfi_5m/binance/BTC_USDT-5m.json.gz", "spot_ohlcv_5m", "binance", "BTC", 23),
        ("satsushi_infovis/BTCUSDT-5m-2021-09.csv.gz", "spot_ohlcv_5m", "binance", "BTC", 24),
        ("tooyipjee_freqtrade/binance/BTC_USDT-1m.json.gz", "spot_ohlcv_1m", "binance", "BTC", 60),
        ("mintanam_ftrade/binance/ETH_USDT-1m.feather.gz", "spot_ohlcv_1m", "binance", "ETH", 60),
        (
            "mohsenjfar_trade/bybit/futures/BTC_USDT_USDT-1h-funding_rate.feather",
            "funding",
            "bybit",
            "BTC",
            12,
        ),
        (
            "supervik_funding/BTC-USDT_bybit_2021-01-01_2024-01-01_funding_history.csv",
            "funding",
            "bybit",
            "BTC",
            12,
        ),
        (
            "hippocritical_hyperliquid/hyperliquid/futures/kPEPE_USDC_USDC-1h-funding_rate.feather",
            "funding",
            "hyperliquid",
            "1000PEPE",
            24,
        ),
        ("hyperliquid_histdata/liquidations.csv", "liquidations", "hyperliquid", "ALL", 58),
    ],
)
def test_each_layout_lands_in_its_dataset(
    tmp_path: Path, rel: str, dataset: str, venue: str, symbol: str, rows: int
) -> None:
    """A file of each layout, imported alone with its folders, becomes one series of the right dataset."""
    dst = tmp_path / "in" / rel
    dst.parent.mkdir(parents=True)
    shutil.copy(LAYOUTS / rel, dst)
    store, report = load(tmp_path / "in", tmp_path)
    assert report.skipped == []
    assert store.partitions() == [(dataset, venue, symbol)]
    assert len(store.read(dataset, venue, symbol)) == rows


def test_nothing_is_skipped_and_every_series_is_there(imported: tuple[HistoryStore, ImportReport]) -> None:
    """All samples import together: no file skipped, funding per venue, candles per timeframe."""
    store, report = imported
    assert report.skipped == []
    assert report.files_imported == report.files_seen
    assert set(store.partitions()) == {
        ("funding", "binance", "BTC"),
        ("funding", "bybit", "BTC"),
        ("funding", "hyperliquid", "BTC"),
        ("funding", "hyperliquid", "1000PEPE"),
        ("ohlcv", "binance", "SOL"),
        ("ohlcv_4h", "binance", "BTC"),
        ("ohlcv_1d", "binance", "BTC"),
        ("ohlcv_5m", "binance", "BTC"),
        ("spot_ohlcv_5m", "binance", "BTC"),
        ("spot_ohlcv_1m", "binance", "BTC"),
        ("spot_ohlcv_1m", "binance", "ETH"),
        ("liquidations", "hyperliquid", "ALL"),
    }


def test_long_format_funding_splits_by_venue_and_leaves_usdc_margined_rows_out(
    imported: tuple[HistoryStore, ImportReport],
) -> None:
    """zushen168's parquet: one series per venue symbol with its reported interval; USDC perps counted out."""
    store, report = imported
    hl = store.read("funding", "hyperliquid", "BTC")
    assert len(hl) == 12
    assert (hl["interval_hours"] == 1.0).all()
    assert not hl["interval_inferred"].any()
    assert report.dropped_rows["binance funding rows of non-USDT contracts"] == 12
    assert report.dropped_rows["bybit funding rows of non-USDT contracts"] == 12


def test_bybit_funding_from_three_layouts_agrees_and_lands_at_utc(
    imported: tuple[HistoryStore, ImportReport],
) -> None:
    """supervik's UTC+3 dates are shifted to 00/08/16 UTC by the built-in override; no disagreement."""
    store, report = imported
    bybit = store.read("funding", "bybit", "BTC")
    assert bybit.loc[ts("2021-01-01 00:00"), "rate"] == pytest.approx(0.000347, rel=1e-2)
    assert set(bybit.index.round("min").hour) <= {0, 8, 16}
    series = next(s for s in report.series if (s.dataset, s.venue) == ("funding", "bybit"))
    assert series.disagreeing == 0
    assert any("+03:00 (override)" in tz for _, tz in report.tz_conversions)


def test_per_row_offsets_convert_across_a_summer_time_change(
    imported: tuple[HistoryStore, ImportReport],
) -> None:
    """emanuelgoldman's +03:00 then +02:00 times are consecutive UTC hours (01:00+03 and 01:00+02 differ)."""
    store, report = imported
    sol = store.read("ohlcv", "binance", "SOL", end="2021-01-01")
    assert len(sol) == 18
    assert (sol.index.to_series().diff().dropna() == pd.Timedelta(hours=1)).all()
    assert ts("2020-10-24 22:00") in sol.index
    assert ts("2020-10-24 23:00") in sol.index
    assert any(tz.startswith("+02:00/+03:00") for _, tz in report.tz_conversions)


def test_minute_gap_fill_bars_are_left_out(imported: tuple[HistoryStore, ImportReport]) -> None:
    """NFI's zero-volume flat bar of 2021-01-11 08:05 is a freqtrade fill, not a trade: not stored, counted."""
    store, report = imported
    spot = store.read("spot_ohlcv_5m", "binance", "BTC", "2021-01-11", "2021-01-12")
    assert ts("2021-01-11 08:00") in spot.index
    assert ts("2021-01-11 08:10") in spot.index
    assert ts("2021-01-11 08:05") not in spot.index
    assert report.dropped_rows[GAP_FILL] == 1


def test_timeframes_stay_apart(imported: tuple[HistoryStore, ImportReport]) -> None:
    """4 h and 1 d bars keep their own datasets and values; hourly ohlcv of BTC gets none of them."""
    store, _ = imported
    four = store.read("ohlcv_4h", "binance", "BTC")
    assert four.index[0] == ts("2024-02-28 20:00")
    assert four.iloc[0][["open", "close", "quote_volume"]].tolist() == pytest.approx(
        [61032.8, 62487.9, 6.326076e9]
    )
    assert (four.index.to_series().diff().dropna() == pd.Timedelta(hours=4)).all()
    assert ("ohlcv", "binance", "BTC") not in store.partitions()


def test_layout_is_recognised_by_content_not_folder(tmp_path: Path) -> None:
    """A gravestone 4 h file moved to a neutral folder is still 4 h bars (its spacing says so)."""
    dst = tmp_path / "in/somewhere/BTCUSDT.csv.gz"
    dst.parent.mkdir(parents=True)
    shutil.copy(LAYOUTS / "silertrades_gravestone/4h/BTCUSDT.csv.gz", dst)
    store, _report = load(tmp_path / "in", tmp_path)
    assert store.partitions() == [("ohlcv_4h", "binance", "BTC")]


def test_liquidations_are_summed_per_minute(imported: tuple[HistoryStore, ImportReport]) -> None:
    """Hyperliquid's 61 liquidations (no coin) become per-minute totals; none is lost."""
    store, _ = imported
    liq = store.read("liquidations", "hyperliquid", "ALL")
    src = pd.read_csv(LAYOUTS / "hyperliquid_histdata/liquidations.csv")
    assert liq["events"].sum() == len(src) == 61
    assert liq["notional_usd"].sum() == pytest.approx(src["liquidated_ntl_pos"].sum())
