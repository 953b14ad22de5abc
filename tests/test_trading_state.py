"""The trading state (active / reducing / halted): one table, the fail-safe when riskd is blind, and the
freqtrade mixin acting on it when the key is missing, stale, or Redis is down (real Redis)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis
from _contract import make_snapshot

from riskd.client import interpret, read_regime
from riskd.commands.reference import REDIS_DOC, TRADING_BEGIN, TRADING_END
from riskd.config import load_settings
from riskd.contract.codec import read_snapshot
from riskd.contract.keys import Keys
from riskd.contract.models import DataQuality
from riskd.contract.trading import DEFAULT_TABLE, TradingTable, derive, table_markdown
from riskd.integrations.freqtrade import RiskdRegimeMixin

NOW = datetime(2021, 5, 19, 14, 5, tzinfo=UTC)
HOUR = NOW.replace(minute=0)


@pytest.mark.parametrize(
    ("state", "multiplier", "quality", "freshness", "expected"),
    [
        ("calm", 1.0, "ok", None, "active"),
        ("elevated", 0.75, "ok", None, "active"),
        ("recovery", 0.5, "ok", None, "reducing"),
        ("fragile", 0.5, "ok", None, "reducing"),
        ("cascade", 0.0, "ok", None, "halted"),
        ("cascade", 0.3, "ok", None, "halted"),  # the state's row: halted whatever the multiplier
        ("calm", 0.5, "ok", None, "reducing"),  # a multiplier below 0.75: at least reducing
        ("calm", 1.0, "degraded", None, "active"),  # degraded data is usable: it changes nothing
        ("calm", 0.0, "ok", None, "halted"),  # a zero multiplier halts whatever the state
        ("unknown", 0.5, "ok", None, "halted"),  # the lead's blind state: the fail-safe
        ("calm", 1.0, "stale", None, "halted"),  # computed from stale data: the fail-safe
        ("calm", 1.0, "ok", "stale", "halted"),  # a reader's verdict: too old
        ("calm", 1.0, "ok", "unknown", "halted"),  # a reader's verdict: no key, Redis down
        ("calm", 1.0, "ok", "fresh", "active"),
    ],
)
def test_the_default_table(
    state: str, multiplier: float, quality: str, freshness: str | None, expected: str
) -> None:
    """Each row of the documented table gives the documented trading state."""
    assert derive(state, multiplier, quality, freshness) == expected


@pytest.mark.parametrize("state", ["calm", "elevated", "recovery", "fragile", "cascade", "unknown"])
@pytest.mark.parametrize("why", [("stale", None), ("ok", "stale"), ("ok", "unknown")])
def test_blind_is_never_active_whatever_the_table(state: str, why: tuple[str, str | None]) -> None:
    """Even a table that makes every state active gives the fail-safe when riskd is blind, and a table
    whose fail-safe is active cannot be built."""
    lax = TradingTable(
        states=dict.fromkeys(("calm", "elevated", "recovery", "fragile", "cascade"), "active"),
        halt_at_or_below=-1,
        reduce_below=0,
        fail_safe="reducing",
    )
    assert derive(state, 1.0, why[0], why[1], lax) == "reducing"
    with pytest.raises(ValueError, match="fail_safe"):
        TradingTable(fail_safe="active")  # type: ignore[arg-type]


def test_settings_change_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """``RISKD_TRADING__*`` changes the table (elevated reducing, fail-safe reducing); ``active`` as a
    fail-safe is refused with a one-line error naming the variable."""
    monkeypatch.setenv("RISKD_TRADING__ELEVATED", "reducing")
    monkeypatch.setenv("RISKD_TRADING__FAIL_SAFE", "reducing")
    table = load_settings().trading.table()
    assert derive("elevated", 0.75, table=table) == "reducing"
    assert derive("unknown", 0.5, table=table) == "reducing"
    monkeypatch.setenv("RISKD_TRADING__FAIL_SAFE", "active")
    with pytest.raises(Exception, match="RISKD_TRADING__FAIL_SAFE"):
        load_settings()


def test_the_docs_show_the_table_generated_from_the_code() -> None:
    """docs/redis.md's trading-state table is the code's table, character for character."""
    text = (Path(__file__).resolve().parents[1] / REDIS_DOC).read_text(encoding="utf-8")
    shown = text.partition(TRADING_BEGIN)[2].partition(TRADING_END)[0].strip()
    assert shown == table_markdown(DEFAULT_TABLE).strip()


def test_a_payload_without_the_field_reads_as_the_table_gives() -> None:
    """A v1 payload written before ``trading_state`` existed reads with the default table's value."""
    body = json.loads(make_snapshot(HOUR, "cascade").to_json())
    assert body.pop("trading_state") == "halted"
    assert read_snapshot(body).trading_state == "halted"
    calm = json.loads(make_snapshot(HOUR, "calm").to_json())
    del calm["trading_state"]
    assert read_snapshot(calm).trading_state == "active"


