"""The importer: every file layout, stitching of overlapping sources, skips, the CLI, the real sample."""

from __future__ import annotations

import argparse
import gzip
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskd.commands.data import cli_import
from riskd.config import Settings
from riskd.importer import import_path
from riskd.store import HistoryStore
from riskd.testing.sample import PERP_SYMBOLS, SPOT_SYMBOLS, load_sample_store, sample_dir

RENAMES = {"FTM": "S"}
T0 = pd.Timestamp("2021-05-19", tz="UTC")


def ft_candles(path: Path, n: int = 24, start: pd.Timestamp = T0, base: float = 100.0) -> pd.DataFrame:
    """Write a freqtrade-style feather file of hourly candles; return what was written."""
    x = base + np.arange(n, dtype=float)
    date = pd.date_range(start, periods=n, freq="h").as_unit("ms")
    df = pd.DataFrame({"date": date, "open": x, "high": x + 2, "low": x - 2, "close": x + 1, "volume": x * 3})
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_feather(path)
    return df


def ft_funding(path: Path, times: list[str], rate: float = 1e-4) -> None:
    """Write a freqtrade funding feather: the rate in ``open``, other columns zero."""
    date = pd.to_datetime(times, utc=True, format="ISO8601").as_unit("ms")
    zero = np.zeros(len(date))
    df = pd.DataFrame({"date": date, "open": rate, "high": zero, "low": zero, "close": zero, "volume": zero})
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_feather(path)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.strip().replace("\n        ", "\n") + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data.encode(), mtime=0))
    elif path.suffix == ".zip":  # data.binance.vision ships one CSV per zip
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(path.stem + ".csv", data)
    else:
        path.write_text(data)
    return path


def ms(ts: str) -> int:
    return pd.Timestamp(ts, tz="UTC").value // 1_000_000


def kline_rows(n: int, unit: int = 1) -> str:
    """Binance bulk kline lines (12 columns) from T0, ``unit`` 1 for ms, 1000 for µs."""
    out = []
    for i in range(n):
        t = (ms("2021-05-19") + i * 3_600_000) * unit
        p = 100 + i
        out.append(f"{t},{p},{p + 2},{p - 2},{p + 1},{p * 3},{t + 3_599_999 * unit},{p * 300},42,1,2,0")
    return "\n".join(out)


def run(tmp_path: Path, src: Path | None = None) -> tuple[HistoryStore, object]:
    store = HistoryStore(tmp_path / "store")
    return store, import_path(src or tmp_path / "in", store, renames=RENAMES, progress=False)


@pytest.mark.parametrize(
    ("name", "dataset", "symbol"),
    [
        ("binance/futures/BTC_USDT_USDT-1h-futures.feather", "ohlcv", "BTC"),
        ("binance/futures/ETH_USDT_USDT-1h-mark.feather", "mark_ohlcv", "ETH"),
        ("binance/XRP_USDT-1h.feather", "spot_ohlcv", "XRP"),
        ("binance/spot/SOL_USDT-1h.feather", "spot_ohlcv", "SOL"),
        ("somewhere/else/S_USDT_USDT-1h-futures.feather", "ohlcv", "FTM"),
    ],
)
def test_freqtrade_candles_land_in_their_dataset(
    tmp_path: Path, name: str, dataset: str, symbol: str
) -> None:
    """Freqtrade names decide perp/mark/spot, whatever the folder; renamed assets keep the old name."""
    written = ft_candles(tmp_path / "in" / name)
    store, report = run(tmp_path)
    assert store.partitions() == [(dataset, "binance", symbol)]
    got = store.read(dataset, "binance", symbol)
    assert got["close"].tolist() == written["close"].tolist()
    assert got["quote_volume"].isna().all()
    assert report.series[0].rows == 24


def test_freqtrade_funding_rate_in_open_with_inferred_interval(tmp_path: Path) -> None:
    """The rate comes from ``open``, the interval from the spacing, ms offsets are kept."""
    times = ["2021-05-19 00:00:00.004", "2021-05-19 08:00:00.011", "2021-05-19 16:00", "2021-05-20 00:00"]
    ft_funding(tmp_path / "in/binance/futures/BTC_USDT_USDT-8h-funding_rate.feather", times, rate=3e-4)
    store, _ = run(tmp_path)
    got = store.read("funding", "binance", "BTC")
    assert got.index[1] == pd.Timestamp("2021-05-19 08:00:00.011", tz="UTC")
    assert got["rate"].tolist() == [3e-4] * 4
    assert got["interval_hours"].tolist() == [8.0] * 4
    assert got["interval_inferred"].all()
    assert np.allclose(got["rate_per_hour"], 3e-4 / 8)


