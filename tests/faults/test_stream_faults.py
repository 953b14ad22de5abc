"""The minute side under a real kill -9: `riskd run` with the minute streams on, killed after its
provisional "cascade developing" alert went out, restarted under a new instance id on the same data
dir. Real ccxt.pro clients against the fake's websockets, real Redis, python-telegram-bot against the
fake Bot API; the test pushes the minutes on the shared file clock."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
from faultkit import CHAT, HOUR, T0, FaultRig, assert_kept, market, rig

CASCADE = T0 + 10 * HOUR
STREAMS = {
    "enabled": True,
    "backoff_initial_s": 0.05,
    "backoff_max_s": 0.2,
    "tick_s": 0.05,
    "detector": {"volume_baseline_minutes": 60, "volume_min_periods": 10, "breadth_min_assets": 3},
}
SYMS = ("BTC", "ETH", "SOL", "XRP", "DOGE")


class Minutes:
    """Pushes the minutes of the cascade hour through the fake's websockets, as the venues would."""

    def __init__(self, r: FaultRig) -> None:
        self.r = r
        self.price = {s: 100.0 * (i + 1) for i, s in enumerate(SYMS)}

    def _on_fake(self, coro: Any, timeout: float = 20.0) -> Any:
        loop = self.r.fx._loop  # the fake serves from its own thread's loop
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def wait_connected(self) -> None:
        self._on_fake(self.r.fx.ws.wait_connected("binance", 2, within_s=30.0), timeout=40.0)
        self._on_fake(self.r.fx.ws.wait_connected("bybit", 1, within_s=30.0), timeout=40.0)

    def push(self, i: int, *, drop: float = 0.0, volume: float = 10.0, liq_usd: float = 10_000.0) -> None:
        """Minute ``i`` of the cascade hour, then wait until the daemon published it on regime:live."""
        from riskd.testing.fake_exchange._ws import Liquidation

        m = CASCADE + pd.Timedelta(minutes=i)
        bars = {}
        for s in SYMS:
            o = self.price[s]
            c = o * (1 + drop + (0.0002 if i % 2 else -0.0002))
            self.price[s] = c
            bars[f"{s}USDT"] = (o, max(o, c), min(o, c), c, volume)
        ms = int(m.value // 1_000_000)
        liqs = [Liquidation("BTCUSDT", "sell", self.price["BTC"], liq_usd / self.price["BTC"], ms + 1000)]
        self.r.clock.set(m + pd.Timedelta(seconds=61))
        self._on_fake(self.r.fx.ws.push_minute(m, bars, liqs))
        self.wait_live(m + pd.Timedelta(minutes=1))  # regime:live's ``minute`` is the close

    def wait_live(self, minute: pd.Timestamp, within_s: float = 20.0) -> dict[str, Any]:
        """Until regime:live covers the minute closing at ``minute``."""
        deadline = time.monotonic() + within_s
        client = self.r.redis_client()
        try:
            while time.monotonic() < deadline:
                raw = client.get(f"{self.r.prefix}:regime:live")
                if raw is not None:
                    doc = json.loads(raw)
                    if pd.Timestamp(doc["minute"]) >= minute:
                        return doc
                time.sleep(0.02)
        finally:
            client.close()
        raise AssertionError(f"regime:live never reached {minute:%H:%M}")


def _wait(cond: Any, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_kill9_after_the_provisional_alert_then_restart_resends_nothing_and_loses_no_minute(
    fault_tmp: Path, record: dict[str, Any]
) -> None:
    """kill -9 right after "cascade developing" went out; a new instance on the same data dir recovers
    the minute journal and the open episode: no second developing alert, the hour close confirms it in
    the same thread, and every minute of the hour (before and after the kill) reaches the store."""
    with rig(fault_tmp, market(CASCADE)) as r:
        a = r.start_daemon("a", streams=STREAMS)
        r.drive(T0, CASCADE - HOUR)
        feed = Minutes(r)
        feed.wait_connected()
        for i in range(40):
            feed.push(i)
        for i in range(40, 43):
            feed.push(i, drop=-0.012, volume=120.0, liq_usd=8_000_000.0)

        def developing() -> list[Any]:
            return [m for m in r.tg.messages_to(CHAT) if "Cascade developing" in m.plain]

        _wait(lambda: len(developing()) >= 1, 30, "the cascade developing alert")
        a.kill9()
        b = r.start_daemon("b", streams=STREAMS)
        feed.wait_connected()
        for i in range(43, 60):
            feed.push(i, drop=-0.002, volume=40.0, liq_usd=500_000.0)
        r.advance(CASCADE)  # the hour closes: the hourly cycle publishes the cascade hour
        root = developing()[0]

        def confirmed() -> bool:
            return any(
                m.reply_to == root.message_id and "Confirmed at the hour close" in m.plain
                for m in r.tg.messages_to(CHAT)
            )

        try:
            _wait(confirmed, 30, "the hour close to confirm the provisional alert in its thread")
        except AssertionError as err:
            chat = "\n".join(
                f"  {m.message_id} ->{m.reply_to}: {m.plain.splitlines()[0]}" for m in r.tg.messages_to(CHAT)
            )
            raise AssertionError(f"{err}\nchat:\n{chat}\n--- daemon b ---\n{b.tail(60)}") from None
        r.wait_alerts_settled()  # anything sent twice would have arrived by now
        chat = r.tg.messages_to(CHAT)
        assert b.alive, f"the restarted daemon died:\n{b.tail()}"
        v = r.judge(last_as_of=CASCADE + HOUR)
        assert len(developing()) == 1, [m.plain.splitlines()[0] for m in chat]
        assert [m for m in chat if m.reply_to is None and "Cascade developing" in m.plain] == [root]
        from riskd.store import HistoryStore

        store = HistoryStore(fault_tmp / "data" / "store")
        rows = store.read("liquidations", "binance", "ALL", CASCADE, CASCADE + HOUR)
        record.update(v.as_dict())
        assert len(rows) == 60, f"{len(rows)} of the hour's 60 minutes in the store: {list(rows.index)}"
        assert (rows["coverage"] == 1.0).all()
        assert (rows["long_usd"].iloc[40:43] >= 8e6 - 1).all()  # recorded before the kill, from the journal
        assert (rows["long_usd"].iloc[43:] > 0).all()  # and after the restart
        assert_kept(v, r)