def test_the_reader_applies_the_fail_safe_at_read_time() -> None:
    """``reading.trading_state``: the snapshot's when fresh; the fail-safe when it is too old or missing,
    even though the old snapshot itself said active."""
    raw = make_snapshot(HOUR, "calm").to_json()
    assert interpret(raw, now=NOW).trading_state == "active"
    assert interpret(raw, now=NOW + timedelta(hours=3)).trading_state == "halted"
    assert interpret(None, now=NOW).trading_state == "halted"
    assert interpret(None, now=NOW, fail_safe="reducing").trading_state == "reducing"


class _Strategy(RiskdRegimeMixin):
    """What the mixin needs of freqtrade's IStrategy: its config and timeframe (the real one runs in
    tests/test_freqtrade_live.py); the parent callbacks are IStrategy's defaults."""

    timeframe = "1h"

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config


def _strategy(url: str, prefix: str) -> _Strategy:
    return _Strategy(
        {
            "runmode": "dry_run",
            "stake_amount": 1000.0,
            "riskd": {"redis_url": url, "prefix": prefix, "poll_seconds": 0},
        }
    )


def _entry(s: _Strategy) -> tuple[bool, float]:
    now = datetime.now(UTC)
    stake = s.custom_stake_amount("BTC/USDT:USDT", now, 1.0, 1000.0, 5.0, 10_000.0, 1.0, None, "long")
    allowed = s.confirm_trade_entry("BTC/USDT:USDT", "limit", 1.0, 1.0, "GTC", now, None, "long")
    return allowed, stake


def _publish_raw(url: str, prefix: str, as_of: datetime, state: str) -> None:
    snap = make_snapshot(as_of, state, computed_at=as_of + timedelta(seconds=20))
    redis.Redis.from_url(url).set(Keys(prefix).regime, snap.to_json())


def test_the_mixin_acts_on_the_regime_when_it_is_fresh(redis_url: str, prefix: str) -> None:
    """Fresh calm: entries allowed at the full stake; fresh cascade: refused."""
    hour = pd.Timestamp.now("UTC").floor("h").to_pydatetime()
    _publish_raw(redis_url, prefix, hour, "calm")
    assert _entry(_strategy(redis_url, prefix)) == (True, 1000.0)
    _publish_raw(redis_url, prefix, hour, "cascade")
    assert _entry(_strategy(redis_url, prefix))[0] is False