def test_gravestone_csvs_ohlcv_funding_and_open_interest(tmp_path: Path) -> None:
    """gravestone 1h (quote volume kept), funding and 4h/1d open interest are all imported."""
    write(
        tmp_path / "in/1h/BTCUSDT.csv.gz",
        f"""timestamp,open,high,low,close,volume,quote_volume,trades,close_time
        {ms("2021-05-19 00:00")},10,12,9,11,5,55.5,7,{ms("2021-05-19 00:59:59.999")}
        {ms("2021-05-19 01:00")},11,13,10,12,6,66.5,8,{ms("2021-05-19 01:59:59.999")}""",
    )
    write(
        tmp_path / "in/funding/BTCUSDT.csv",
        f"""timestamp,symbol,funding_rate
        {ms("2021-05-19 00:00")},BTCUSDT,0.0001
        {ms("2021-05-19 08:00") + 7},BTCUSDT,-0.0002""",
    )
    oi4 = "\n".join(f"{ms('2021-05-19') + i * 4 * 3_600_000},BTCUSDT,{100 + i},{1000 + i}" for i in range(7))
    write(
        tmp_path / "in/oi_4h/BTCUSDT.csv",
        "timestamp,symbol,sum_open_interest,sum_open_interest_value\n" + oi4,
    )
    # two days before the 4 h series, then two instants it also covers, with the same values
    daily_rows = [("2021-05-17", 90), ("2021-05-18", 91), ("2021-05-19", 100), ("2021-05-20", 106)]
    oi1d = "\n".join(f"{ms(d)},BTCUSDT,{v},{v + 900}" for d, v in daily_rows)
    write(
        tmp_path / "in/oi_1d/BTCUSDT.csv",
        "timestamp,symbol,sum_open_interest,sum_open_interest_value\n" + oi1d,
    )
    store, report = run(tmp_path)
    ohlcv = store.read("ohlcv", "binance", "BTC")
    assert ohlcv["quote_volume"].tolist() == [55.5, 66.5]
    fund = store.read("funding", "binance", "BTC")
    assert fund["rate"].tolist() == [1e-4, -2e-4]
    oi = store.read("open_interest", "binance", "BTC")
    daily = [pd.Timestamp(d, tz="UTC") for d in ("2021-05-17", "2021-05-18")]
    assert oi.index[:2].tolist() == daily  # 1 d rows only where no 4 h series
    assert len(oi) == 2 + 7
    oi_report = next(s for s in report.series if s.dataset == "open_interest")
    assert (oi_report.overlap_rows, oi_report.disagreeing) == (2, 0)


@pytest.mark.parametrize(
    ("rel", "header", "unit", "dataset"),
    [
        ("futures/um/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2021-05.csv", True, 1, "ohlcv"),
        ("futures/um/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2021-05.csv", False, 1, "ohlcv"),
        ("spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2021-05.csv", False, 1000, "spot_ohlcv"),
        ("spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2021-05.zip", False, 1, "spot_ohlcv"),
        ("futures/um/monthly/markPriceKlines/BTCUSDT/1h/BTCUSDT-1h-2021-05.csv", True, 1, "mark_ohlcv"),
    ],
)
def test_binance_bulk_klines(tmp_path: Path, rel: str, header: bool, unit: int, dataset: str) -> None:
    """data.binance.vision klines load with or without header, in ms or µs, with quote volume."""
    head = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
    head += "taker_buy_quote_volume,ignore\n"
    write(tmp_path / "in" / rel, (head if header else "") + kline_rows(3, unit))
    store, _ = run(tmp_path)
    got = store.read(dataset, "binance", "BTC")
    assert got.index[0] == T0
    assert got["close"].tolist() == [101.0, 102.0, 103.0]
    assert got["quote_volume"].tolist() == [30000.0, 30300.0, 30600.0]


