"""``riskd export regime``: the published regime per hour, through replay's batch path, with no look-ahead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from riskd.cli import main
from riskd.commands.export import regime_snapshots
from riskd.config import Settings, load_settings
from riskd.contract.regime_file import EXPORT_COLUMNS, read_regime_file, regime_frame
from riskd.contract.snapshot import snapshots_of
from riskd.core import compute_fragility
from riskd.market import store_panel
from riskd.store import HistoryStore
from riskd.testing.synthetic import VENUES, synthetic_market

SYMBOLS = ["BTC", "ETH", "SOL", "XRP"]
START = pd.Timestamp("2024-01-01", tz="UTC")
HOURS = 24 * 16
CASCADE_AT = START + pd.Timedelta(hours=24 * 12)


def _market(seed: int = 3) -> object:
    return synthetic_market(SYMBOLS, START, HOURS, seed=seed, cascades=[(CASCADE_AT, 0.08, 12.0, None)])


def write_store(
    root: Path, market: object, shift_after: pd.Timestamp | None = None, factor: float = 1.0
) -> None:
    """The market into a store at ``root``; with ``shift_after`` (an hour's open), every later candle is
    scaled by ``factor`` (prices) and its volume by ``factor ** 2``, and every funding print from that
    hour's close on is negated: what the market did after the hour closed."""
    store = HistoryStore(root)
    for symbol in SYMBOLS:
        ohlcv = market.ohlcv["binance"][symbol].copy()  # type: ignore[attr-defined]
        if shift_after is not None:
            later = ohlcv.index > shift_after
            ohlcv.loc[later, ["open", "high", "low", "close"]] *= factor
            ohlcv.loc[later, "volume"] *= factor**2
        store.append("ohlcv", "binance", symbol, ohlcv)
        store.append("open_interest", "binance", symbol, market.open_interest["binance"][symbol])  # type: ignore[attr-defined]
        for venue in VENUES:
            funding = market.funding[venue][symbol].copy()  # type: ignore[attr-defined]
            if shift_after is not None:
                closed = shift_after + pd.Timedelta(hours=1)
                funding.loc[funding.index >= closed, ["rate", "rate_per_hour"]] *= -1
            store.append("funding", venue, symbol, funding)


def _settings(data_dir: Path) -> Settings:
    return load_settings(data_dir=data_dir, universe={"symbols": SYMBOLS})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export") / "data"
    write_store(root / "store", _market())
    return root


def test_export_equals_the_batch_snapshots(data_dir: Path) -> None:
    """Each exported hour carries what ``snapshots_of`` gives over the store's batch frame: state,
    multiplier and trading_state, and the planted cascade hour is halted."""
    s = _settings(data_dir)
    snaps = regime_snapshots(s, None, None)
    store = HistoryStore(s.store_dir)
    last = store.last_ts("ohlcv", "binance", "BTC")
    panel = store_panel(store, s.fragility, SYMBOLS, s.venues.enabled(), last)
    batch = snapshots_of(compute_fragility(panel, s.fragility), computed_at=snaps[0].computed_at)
    assert [x.as_of for x in snaps] == [x.as_of for x in batch]
    assert [(x.state, x.risk_multiplier) for x in snaps] == [(x.state, x.risk_multiplier) for x in batch]
    frame = regime_frame(snaps)
    assert tuple(frame.columns) == EXPORT_COLUMNS
    cascade_row = frame.loc[frame["hour"] == CASCADE_AT].iloc[0]
    assert cascade_row["state"] == "cascade"
    assert cascade_row["trading_state"] == "halted"
    assert (frame["published_at"] - frame["as_of"] == pd.Timedelta(seconds=s.daemon.grace_s)).all()


def test_cli_writes_parquet_and_csv_alike(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``riskd export regime`` writes the same rows as Parquet and CSV, only the hours asked for, and says
    how many hours of each trading state it wrote."""
    monkeypatch.setenv("RISKD_DATA_DIR", str(data_dir))
    monkeypatch.setenv("RISKD_UNIVERSE__SYMBOLS", '["BTC","ETH","SOL","XRP"]')
    frm, to = "2024-01-10", "2024-01-15T23:00"
    for name in ("r.parquet", "r.csv"):
        assert main(["export", "regime", "--from", frm, "--to", to, "--out", str(tmp_path / name)]) == 0
    out = capsys.readouterr().out
    assert "exported 144 hours" in out
    assert "halted" in out
    pq, csv = read_regime_file(tmp_path / "r.parquet"), read_regime_file(tmp_path / "r.csv")
    assert len(pq) == 144
    assert pq["hour"].iloc[0] == pd.Timestamp(frm, tz="UTC")
    assert pq["hour"].iloc[-1] == pd.Timestamp(to, tz="UTC")
    pd.testing.assert_frame_equal(
        pq.drop(columns=["cfi", "cfi_percentile", "crash_prob_24h", "episode_id", "reasons"]),
        csv.drop(columns=["cfi", "cfi_percentile", "crash_prob_24h", "episode_id", "reasons"]),
        check_dtype=False,
    )
    assert np.allclose(pq["cfi"].astype(float), csv["cfi"].astype(float), equal_nan=True)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--out", "x.json"], "--out"),
        (["--from", "2024-01-10", "--to", "2024-01-05", "--out", "x.csv"], "--from"),
        (["--from", "not-a-date", "--out", "x.csv"], "--from"),
    ],
)
def test_cli_bad_arguments_exit_2_naming_the_flag(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    needle: str,
) -> None:
    """A bad suffix, an inverted range or an unreadable date: exit 2, one line naming the flag."""
    monkeypatch.setenv("RISKD_DATA_DIR", str(data_dir))
    assert main(["export", "regime", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert needle in err
    assert "Traceback" not in err


@hyp_settings(
    max_examples=5,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # a shrink re-runs the core per step: minutes
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cut=st.integers(min_value=24 * 9, max_value=HOURS - 3), factor=st.floats(min_value=0.5, max_value=1.6))
def test_hour_t_does_not_change_when_later_data_does(
    tmp_path_factory: pytest.TempPathFactory, cut: int, factor: float
) -> None:
    """No look-ahead: prices, volumes and funding changed after hour T leave every exported row up to T
    unchanged (state, multiplier, trading_state, CFI)."""
    root = tmp_path_factory.mktemp("planted") / "data"
    t = START + pd.Timedelta(hours=cut)
    write_store(root / "store", _market(), shift_after=t, factor=factor)
    planted = regime_frame(regime_snapshots(_settings(root), None, None))
    clean_root = tmp_path_factory.getbasetemp() / "clean-export"
    if not (clean_root / "store").exists():
        write_store(clean_root / "store", _market())
    clean = regime_frame(regime_snapshots(_settings(clean_root), None, None))
    keep = ["hour", "state", "risk_multiplier", "trading_state", "cfi", "cfi_percentile", "cascade_level"]
    upto = clean["hour"] <= t
    pd.testing.assert_frame_equal(planted.loc[upto, keep], clean.loc[upto, keep])
    assert not planted.loc[~upto, keep].equals(clean.loc[~upto, keep])  # the plant did change later hours
