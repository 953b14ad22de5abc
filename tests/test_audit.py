"""The gap audit: planted gaps reported exactly, on synthetic partitions and on the real sample."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskd.commands.data import cli_audit
from riskd.config import Settings
from riskd.store import HistoryStore
from riskd.store.audit import audit, gaps
from riskd.testing.sample import load_sample_store


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def candles(index: pd.DatetimeIndex) -> pd.DataFrame:
    x = np.linspace(100, 200, len(index))
    return pd.DataFrame(
        {c: x for c in ("open", "high", "low", "close", "volume", "quote_volume")}, index=index
    )


def planted(root: Path) -> HistoryStore:
    """A store with known holes: ohlcv BTC (3 h + 1 h), funding BTC (2 prints), OI ETH on 4 h (one point)."""
    store = HistoryStore(root)
    idx = pd.date_range("2021-05-18", periods=72, freq="h", tz="UTC", name="ts")
    store.append("ohlcv", "binance", "BTC", candles(idx.delete([10, 11, 12, 40])))
    store.append("ohlcv", "bybit", "BTC", candles(idx))
    prints = pd.date_range("2021-05-18", periods=10, freq="8h", tz="UTC", name="ts").delete([3, 4])
    rate = np.full(len(prints), 1e-4)
    store.append(
        "funding",
        "binance",
        "BTC",
        pd.DataFrame(
            {"rate": rate, "interval_hours": 8.0, "interval_inferred": True, "rate_per_hour": rate / 8},
            index=prints,
        ),
    )
    oi_idx = pd.date_range("2026-02-20", periods=12, freq="4h", tz="UTC", name="ts").delete([5])
    store.append(
        "open_interest",
        "binance",
        "ETH",
        pd.DataFrame({"open_interest": 1.0, "open_interest_value": 2.0}, index=oi_idx),
    )
    return store


def test_audit_reports_planted_gaps_exactly(tmp_path: Path) -> None:
    """Each partition's rows, missing hours, gap count and largest gap match what was left out."""
    frame = audit(planted(tmp_path)).set_index(["dataset", "venue", "symbol"])
    expected = {
        ("ohlcv", "binance", "BTC"): (68, "1h", 4, 4, 2, pd.Timedelta(hours=3)),
        ("ohlcv", "bybit", "BTC"): (72, "1h", 0, 0, 0, pd.Timedelta(0)),
        ("funding", "binance", "BTC"): (8, "print", 2, 16, 1, pd.Timedelta(hours=16)),
        ("open_interest", "binance", "ETH"): (11, "4h", 1, 4, 1, pd.Timedelta(hours=4)),
    }
    cols = ["rows", "step", "missing", "missing_hours", "gap_count", "largest_gap"]
    assert {k: tuple(frame.loc[k, cols]) for k in expected} == expected
    assert frame.loc[("ohlcv", "binance", "BTC"), "first"] == ts("2021-05-18")
    assert frame.loc[("ohlcv", "binance", "BTC"), "last"] == ts("2021-05-20 23:00")


def test_gap_detail_lists_every_run(tmp_path: Path) -> None:
    """The detail frame holds each run with its inclusive bounds and size."""
    detail = gaps(planted(tmp_path), venue="binance")
    runs = [
        tuple(r) for r in detail[["dataset", "symbol", "first_missing", "last_missing", "missing"]].to_numpy()
    ]
    assert runs == [
        ("funding", "BTC", ts("2021-05-19 00:00"), ts("2021-05-19 08:00"), 2),
        ("ohlcv", "BTC", ts("2021-05-18 10:00"), ts("2021-05-18 12:00"), 3),
        ("ohlcv", "BTC", ts("2021-05-19 16:00"), ts("2021-05-19 16:00"), 1),
        ("open_interest", "ETH", ts("2026-02-20 20:00"), ts("2026-02-20 20:00"), 1),
    ]


@pytest.mark.parametrize(
    ("where", "partitions"),
    [
        ({"dataset": "ohlcv"}, 2),
        ({"venue": "bybit"}, 1),
        ({"symbols": ["eth"]}, 1),
        ({"dataset": "mark_ohlcv"}, 0),
    ],
)
def test_audit_filters(tmp_path: Path, where: dict, partitions: int) -> None:
    """dataset, venue and symbols narrow the audit to the matching partitions."""
    assert len(audit(planted(tmp_path), **where)) == partitions