def test_binance_bulk_funding_reports_its_interval(tmp_path: Path) -> None:
    """The bulk funding CSV's interval is taken as reported (interval_inferred False)."""
    write(
        tmp_path / "in/BTCUSDT-fundingRate-2021-05.csv",
        f"""calc_time,funding_interval_hours,last_funding_rate
        {ms("2021-05-19 00:00") + 3},4,0.0004
        {ms("2021-05-19 04:00")},4,0.0002""",
    )
    store, _ = run(tmp_path)
    got = store.read("funding", "binance", "BTC")
    assert got["interval_hours"].tolist() == [4.0, 4.0]
    assert not got["interval_inferred"].any()
    assert got["rate_per_hour"].tolist() == [1e-4, 5e-5]


def test_overlaps_are_checked_and_the_latest_ending_file_wins(tmp_path: Path) -> None:
    """Overlapping files are compared row by row; disagreements are counted; the later file wins."""
    old = ft_candles(tmp_path / "in/repo_a/binance/futures/BTC_USDT_USDT-1h-futures.feather", n=30)
    new = old.iloc[10:].copy()
    later = {
        "date": [T0 + pd.Timedelta(hours=30)],
        **{c: 1.0 for c in ("open", "high", "low", "close", "volume")},
    }
    new = pd.concat([new, pd.DataFrame(later)], ignore_index=True)
    new.loc[new.index[0], "close"] *= 1 + 1e-6  # a price that disagrees
    new.loc[new.index[1], "volume"] *= 1 + 1e-8  # a volume revision within tolerance
    path_b = tmp_path / "in/repo_b/binance/futures/BTC_USDT_USDT-1h-futures.feather"
    path_b.parent.mkdir(parents=True)
    new.to_feather(path_b)
    store, report = run(tmp_path)
    s = report.series[0]
    assert s.sources[0] == path_b
    assert (s.overlap_rows, s.agreeing, s.disagreeing) == (20, 19, 1)
    d = s.disagreements[0]
    assert d.columns == ("close",)
    assert d.first_ts == T0 + pd.Timedelta(hours=10)
    got = store.read("ohlcv", "binance", "BTC")
    assert len(got) == 31
    assert got["close"].iloc[10] == new["close"].iloc[0]  # the winner's value is stored


def test_quote_volume_is_filled_from_an_agreeing_source(tmp_path: Path) -> None:
    """Freqtrade lacks quote volume; a CSV that agrees on the hour supplies it, perp stays apart from spot."""
    ft_candles(tmp_path / "in/binance/futures/BTC_USDT_USDT-1h-futures.feather", n=48)
    ft_candles(tmp_path / "in/binance/BTC_USDT-1h.feather", n=48, base=50.0)
    write(
        tmp_path / "in/1h/BTCUSDT.csv",
        f"""timestamp,open,high,low,close,volume,quote_volume
        {ms("2021-05-19 00:00")},100,102,98,101,300,12345""",
    )
    store, report = run(tmp_path)
    perp = store.read("ohlcv", "binance", "BTC")
    assert perp["quote_volume"].iloc[0] == 12345
    assert perp["quote_volume"].iloc[1:].isna().all()
    assert store.read("spot_ohlcv", "binance", "BTC")["open"].iloc[0] == 50.0
    assert report.disagreeing == 0


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("binance/futures/BTC_USDT_USDT-5m-futures.feather", None, "named 5m but the rows are 1h apart"),
        ("binance/BTC_BUSD-1h.feather", None, "USDT"),
        ("binance/futures/BTC_USDT_USDT-1h-futures.feather", b"not a feather file", "unreadable"),
        ("notes.feather", None, "is not quoted in USDT"),
        ("x/ETHUSDT.csv", "a,b,c\n1,2,3\n", "unrecognised columns"),
        ("x/ETHUSDT-1h-2021-05.csv", "1,2,3\n", "headerless"),
        ("x/ETHUSDT-1h-2021-05.csv", "", "unreadable"),
    ],
)
def test_bad_files_are_skipped_with_a_reason(tmp_path: Path, name: str, content, reason: str) -> None:
    """A file that cannot be imported is skipped and named with the reason; the good file still lands."""
    ft_candles(tmp_path / "in/binance/futures/ETH_USDT_USDT-1h-futures.feather")
    bad = tmp_path / "in" / name
    if content is None:
        ft_candles(bad)
    else:
        bad.parent.mkdir(parents=True, exist_ok=True)
        bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    store, report = run(tmp_path)
    assert [p for p, _ in report.skipped] == [bad]
    assert reason in report.skipped[0][1]
    assert ("ohlcv", "binance", "ETH") in store.partitions()


