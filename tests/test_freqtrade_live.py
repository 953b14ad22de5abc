"""The live path: freqtrade in dry-run against riskd's fake exchange (on the wall clock) while riskd's real
publishing path (``RedisSink``, the daemon's Lua script) writes a planted cascade to a real Redis, then the
calm after it: entries stop while halted and resume after."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import _freqtrade as ft
from test_export import SYMBOLS, write_store

from riskd.commands.export import regime_snapshots
from riskd.config import RedisSettings, load_settings
from riskd.contract.models import Snapshot
from riskd.sinks.redis import RedisSink, client_from_settings
from riskd.testing.fake_exchange import FakeExchange
from riskd.testing.synthetic import synthetic_market


def _planted(tmp: Path) -> tuple[Snapshot, Snapshot]:
    """A cascade hour and a calm hour as riskd's core computes them from a synthetic market with a planted
    cascade (tests/test_export.py's store)."""
    from test_export import _market

    write_store(tmp / "store", _market())
    snaps = regime_snapshots(load_settings(data_dir=tmp, universe={"symbols": SYMBOLS}), None, None)
    cascade = next(s for s in snaps if s.state == "cascade")
    calm = next(s for s in reversed(snaps) if s.trading_state == "active")
    assert cascade.trading_state == "halted"
    return cascade, calm


def _at(snap: Snapshot, as_of: datetime) -> Snapshot:
    """The same verdict, stamped as the hour that closed at ``as_of`` (riskd publishes 20 s after it)."""
    return snap.model_copy(update={"as_of": as_of, "computed_at": datetime.now(UTC), "state_since": as_of})


def _publish(url: str, prefix: str, snap: Snapshot) -> None:
    async def go() -> None:
        settings = RedisSettings(url=url, key_prefix=prefix)
        client = client_from_settings(settings, url)
        try:
            assert await RedisSink(client, settings).publish(snap) == 1
        finally:
            await client.aclose()

    asyncio.run(go())


def _trades(db: Path) -> list[tuple[str, datetime, float, float]]:
    """(pair, open_date, stake_amount, open_rate) of every trade in freqtrade's database."""
    if not db.exists():
        return []
    with sqlite3.connect(db) as con:
        try:
            rows = con.execute(
                "SELECT pair, open_date, stake_amount, open_rate FROM trades ORDER BY id"
            ).fetchall()
        except sqlite3.OperationalError:  # freqtrade has not created its tables yet
            return []
    return [
        (p, pd.Timestamp(d).tz_localize("UTC").to_pydatetime(), float(s), float(r)) for p, d, s, r in rows
    ]


def _wait(
    what: str, check: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        assert proc.poll() is None, f"freqtrade exited {proc.returncode}:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
def test_entries_stop_while_halted_and_resume_after(tmp_path: Path, redis_url: str, prefix: str) -> None:
    """Dry-run freqtrade refuses every entry while riskd publishes a cascade (halted), then enters within
    seconds of the calm hour's publication, at the full stake; no trade opens before it."""
    ft.need_freqtrade()
    cascade, calm = _planted(tmp_path / "riskd")
    hour = pd.Timestamp.now("UTC").floor("h")
    _publish(redis_url, prefix, _at(cascade, (hour - pd.Timedelta(hours=1)).to_pydatetime()))
    market = synthetic_market(["BTC", "ETH"], hour - pd.Timedelta(hours=300), 300 + 48)
    db, log = tmp_path / "trades.sqlite", tmp_path / "freqtrade.log"
    with FakeExchange(market, now=lambda: pd.Timestamp.now("UTC")) as fx:
        cfg = ft.config(
            fx.base_url,
            tmp_path / "user_data",
            initial_state="running",
            bot_name="riskd-live-test",
            riskd={"redis_url": redis_url, "prefix": prefix, "poll_seconds": 1},
        )
        (tmp_path / "config.json").write_text(json.dumps(cfg))
        cmd = [
            str(ft.FREQTRADE),
            "trade",
            "--dry-run",
            "-c",
            str(tmp_path / "config.json"),
            "--strategy",
            "RiskdLiveExample",
            "--strategy-path",
            str(ft.STRATEGIES),
            "--db-url",
            f"sqlite:///{db}",
        ]
        with log.open("w") as out:
            proc = subprocess.Popen(cmd, env=ft.env(), cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
        try:
            refused = lambda: all(f"riskd: entry refused for {p}" in log.read_text() for p in ft.PAIRS)  # noqa: E731  (a one-line local helper reads best as a lambda)
            _wait("refused entries while halted", refused, 120, proc, log)
            time.sleep(5)  # freqtrade asks again every second: still nothing opens
            assert _trades(db) == []
            published = datetime.now(UTC)
            _publish(redis_url, prefix, _at(calm, hour.to_pydatetime()))
            _wait("an entry after the calm hour", lambda: len(_trades(db)) >= 2, 60, proc, log)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    trades = _trades(db)
    assert all(opened >= published - timedelta(seconds=1) for _, opened, *_ in trades)
    target = ft.STAKE * calm.risk_multiplier  # the amount is rounded down to the market's 0.001 step
    assert all(target - 0.001 * rate - 1e-6 <= stake <= target + 1e-6 for *_, stake, rate in trades)
    assert "riskd: entry refused" in log.read_text()