def test_real_sample_spot_outages_are_found(tmp_path: Path) -> None:
    """The sample's spot outages (2021-04-20 02-03 h, 2021-04-25 05-07 h) are reported; perps are whole."""
    store = load_sample_store(tmp_path / "store")
    frame = audit(store).set_index(["dataset", "symbol"])
    assert frame.loc[("spot_ohlcv", "SOL"), "missing_hours"] == 5
    assert frame.loc[("spot_ohlcv", "SOL"), "largest_gap"] == pd.Timedelta(hours=3)
    assert (frame.loc["ohlcv", "missing_hours"] == 0).all()
    assert (frame.loc["funding", "missing_hours"] == 0).all()
    runs = gaps(store, dataset="spot_ohlcv", symbols=["SOL"])
    assert list(zip(runs["first_missing"], runs["last_missing"], strict=True)) == [
        (ts("2021-04-20 02:00"), ts("2021-04-20 03:00")),
        (ts("2021-04-25 05:00"), ts("2021-04-25 07:00")),
    ]


def _args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**{"dataset": None, "venue": None, "symbols": None, "json": False, **kw})


def test_cli_audit_json_lists_each_gap_run(tmp_path: Path, capsys) -> None:
    """--json prints every partition with every gap run; the table names the partitions."""
    settings = Settings(data_dir=tmp_path)
    planted(settings.store_dir)
    assert cli_audit(settings, _args(json=True, dataset="ohlcv", venue="binance")) == 0
    data = json.loads(capsys.readouterr().out)
    (part,) = data["partitions"]
    assert part["missing_hours"] == 4
    assert part["largest_gap_hours"] == 3.0
    assert [(g["first_missing"], g["missing"]) for g in part["gaps"]] == [
        ("2021-05-18T10:00:00+00:00", 3),
        ("2021-05-19T16:00:00+00:00", 1),
    ]
    assert cli_audit(settings, _args()) == 0
    out = capsys.readouterr().out
    assert "open_interest" in out
    assert "funding" in out


def test_cli_audit_of_an_empty_store_fails(tmp_path: Path, capsys) -> None:
    """Nothing to audit is exit status 1 with a message, not an empty table."""
    assert cli_audit(Settings(data_dir=tmp_path), _args()) == 1
    assert "no matching partitions" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("dataset", "freq", "step"),
    [
        ("ohlcv_5m", "5min", "5m"),
        ("spot_ohlcv_1m", "1min", "1m"),
        ("ohlcv_4h", "4h", "4h"),
        ("ohlcv_1d", "1D", "24h"),
    ],
)
def test_timeframe_datasets_are_audited_at_their_own_step(
    tmp_path: Path, dataset: str, freq: str, step: str
) -> None:
    """A bar missing from a 5m/1m/4h/1d series is one missing bar at that step, not hours of holes."""
    store = HistoryStore(tmp_path)
    idx = pd.date_range("2022-06-13", periods=50, freq=freq, tz="UTC", name="ts")
    store.append(dataset, "binance", "BTC", candles(idx.delete([7, 8])))
    row = audit(store).iloc[0]
    assert (row["step"], row["missing"], row["gap_count"]) == (step, 2, 1)
    assert row["largest_gap"] == 2 * pd.Timedelta(freq)
    run = gaps(store).iloc[0]
    assert (run["first_missing"], run["last_missing"]) == (idx[7], idx[8])


def test_liquidation_events_have_no_missing_rows(tmp_path: Path) -> None:
    """Events come when they happen: an event dataset is listed with no gaps."""
    store = HistoryStore(tmp_path)
    idx = pd.DatetimeIndex([ts("2023-03-01 10:00"), ts("2023-03-05 11:07")], name="ts")
    values = {c: [1.0, 2.0] for c in ("events", "notional_usd", "account_value_usd", "cross_events")}
    store.append("liquidations", "hyperliquid", "ALL", pd.DataFrame(values, index=idx))
    row = audit(store).iloc[0]
    assert (row["step"], row["missing"], row["rows"]) == ("event", 0, 2)