def test_reimport_is_idempotent(tmp_path: Path) -> None:
    """Importing the same files twice writes nothing the second time."""
    ft_candles(tmp_path / "in/binance/futures/BTC_USDT_USDT-1h-futures.feather")
    ft_funding(
        tmp_path / "in/binance/futures/BTC_USDT_USDT-8h-funding_rate.feather",
        ["2021-05-19", "2021-05-19 08:00"],
    )
    _, first = run(tmp_path)
    _, second = run(tmp_path)
    assert first.rows_written == 26
    assert second.rows_written == 0


@pytest.mark.parametrize(
    ("spacing", "expected"),
    [
        ([8, 16, 8], [8, 8, 8, 8]),  # a missing print is a gap, not a 16 h interval
        ([8, 8, 4, 4], [8, 8, 8, 4, 4]),  # the print at the switch settles the last 8 h period
        ([2, 2], [2, 2, 2]),
        ([], [8]),  # a lone print: Binance's usual 8 h
    ],
)
def test_funding_intervals_are_inferred_from_the_spacing_of_prints(
    tmp_path: Path, spacing: list[int], expected: list[int]
) -> None:
    """Each print's interval is the standard spacing before it, else the one carried over."""
    t = T0 + pd.to_timedelta(np.concatenate([[0], np.cumsum(spacing)]), unit="h")
    ft_funding(
        tmp_path / "in/binance/futures/BTC_USDT_USDT-8h-funding_rate.feather", [x.isoformat() for x in t]
    )
    store, _ = run(tmp_path)
    assert store.read("funding", "binance", "BTC")["interval_hours"].tolist() == expected


def test_cli_import_prints_a_summary_and_sets_the_exit_status(tmp_path: Path, capsys) -> None:
    """The command imports into settings.store_dir, prints the table, exits 1 on an empty folder."""
    ft_candles(tmp_path / "in/binance/futures/BTC_USDT_USDT-1h-futures.feather")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/README.md").write_text("nothing here")
    settings = Settings(data_dir=tmp_path / "data")
    assert cli_import(settings, argparse.Namespace(path=str(tmp_path / "in"), no_progress=True)) == 0
    out = capsys.readouterr().out
    assert "ohlcv" in out
    assert "BTC" in out
    assert HistoryStore(settings.store_dir).partitions() == [("ohlcv", "binance", "BTC")]
    assert cli_import(settings, argparse.Namespace(path=str(tmp_path / "empty"), no_progress=True)) == 1
    assert "nothing importable" in capsys.readouterr().err


def test_the_bundled_sample_imports_cleanly_and_holds_the_may_2021_crash(tmp_path: Path) -> None:
    """The real sample loads into perp, funding and spot datasets and shows BTC's 2021-05-19 crash."""
    store = load_sample_store(tmp_path / "store")
    parts = set(store.partitions())
    assert {("ohlcv", "binance", s) for s in PERP_SYMBOLS} <= parts
    assert {("funding", "binance", s) for s in PERP_SYMBOLS} <= parts
    assert {("spot_ohlcv", "binance", s) for s in SPOT_SYMBOLS} <= parts
    btc = store.read("ohlcv", "binance", "BTC")
    assert (btc.index.min(), btc.index.max(), len(btc)) == (
        pd.Timestamp("2021-04-20", tz="UTC"),
        pd.Timestamp("2021-06-10 23:00", tz="UTC"),
        1248,
    )
    day = btc.loc["2021-05-19"]
    assert day["low"].min() / day["open"].iloc[0] < 0.7  # 42,882.54 down to 28,688.00 (-33%)
    assert len(store.read("funding", "binance", "ETH")) == 156
    assert sample_dir().name == "sample_2021_05"


def test_sample_imports_give_byte_identical_stores(tmp_path: Path) -> None:
    """Two imports of the same files produce the same bytes, file by file."""
    a = load_sample_store(tmp_path / "a")
    b = load_sample_store(tmp_path / "b")
    files = sorted(p.relative_to(a.root) for p in a.root.rglob("*.parquet"))
    assert files == sorted(p.relative_to(b.root) for p in b.root.rglob("*.parquet"))
    assert all((a.root / f).read_bytes() == (b.root / f).read_bytes() for f in files)
