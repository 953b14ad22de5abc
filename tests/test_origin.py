"""The history origin (issue 17, finding 3): said when the store holds earlier hours, moved by a command,
followed by every replica. Real ccxt against the fake exchange, a real Redis, the real CLI."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
import redis

from riskd.cli import main
from riskd.clock import SimClock
from riskd.contract.keys import Keys
from riskd.contract.snapshot import snapshots_of
from riskd.core import compute_fragility
from riskd.daemon.wiring import runtime
from riskd.market import store_first_hour, store_panel
from riskd.store import HistoryStore
from riskd.testing.fake_exchange import FakeExchange
from tests.test_daemon import HOUR, SYMS, T0, VENUES, Recorder, _close, _drive, _market, _settings


async def test_an_earlier_store_is_named_and_riskd_origin_moves_every_replica(
    tmp_path: Path,
    redis_url: str,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A store holding hours before the shared origin is named at start in one line with both hours (before:
    silence, ranks against 337 hours); `riskd origin --from-store` moves the origin to the store's first
    hour, and the running replica rebuilds from it at its next cycle, publishing what the batch path over
    the whole store gives."""
    clock = SimClock(T0)
    keys = Keys(prefix)
    sync = redis.Redis.from_url(redis_url)
    async with FakeExchange(_market(), now=clock.now) as fx:
        settings = _settings(tmp_path, fx, redis_url, prefix)
        async with runtime(settings, clock=clock, channel=Recorder(), commands=False) as rt:
            rt.daemon.load()
            await _drive(rt, clock, [T0])  # the store now starts at the warm-up start
        first = store_first_hour(HistoryStore(settings.store_dir), settings.fragility, SYMS)
        assert first is not None
        later = first + 72 * HOUR  # another replica's origin, set after ours
        sync.set(keys.history_origin, later.strftime("%Y-%m-%dT%H:%M:%SZ"))
        rt.daemon.state_path.unlink()  # a cold start
        caplog.set_level(logging.WARNING, logger="riskd")
        async with runtime(settings, clock=clock, channel=Recorder(), commands=False) as rt:
            rt.daemon.load()
            await _drive(rt, clock, [T0 + HOUR])
            named = [
                r.getMessage() for r in caplog.records if "before the shared history origin" in r.message
            ]
            assert len(named) == 1, caplog.text
            assert str(first) in named[0]
            assert str(later) in named[0]
            assert "riskd origin --from-store" in named[0]
            assert rt.daemon.origin == later

            monkeypatch.setenv("RISKD_REDIS__URL", redis_url)
            monkeypatch.setenv("RISKD_REDIS__KEY_PREFIX", prefix)
            monkeypatch.setenv("RISKD_DATA_DIR", str(tmp_path))
            monkeypatch.setenv("RISKD_UNIVERSE__SYMBOLS", '["BTC","ETH","SOL","XRP","DOGE"]')
            assert await _in_thread(main, ["origin", "--from-store"]) == 0
            assert pd.Timestamp(sync.get(keys.history_origin).decode()) == first

            caplog.clear()
            (snap,) = await _drive(rt, clock, [T0 + 2 * HOUR])
            assert rt.daemon.origin == first
            assert any("history origin moved" in r.message for r in caplog.records), caplog.text
    sync.close()
    panel = store_panel(
        HistoryStore(settings.store_dir), settings.fragility, SYMS, VENUES, T0 + 2 * HOUR, start=first
    )
    batch = snapshots_of(compute_fragility(panel, settings.fragility), computed_at=snap.computed_at)[-1]
    assert batch.as_of == snap.as_of
    assert _close(snap.cfi, batch.cfi)
    assert _close(snap.cfi_percentile, batch.cfi_percentile)


async def _in_thread(fn: object, argv: list[str]) -> int:
    """Run the CLI (it has its own event loop) beside the test's loop."""
    import asyncio

    return await asyncio.to_thread(fn, argv)  # type: ignore[arg-type]


def test_origin_without_redis_is_one_line_and_exit_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`riskd origin` against a Redis that does not answer: one line naming it, exit 4."""
    from riskd.daemon.embedded import free_port

    monkeypatch.setenv("RISKD_REDIS__URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("RISKD_DATA_DIR", str(tmp_path))
    assert main(["origin"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("riskd: redis at redis://127.0.0.1:")
