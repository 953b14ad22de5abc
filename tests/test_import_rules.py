"""The importer's rules on generated files: timezones, tz overrides, Binance's flat funding tail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskd.errors import DataError
from riskd.importer import ImportReport, import_path
from riskd.store import HistoryStore


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def load(root: Path) -> tuple[HistoryStore, ImportReport]:
    store = HistoryStore(root / "store")
    return store, import_path(root / "in", store, renames={}, progress=False)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_plus_three_file_lands_at_utc(tmp_path: Path) -> None:
    """Candle times written with +03:00 are stored three hours earlier, and the summary says so."""
    rows = [f"2024-03-19 {h:02d}:00:00+03:00,{100 + h},{102 + h},{99 + h},{101 + h},5" for h in range(3, 9)]
    write(tmp_path / "in/x/BTCUSDT_1h.csv", "open_time,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    store, report = load(tmp_path)
    got = store.read("ohlcv", "binance", "BTC")
    assert got.index[0] == ts("2024-03-19 00:00")
    assert got.loc[ts("2024-03-19 00:00"), "open"] == 103.0
    assert [tz for _, tz in report.tz_conversions] == ["+03:00 (file offset)"]


FUNDING_UTC3 = "Symbol,Date,Funding Rate\n" + "".join(
    f"BTC-USDT,2021-01-0{d} {h:02d}:00:00,0.0001\n" for d in (1, 2) for h in (3, 11, 19)
)


def test_naive_funding_off_the_settlement_hours_is_refused(tmp_path: Path) -> None:
    """8-hourly prints at 03/11/19 without a zone are not UTC: skipped with a reason that names the fix."""
    write(tmp_path / "in/data/BTC-USDT_bybit_funding.csv", FUNDING_UTC3)
    store, report = load(tmp_path)
    assert store.partitions() == []
    assert "not on 00/08/16 UTC" in report.skipped[0][1]
    assert "tz override" in report.skipped[0][1]


def test_a_tz_override_in_the_import_root_is_read(tmp_path: Path) -> None:
    """riskd-import.toml at the root gives the zone: the same prints land at 00/08/16 UTC on bybit."""
    write(tmp_path / "in/data/BTC-USDT_bybit_funding.csv", FUNDING_UTC3)
    write(tmp_path / "in/riskd-import.toml", '[[override]]\npath = "data/*bybit*.csv"\ntz = "+03:00"\n')
    store, report = load(tmp_path)
    got = store.read("funding", "bybit", "BTC")
    assert got.index[:3].tolist() == [ts("2021-01-01 00:00"), ts("2021-01-01 08:00"), ts("2021-01-01 16:00")]
    assert report.tz_conversions[0][1] == "+03:00 (override)"


def test_a_bad_override_file_is_one_error_naming_the_field(tmp_path: Path) -> None:
    """An override with an unknown zone stops the import with the file and the field named."""
    write(tmp_path / "in/riskd-import.toml", '[[override]]\npath = "*"\ntz = "Mars/Olympus"\n')
    with pytest.raises(DataError, match=r"override\[0\]\.tz"):
        load(tmp_path)


def funding_csv(path: Path, rates: np.ndarray, start: str = "2021-01-01") -> None:
    """Binance archive funding (calc_time, interval, rate) every 8 h from ``start``."""
    t0 = ts(start).value // 1_000_000
    lines = [f"{t0 + i * 8 * 3_600_000},8,{float(r)!r}" for i, r in enumerate(rates)]
    write(path, "calc_time,funding_interval_hours,last_funding_rate\n" + "\n".join(lines) + "\n")


def live(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(1e-4, 2e-4, n)


def test_a_planted_flat_tail_is_dropped(tmp_path: Path) -> None:
    """300 live prints then 270 flat 0.0001 prints (90 days): the tail is dropped and reported."""
    funding_csv(tmp_path / "in/MATICUSDT-fundingRate.csv", np.concatenate([live(300), np.full(270, 1e-4)]))
    store, report = load(tmp_path)
    got = store.read("funding", "binance", "MATIC")
    assert len(got) == 300
    assert got.index[-1] == ts("2021-01-01") + pd.Timedelta(hours=8 * 299)
    (run,) = report.flat_runs
    assert (run.symbol, run.rows, run.dropped) == ("MATIC", 270, True)
    assert report.flat_tail_rows == 270


@pytest.mark.parametrize(
    ("flat", "listed"),
    [(120, False), (270, True)],  # a 40-day live floor; a 90-day stretch (listed, still kept)
)
def test_a_flat_stretch_followed_by_real_prints_is_kept(tmp_path: Path, flat: int, listed: bool) -> None:
    """Flat 0.0001 prints followed by variation are live data: every print is stored."""
    rates = np.concatenate([live(100), np.full(flat, 1e-4), live(50, seed=1)])
    funding_csv(tmp_path / "in/ADAUSDT-fundingRate.csv", rates)
    store, report = load(tmp_path)
    assert len(store.read("funding", "binance", "ADA")) == len(rates)
    assert [r.dropped for r in report.flat_runs] == ([False] if listed else [])


def test_a_short_flat_tail_and_other_venues_are_kept(tmp_path: Path) -> None:
    """A 30-day flat end may just be a quiet month; Bybit's prints are never trimmed."""
    funding_csv(tmp_path / "in/ADAUSDT-fundingRate.csv", np.concatenate([live(100), np.full(90, 1e-4)]))
    funding_csv(
        tmp_path / "in/bybit/ETHUSDT-fundingRate.csv", np.concatenate([live(100), np.full(300, 1e-4)])
    )
    store, report = load(tmp_path)
    assert len(store.read("funding", "binance", "ADA")) == 190
    assert len(store.read("funding", "bybit", "ETH")) == 400
    assert report.flat_runs == []