@pytest.mark.parametrize("case", ["key missing", "stale", "redis down"])
def test_the_mixin_acts_on_the_fail_safe_when_blind(
    redis_url: str, prefix: str, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The key missing, a calm key three hours old, and Redis down each make the mixin refuse entries
    (fail-safe halted) and say so once per episode, not once per call; with ``fail_safe: reducing`` it
    enters at the fallback multiplier's stake instead."""
    url = "redis://127.0.0.1:1/0" if case == "redis down" else redis_url
    if case == "stale":
        old = (pd.Timestamp.now("UTC").floor("h") - pd.Timedelta(hours=3)).to_pydatetime()
        _publish_raw(redis_url, prefix, old, "calm")
        assert read_regime(redis.Redis.from_url(redis_url), prefix=prefix).status == "stale"
    s = _strategy(url, prefix)
    with caplog.at_level(logging.WARNING, logger="riskd.integrations.freqtrade"):
        assert _entry(s) == (False, 0.0)
        assert _entry(s) == (False, 0.0)
    assert s.riskd_regime(datetime.now(UTC)).blind
    assert sum("acting on the fail-safe state halted" in r.message for r in caplog.records) == 1
    lenient = _strategy(url, prefix)
    lenient.config["riskd"]["fail_safe"] = "reducing"
    assert _entry(lenient) == (True, 500.0)


def test_the_mixin_says_when_riskd_is_back(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """After a blind episode, the first good read is logged once and entries resume."""
    s = _strategy(redis_url, prefix)
    with caplog.at_level(logging.WARNING, logger="riskd.integrations.freqtrade"):
        assert _entry(s)[0] is False
        _publish_raw(redis_url, prefix, pd.Timestamp.now("UTC").floor("h").to_pydatetime(), "calm")
        assert _entry(s) == (True, 1000.0)
    assert sum("regime readable again" in r.message for r in caplog.records) == 1


def test_the_mixin_needs_the_export_in_backtests() -> None:
    """A backtest without ``regime_file`` fails with a message naming the setting and the command."""
    s = _Strategy({"runmode": "backtest", "stake_amount": 1000.0})
    with pytest.raises(ValueError, match=r"riskd\.regime_file.*riskd export regime"):
        s.riskd_regime(NOW)


def test_snapshots_carry_the_trading_state_of_their_data_quality() -> None:
    """A snapshot built from degraded data keeps its regime's trading state; from stale data, or in the
    blind ``unknown`` state, the fail-safe."""
    degraded = make_snapshot(HOUR, "calm", data_quality=DataQuality(status="degraded", coverage=0.8))
    stale = make_snapshot(HOUR, "calm", data_quality=DataQuality(status="stale", coverage=0.0))
    blind = make_snapshot(HOUR, "unknown")
    assert (degraded.trading_state, stale.trading_state, blind.trading_state) == (
        "active",
        "halted",
        "halted",
    )


async def test_regime_serves_the_fail_safe_when_not_current() -> None:
    """/regime over real HTTP: a fresh cascade is 200 with ``trading_state: halted``, a fresh calm one
    ``active``; the same calm snapshot 3 h later is 503 with the fail-safe, and so is no snapshot at all."""
    import aiohttp

    from riskd.http.server import MetricsServer
    from riskd.sinks.metrics import Metrics

    now = {"t": NOW}
    metrics = Metrics(clock=lambda: now["t"].timestamp())
    metrics.state.last_cycle_ok = metrics.state.started_at
    srv = await MetricsServer(metrics, "127.0.0.1", 0).start()

    async def regime() -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{srv.port}/regime") as r:
            return r.status, await r.json()

    try:
        assert (await regime())[1]["trading_state"] == "halted"
        metrics.state.snapshot = make_snapshot(HOUR, "cascade")
        assert [(await regime())[0], (await regime())[1]["trading_state"]] == [200, "halted"]
        metrics.state.snapshot = make_snapshot(HOUR, "calm")
        assert [(await regime())[0], (await regime())[1]["trading_state"]] == [200, "active"]
        now["t"] = NOW + timedelta(hours=3)
        status, body = await regime()
        assert (status, body["state"], body["trading_state"]) == (503, "unknown", "halted")
        assert body["last_snapshot"]["trading_state"] == "active"
    finally:
        await srv.stop()


def test_the_mixin_trims_while_reducing_only_when_asked(redis_url: str, prefix: str) -> None:
    """With ``trim_while_reducing``, a 1,000 USDT position is sold down to stake × multiplier (500) while
    fragile; without it, or while calm, nothing is trimmed."""
    from types import SimpleNamespace

    hour = pd.Timestamp.now("UTC").floor("h").to_pydatetime()
    trade = SimpleNamespace(pair="BTC/USDT:USDT", stake_amount=1000.0)

    def adjust(s: _Strategy) -> float | None:
        now = datetime.now(UTC)
        return s.adjust_trade_position(trade, now, 1.0, 0.0, 5.0, 10_000.0, 1.0, 1.0, 0.0, 0.0)

    _publish_raw(redis_url, prefix, hour, "fragile")
    trimming = _strategy(redis_url, prefix)
    trimming.config["riskd"]["trim_while_reducing"] = True
    assert adjust(trimming) == pytest.approx(-500.0)
    assert adjust(_strategy(redis_url, prefix)) is None
    _publish_raw(redis_url, prefix, hour, "calm")
    calm = _strategy(redis_url, prefix)
    calm.config["riskd"]["trim_while_reducing"] = True
    assert adjust(calm) is None
