"""The Parquet history store: layout, validation, idempotency, atomicity, determinism, gaps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from riskd.errors import DataError
from riskd.store import HistoryStore, empty_frame, funding_gaps, grid_gaps

H = pd.Timedelta(hours=1)
REPO = Path(__file__).resolve().parents[1]


def hours(start: str, n: int, skip: tuple[int, ...] = ()) -> pd.DatetimeIndex:
    idx = pd.date_range(start, periods=n, freq="h", tz="UTC", name="ts")
    return idx.delete(list(skip)) if skip else idx


def candles(index: pd.DatetimeIndex, base: float = 100.0) -> pd.DataFrame:
    x = base + np.arange(len(index), dtype=float)
    cols = {
        "open": x,
        "high": x + 1,
        "low": x - 1,
        "close": x + 0.5,
        "volume": x * 10,
        "quote_volume": x * 1e3,
    }
    return pd.DataFrame(cols, index=index)


def funding(times: list[str], interval: float | list[float] = 8.0) -> pd.DataFrame:
    idx = pd.DatetimeIndex(pd.to_datetime(times, utc=True, format="ISO8601"), name="ts")
    rate = np.full(len(idx), 1e-4)
    iv = np.broadcast_to(np.asarray(interval, dtype=float), len(idx))
    cols = {
        "rate": rate,
        "interval_hours": iv,
        "interval_inferred": np.ones(len(idx), bool),
        "rate_per_hour": rate / iv,
    }
    return pd.DataFrame(cols, index=idx)


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(tmp_path / "store")


def test_roundtrip_keeps_values_columns_and_utc_index(store: HistoryStore) -> None:
    """What is appended is read back unchanged, indexed by a UTC ``ts``."""
    frame = candles(hours("2021-05-19", 5))
    assert store.append("ohlcv", "binance", "BTC", frame) == 5
    back = store.read("ohlcv", "binance", "BTC")
    pd.testing.assert_frame_equal(back, frame, check_index_type=False, check_freq=False)
    assert back.index.name == "ts"
    assert str(back.index.tz) == "UTC"
    assert list(back.columns) == list(empty_frame("ohlcv").columns)


def test_hive_layout_one_file_per_year(store: HistoryStore) -> None:
    """Rows are split into dataset=/venue=/symbol=/<year>.parquet files."""
    store.append("ohlcv", "binance", "BTC", candles(hours("2020-12-31 22:00", 4)))
    folder = store.root / "dataset=ohlcv" / "venue=binance" / "symbol=BTC"
    assert sorted(p.name for p in folder.iterdir()) == ["2020.parquet", "2021.parquet"]
    assert len(store.read("ohlcv", "binance", "BTC", start="2021-01-01")) == 2


def test_pyarrow_dataset_reads_the_store_unchanged(store: HistoryStore) -> None:
    """pyarrow.dataset with hive partitioning sees every row and the partition columns."""
    store.append("ohlcv", "binance", "BTC", candles(hours("2020-12-31 20:00", 10)))
    store.append("ohlcv", "binance", "ETH", candles(hours("2021-03-01", 3)))
    store.append("ohlcv", "bybit", "BTC", candles(hours("2021-03-01", 2)))
    table = ds.dataset(store.root, partitioning="hive").to_table(filter=ds.field("venue") == "binance")
    assert table.num_rows == 13
    assert {"dataset", "venue", "symbol", "ts", "close"} <= set(table.column_names)
    eth = table.filter(ds.field("symbol") == "ETH").to_pandas()
    assert eth["close"].tolist() == [100.5, 101.5, 102.5]


def test_append_twice_is_a_noop_that_touches_no_file(store: HistoryStore) -> None:
    """Writing the same hours again returns 0 and leaves the file as it was."""
    frame = candles(hours("2021-05-19", 24))
    store.append("ohlcv", "binance", "BTC", frame)
    path = next(store.root.rglob("2021.parquet"))
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    assert store.append("ohlcv", "binance", "BTC", frame) == 0
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


@pytest.mark.parametrize(
    ("second", "expected_count"),
    [
        (candles(hours("2021-05-19 03:00", 4), base=103.0), 2),  # 03,04 same; 05,06 new
        (candles(hours("2021-05-19 00:00", 2), base=1.0), 2),  # both replace existing hours
        (candles(hours("2021-05-18 23:00", 1)), 1),  # one new hour before
    ],
)
def test_append_counts_new_or_changed_rows(
    store: HistoryStore, second: pd.DataFrame, expected_count: int
) -> None:
    """The return value counts rows that were new or whose values changed, nothing else."""
    store.append("ohlcv", "binance", "BTC", candles(hours("2021-05-19", 5)))
    assert store.append("ohlcv", "binance", "BTC", second) == expected_count


def test_later_write_replaces_hour_and_last_duplicate_wins(store: HistoryStore) -> None:
    """A stored hour takes the newest value; inside one frame the last duplicate wins."""
    store.append("ohlcv", "binance", "BTC", candles(hours("2021-05-19", 3)))
    dup = pd.concat(
        [candles(hours("2021-05-19 01:00", 1), base=7.0), candles(hours("2021-05-19 01:00", 1), base=9.0)]
    )
    assert store.append("ohlcv", "binance", "BTC", dup) == 1
    back = store.read("ohlcv", "binance", "BTC")
    assert back["open"].tolist() == [100.0, 9.0, 102.0]


def test_funding_print_a_few_ms_late_is_the_same_print(store: HistoryStore) -> None:
    """Funding rows are matched to the minute, so a re-stamped print replaces, not duplicates."""
    store.append("funding", "binance", "BTC", funding(["2021-05-19 08:00:00.007"]))
    new = funding(["2021-05-19 08:00:00"])
    new = new.assign(rate=5e-4, rate_per_hour=5e-4 / 8)
    assert store.append("funding", "binance", "BTC", new) == 1
    back = store.read("funding", "binance", "BTC")
    assert back["rate"].tolist() == [5e-4]


def _bad(kind: str) -> pd.DataFrame:
    f = candles(hours("2021-05-19", 3))
    if kind == "naive":
        return f.tz_localize(None)
    if kind == "tz":
        return f.tz_convert("Europe/Berlin")
    if kind == "missing":
        return f.drop(columns="quote_volume")
    if kind == "extra":
        return f.assign(trades=1.0)
    if kind == "text":
        return f.assign(close=["a", "b", "c"])
    if kind == "half-hour":
        return f.set_axis(f.index + pd.Timedelta(minutes=30))
    if kind == "nan-price":
        return f.assign(close=[1.0, np.nan, 2.0])
    if kind == "index":
        return f.reset_index(drop=True)
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("naive", "tz-aware UTC"),
        ("tz", "tz-aware UTC"),
        ("missing", "missing ['quote_volume']"),
        ("extra", "unexpected ['trades']"),
        ("text", "'close' must be numeric"),
        ("half-hour", "whole hours"),
        ("nan-price", "'close' has missing values"),
        ("index", "DatetimeIndex"),
    ],
)
def test_append_rejects_frames_off_contract(store: HistoryStore, kind: str, message: str) -> None:
    """A frame off the data contract raises DataError naming the partition and the problem."""
    with pytest.raises(DataError) as err:
        store.append("ohlcv", "binance", "BTC", _bad(kind))
    assert "ohlcv/binance/BTC" in str(err.value)
    assert message in str(err.value)
    assert not store.root.exists() or not list(store.root.rglob("*.parquet"))


def test_funding_rate_per_hour_must_match_the_interval(store: HistoryStore) -> None:
    """rate_per_hour is rate / interval_hours (docs/data.md); a frame breaking that is refused."""
    bad = funding(["2021-05-19 00:00"]).assign(rate_per_hour=1e-4)
    with pytest.raises(DataError, match="rate_per_hour"):
        store.append("funding", "binance", "BTC", bad)


@pytest.mark.parametrize(("dataset", "symbol"), [("candles", "BTC"), ("ohlcv", "../etc"), ("ohlcv", "")])
def test_bad_names_are_refused(store: HistoryStore, dataset: str, symbol: str) -> None:
    """Unknown datasets and names that could escape the store root raise DataError."""
    with pytest.raises(DataError):
        store.append(dataset, "binance", symbol, candles(hours("2021-05-19", 1)))


def test_same_content_gives_identical_bytes(tmp_path: Path) -> None:
    """Two stores holding the same rows, written in different orders, are byte-identical."""
    frame = candles(hours("2021-12-31 12:00", 48))
    a, b = HistoryStore(tmp_path / "a"), HistoryStore(tmp_path / "b")
    a.append("ohlcv", "binance", "BTC", frame)
    b.append("ohlcv", "binance", "BTC", frame.iloc[30:])
    b.append("ohlcv", "binance", "BTC", frame.iloc[::-1].iloc[18:])
    files_a = sorted(p.relative_to(a.root) for p in a.root.rglob("*.parquet"))
    assert files_a == sorted(p.relative_to(b.root) for p in b.root.rglob("*.parquet"))
    assert all((a.root / p).read_bytes() == (b.root / p).read_bytes() for p in files_a)


def test_crash_during_write_keeps_old_file_and_leaves_no_temp(store: HistoryStore, monkeypatch) -> None:
    """An error after the temporary file is partly written leaves the old file intact, no temp left."""
    store.append("ohlcv", "binance", "BTC", candles(hours("2021-05-19", 24)))
    path = next(store.root.rglob("2021.parquet"))
    before = path.read_bytes()

    def crash(fd: int) -> None:
        assert os.fstat(fd).st_size > 0  # the temp file really holds a part of the new bytes
        raise OSError("disk gone")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk gone"):
        store.append("ohlcv", "binance", "BTC", candles(hours("2021-05-20", 24)))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["2021.parquet"]
    assert len(store.read("ohlcv", "binance", "BTC")) == 24


_KILLED_WRITER = """
import os, sys, time
import pandas as pd, numpy as np
import riskd.store.files as files
from riskd.store import HistoryStore
files._CHUNK = 256
real_write, calls = os.write, [0]
def stalled(fd, data):
    calls[0] += 1
    if calls[0] > 1:
        time.sleep(120)
    return real_write(fd, data)
