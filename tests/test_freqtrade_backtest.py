"""riskd's regime filter in real ``freqtrade backtesting`` runs (subprocesses of the registry's freqtrade,
scripts/freqtrade-env.sh) over the shipped real Binance futures sample, plain and with the mixin."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import _freqtrade as ft

from riskd.integrations.freqtrade import HistoryRegime
from riskd.testing.fake_exchange import FakeExchange
from riskd.testing.synthetic import synthetic_market

DOC = Path(__file__).resolve().parents[1] / "docs" / "integrations.md"
TABLE_BEGIN = "<!-- BEGIN EXAMPLE TABLE: tests/test_freqtrade_backtest.py -->"
TABLE_END = "<!-- END EXAMPLE TABLE -->"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The example strategy backtested plain and with the filter; the fake exchange only lists markets."""
    ft.need_freqtrade()
    work = tmp_path_factory.mktemp("freqtrade")
    with FakeExchange(synthetic_market(["BTC", "ETH"], "2024-01-01", 48)) as fx:
        plain = ft.backtest(ft.config(fx.base_url, work / "user_data"), "RiskdExamplePlain", work)
        cfg = ft.config(fx.base_url, work / "user_data", riskd={"regime_file": str(ft.REGIME_FILE)})
        filtered = ft.backtest(cfg, "RiskdExample", work)
        assert fx.count(path="/fapi/v1/exchangeInfo") >= 2  # freqtrade really asked the fake for its markets
    return plain, filtered


@pytest.fixture(scope="module")
def regime() -> HistoryRegime:
    return HistoryRegime.from_file(ft.REGIME_FILE, fail_safe="halted", fallback_multiplier=0.5,
                                   max_age=pd.Timedelta(hours=2))  # fmt: skip


def _states(trades: pd.DataFrame, regime: HistoryRegime) -> pd.Series:
    return trades["open_date"].map(lambda t: regime.at(t).trading_state)


def test_no_entry_opens_while_the_export_says_halted(runs: tuple[pd.DataFrame, pd.DataFrame], regime: HistoryRegime) -> None:  # fmt: skip
    """The plain run opens trades in hours the exported regime marks halted; the filtered run opens none."""
    plain, filtered = runs
    assert len(plain) > 100
    assert (_states(plain, regime) == "halted").sum() > 0
    assert len(filtered) > 0
    assert (_states(filtered, regime) != "halted").all()


def test_stakes_are_the_base_stake_times_the_multiplier(runs: tuple[pd.DataFrame, pd.DataFrame], regime: HistoryRegime) -> None:  # fmt: skip
    """Each filtered trade's stake is 1,000 USDT × the regime's multiplier, to the market's amount step
    (0.001 of the base asset at the entry price); some of them are scaled down."""
    _, filtered = runs
    target = filtered["open_date"].map(lambda t: ft.STAKE * regime.at(t).risk_multiplier)
    step = 0.001 * filtered["open_rate"]
    assert (filtered["stake_amount"] <= target + 1e-6).all()
    assert (target - filtered["stake_amount"] <= step + 1e-6).all()
    assert (target < ft.STAKE).sum() > 10


def test_the_trade_lists_differ_only_in_halted_hours(runs: tuple[pd.DataFrame, pd.DataFrame], regime: HistoryRegime) -> None:  # fmt: skip
    """Every filtered trade is a plain trade (same pair, times, prices, exit); the plain trades missing from
    the filtered run are exactly those that opened while halted."""
    plain, filtered = runs
    key = ["pair", "open_date"]
    merged = plain.merge(filtered, on=key, how="outer", suffixes=("_plain", "_riskd"), indicator=True)
    assert (merged["_merge"] != "right_only").all()
    missing = merged[merged["_merge"] == "left_only"]
    halted = plain[_states(plain, regime) == "halted"]
    assert sorted(map(tuple, missing[key].to_numpy())) == sorted(map(tuple, halted[key].to_numpy()))
    both = merged[merged["_merge"] == "both"]
    for col in ("close_date", "open_rate", "close_rate", "exit_reason"):
        assert (both[f"{col}_plain"] == both[f"{col}_riskd"]).all(), col


def test_the_docs_example_table_is_these_runs(runs: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """docs/integrations.md's example table is what these two runs give (regenerate it from the message)."""
    table = ft.results_table(*runs)
    text = DOC.read_text(encoding="utf-8")
    shown = text.partition(TABLE_BEGIN)[2].partition(TABLE_END)[0].strip()
    assert shown == table.strip(), (
        f"docs/integrations.md example table is out of date; it should read:\n{table}"
    )