os.write = stalled
idx = pd.date_range("2021-06-01", periods=2000, freq="h", tz="UTC", name="ts")
x = np.random.default_rng(1).random(len(idx))
frame = pd.DataFrame({c: x for c in ["open", "high", "low", "close", "volume", "quote_volume"]}, index=idx)
HistoryStore(sys.argv[1]).append("ohlcv", "binance", "BTC", frame)
"""


def test_killed_writer_never_leaves_a_half_file(store: HistoryStore) -> None:
    """SIGKILL mid-write: readers see the old year file; the stray temp is ignored, then swept."""
    old = candles(hours("2021-05-19", 24))
    store.append("ohlcv", "binance", "BTC", old)
    folder = store.root / "dataset=ohlcv" / "venue=binance" / "symbol=BTC"
    before = (folder / "2021.parquet").read_bytes()
    script = textwrap.dedent(_KILLED_WRITER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", script, str(store.root)], env=env)
    try:
        deadline = time.monotonic() + 20
        while not [p for p in folder.glob(".2021.parquet.*.tmp") if p.stat().st_size > 0]:
            assert proc.poll() is None, "the writer exited before it was killed"
            assert time.monotonic() < deadline, "the writer never started its temp file"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (folder / "2021.parquet").read_bytes() == before
    assert len(list(folder.glob(".*.tmp"))) == 1
    pd.testing.assert_frame_equal(
        store.read("ohlcv", "binance", "BTC"), old, check_index_type=False, check_freq=False
    )
    assert ds.dataset(store.root, partitioning="hive").count_rows() == 24
    store.append("ohlcv", "binance", "BTC", candles(hours("2021-05-20", 1)))
    assert not list(folder.glob(".*.tmp"))


def test_reads_are_half_open_and_edges_are_reported(store: HistoryStore) -> None:
    """read() keeps start <= ts < end; first_ts/last_ts/partitions/read_many describe what is stored."""
    store.append("ohlcv", "binance", "BTC", candles(hours("2021-05-19", 10)))
    store.append("funding", "binance", "ETH", funding(["2021-05-19 00:00", "2021-05-19 08:00"]))
    assert len(store.read("ohlcv", "binance", "BTC", "2021-05-19 02:00", "2021-05-19 05:00")) == 3
    assert store.first_ts("ohlcv", "binance", "BTC") == pd.Timestamp("2021-05-19", tz="UTC")
    assert store.last_ts("ohlcv", "binance", "BTC") == pd.Timestamp("2021-05-19 09:00", tz="UTC")
    assert store.last_ts("ohlcv", "binance", "XRP") is None
    assert store.partitions() == [("funding", "binance", "ETH"), ("ohlcv", "binance", "BTC")]
    assert store.partitions(dataset="ohlcv", venue="bybit") == []
    many = store.read_many("ohlcv", "binance", ["BTC", "XRP"], "2021-05-19 08:00", None)
    assert len(many["BTC"]) == 2
    assert many["XRP"].empty
    assert list(many["XRP"].columns) == list(empty_frame("ohlcv").columns)


def test_concurrent_writers_lose_nothing(store: HistoryStore) -> None:
    """Threads writing different partitions, and disjoint hours of one partition, keep every row."""
    jobs = [("BTC", i) for i in range(4)] + [(s, 0) for s in ("ETH", "XRP", "LTC")]

    def work(symbol: str, k: int) -> None:
        store.append(
            "ohlcv", "binance", symbol, candles(hours("2021-05-19", 500)[k * 100 : (k + 1) * 100 + 50])
        )

    threads = [threading.Thread(target=work, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.read("ohlcv", "binance", "BTC")) == 450
    assert all(len(store.read("ohlcv", "binance", s)) == 150 for s in ("ETH", "XRP", "LTC"))


@pytest.mark.parametrize(
    ("skip", "start", "end", "expected"),
    [
        ((), None, None, []),
        ((3,), None, None, [("03:00", "03:00")]),
        ((3, 4, 5, 8), None, None, [("03:00", "05:00"), ("08:00", "08:00")]),
        ((), "2021-05-18 22:00", "2021-05-19 12:00", [("-22:00", "-23:00"), ("10:00", "11:00")]),
        ((0, 1), "2021-05-19 00:00", None, [("00:00", "01:00")]),
    ],
)
def test_hourly_gaps_are_exact_runs(store: HistoryStore, skip, start, end, expected) -> None:
    """Missing hours come back as inclusive runs, against [first, last] or the given [start, end)."""
    store.append("ohlcv", "binance", "BTC", candles(hours("2021-05-19", 10, skip)))

    def at(t: str) -> pd.Timestamp:
        return pd.Timestamp(f"2021-05-18 {t[1:]}" if t.startswith("-") else f"2021-05-19 {t}", tz="UTC")

    got = store.gaps("ohlcv", "binance", "BTC", start=start, end=end)
    assert got == [(at(a), at(b)) for a, b in expected]


def test_grid_gaps_on_a_4h_grid_and_on_nothing() -> None:
    """A 4 h grid reports only missing 4 h points; an empty partition inside bounds is one run."""
    idx = pd.DatetimeIndex(pd.to_datetime(["2026-02-20 04:00", "2026-02-20 16:00"], utc=True))
    assert grid_gaps(idx, "4h") == [
        (pd.Timestamp("2026-02-20 08:00", tz="UTC"), pd.Timestamp("2026-02-20 12:00", tz="UTC"))
    ]
    empty = pd.DatetimeIndex([], tz="UTC")
    assert grid_gaps(empty, "1h", "2021-01-01", "2021-01-02") == [
        (pd.Timestamp("2021-01-01", tz="UTC"), pd.Timestamp("2021-01-01 23:00", tz="UTC"))
    ]
    assert grid_gaps(empty) == []


@pytest.mark.parametrize(
    ("times", "interval", "expected"),
    [
        (["00:00:00.004", "08:00:00.011", "16:00:00.000"], 8.0, []),
        (["00:00", "16:00"], 8.0, [("08:00", "08:00")]),
        (["00:00", "08:00", "12:00", "16:00", "20:00"], [8, 8, 4, 4, 4], []),  # 8 h -> 4 h
        (["00:00", "04:00", "12:00", "20:00"], [4, 4, 8, 8], []),  # 4 h -> 8 h
        (["00:00", "04:00", "16:00"], [4, 4, 4], [("08:00", "12:00")]),
    ],
)
def test_funding_gaps_follow_the_print_interval(times, interval, expected) -> None:
    """A print is missing only when the next comes later than its interval (ms offsets allowed)."""
    frame = funding([f"2021-05-19 {t}" for t in times], interval)
    got = funding_gaps(frame)
    assert got == [
        (pd.Timestamp(f"2021-05-19 {a}", tz="UTC"), pd.Timestamp(f"2021-05-19 {b}", tz="UTC"))
        for a, b in expected
    ]


def test_funding_gaps_within_bounds(store: HistoryStore) -> None:
    """With bounds, prints due before the first and after the last stored print are missing too."""
    store.append("funding", "binance", "BTC", funding(["2021-05-19 08:00:00.005", "2021-05-19 16:00"]))
    got = store.gaps("funding", "binance", "BTC", start="2021-05-18 16:00", end="2021-05-20 12:00")
    ts = [
        pd.Timestamp(t, tz="UTC")
        for t in ("2021-05-18 16:00", "2021-05-19 00:00", "2021-05-20 00:00", "2021-05-20 08:00")
    ]
    assert got == [(ts[0], ts[1]), (ts[2], ts[3])]
