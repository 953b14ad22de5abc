"""The minute side end to end: real ccxt.pro clients against the fake's websockets, real Redis, the real
alert pipeline and python-telegram-bot against the fake Bot API, on a simulated clock."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import redis.asyncio as aioredis

from riskd.alerting.feed import AlertFeed
from riskd.alerting.pipeline import AlertPipeline
from riskd.clock import SimClock
from riskd.config import Settings, load_settings
from riskd.contract.models import STATE_CODES, DataQuality, Snapshot
from riskd.sinks.redis import RedisSink
from riskd.store import HistoryStore
from riskd.streams.task import MinuteStreams
from riskd.telegram.channel import TelegramChannel
from riskd.testing.fake_exchange import FakeExchange
from riskd.testing.fake_exchange._ws import Liquidation
from riskd.testing.fake_telegram import FakeTelegram
from riskd.testing.synthetic import synthetic_market

SYMBOLS = ["BTC", "ETH", "SOL", "XRP", "DOGE"]
HOUR = pd.Timestamp("2024-01-02 09:00", tz="UTC")
TOKEN = "123456789:AAE-streams-test-token"
CHAT = 100
DETECTOR = {"volume_baseline_minutes": 60, "volume_min_periods": 10, "breadth_min_assets": 3}


@dataclass
class Rig:
    """Everything one test drives."""

    fx: FakeExchange
    tg: FakeTelegram
    settings: Settings
    client: aioredis.Redis
    pipeline: AlertPipeline
    clock: SimClock
    streams: MinuteStreams
    stop: asyncio.Event
    task: asyncio.Task[None]
    price: dict[str, float]

    async def minute(
        self, i: int, *, drop: float = 0.0, volume: float = 10.0, liq_usd: float = 0.0, **push: Any
    ) -> None:
        """Push minute ``i`` of the hour (BTC and every alt move by ``drop``) and wait until it closed."""
        m = HOUR + pd.Timedelta(minutes=i)
        bars = {}
        for s in SYMBOLS:
            o = self.price[s]
            c = o * (1 + drop + (0.0002 if i % 2 else -0.0002))
            self.price[s] = c
            bars[f"{s}USDT"] = (o, max(o, c), min(o, c), c, volume)
        ms = int(m.value // 1_000_000)
        liqs = (
            [Liquidation("BTCUSDT", "sell", self.price["BTC"], liq_usd / self.price["BTC"], ms + 1000)]
            if liq_usd
            else []
        )
        self.clock.set(m + pd.Timedelta(seconds=61))
        await self.fx.ws.push_minute(m, bars, liqs, **push)
        await until(lambda: self.streams.next_minute is not None and self.streams.next_minute > ms)

    async def live(self) -> dict[str, Any]:
        """The ``regime:live`` document."""
        raw = await self.client.get(f"{self.settings.redis.key_prefix}:regime:live")
        return json.loads(raw)


async def until(cond: Callable[[], bool], within_s: float = 10.0) -> float:
    """Wait for ``cond``; returns the seconds it took."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > within_s:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


@asynccontextmanager
async def rig(tmp_path: Path, redis_url: str, prefix: str, **streams: Any) -> AsyncIterator[Rig]:
    """The fake exchange and Bot API, and MinuteStreams wired as ``riskd run`` wires it."""
    history = synthetic_market(SYMBOLS, "2024-01-01", hours=40, seed=3)
    async with FakeExchange(history) as fx, FakeTelegram(token=TOKEN) as tg:
        settings = await asyncio.to_thread(_settings, tmp_path, fx, tg, redis_url, prefix, streams)
        client = aioredis.from_url(redis_url)
        clock = SimClock(HOUR)
        pipeline = AlertPipeline.from_settings(
            client,
            TelegramChannel(settings.telegram),
            settings,
            poll_s=0.05,
            clock=lambda: clock.now().timestamp(),
        )
        pipeline.start()
        ms = MinuteStreams(
            settings, client=client, pipeline=pipeline, clock=clock, store=HistoryStore(settings.store_dir)
        )
        stop = asyncio.Event()
        task = asyncio.create_task(ms.run(stop))
        await fx.ws.wait_connected("binance", 2)
        await fx.ws.wait_connected("bybit", 1)
        r = Rig(
            fx,
            tg,
            settings,
            client,
            pipeline,
            clock,
            ms,
            stop,
            task,
            {s: 100.0 * (i + 1) for i, s in enumerate(SYMBOLS)},
        )
        try:
            yield r
        finally:
            stop.set()
            await asyncio.wait_for(r.task, 10)
            await pipeline.stop(grace_s=2)
            await client.aclose()


def _settings(
    tmp_path: Path, fx: FakeExchange, tg: FakeTelegram, url: str, prefix: str, streams: dict[str, Any]
) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data",
        universe={"symbols": SYMBOLS},
        venues={v: {"api_url": fx.base_url} for v in ("binance", "bybit", "hyperliquid")},
        redis={"url": url, "key_prefix": prefix},
        telegram={"token": TOKEN, "chat_ids": [CHAT], "api_base_url": tg.base_url, "retry_interval_s": 0.5},
        streams={
            "enabled": True,
            "backoff_initial_s": 0.05,
            "backoff_max_s": 0.2,
            "tick_s": 0.05,
            "detector": DETECTOR,
            **streams,
        },
    )


def hourly(as_of: pd.Timestamp, state: str, level: str = "none", episode: str | None = None) -> Snapshot:
    """An hourly snapshot as the daemon publishes it."""
    codes = {"none": 0, "volume_only": 1, "loose": 2, "medium": 3, "strict": 4}
    return Snapshot(
        as_of=as_of.to_pydatetime(),
        computed_at=(as_of + pd.Timedelta(seconds=20)).to_pydatetime(),
        live=True,
        state=state,
        state_code=STATE_CODES[state],
        risk_multiplier=1.0,
        cfi=0.5,
        cfi_percentile=0.5,
        cascade_level=level,
        cascade_level_code=codes[level],
        episode_id=episode,
        data_quality=DataQuality(status="ok", coverage=1.0),
    )


async def plant_cascade(r: Rig, at: int = 40) -> None:
    """Calm minutes up to ``at``, then a fall with a volume and liquidation surge from ``at``."""
    for i in range(at):
        await r.minute(i, liq_usd=10_000.0)
    for i in range(at, at + 3):
        await r.minute(i, drop=-0.012, volume=120.0, liq_usd=8_000_000.0)


async def test_provisional_level_appears_at_the_planted_minute(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """A planted fall makes regime:live fire at the planted minute and raises one "cascade developing"."""
    async with rig(tmp_path, redis_url, prefix) as r:
        for i in range(40):
            await r.minute(i, liq_usd=10_000.0)
        assert (await r.live())["provisional_level"] == "none"
        await r.minute(40, drop=-0.012, volume=120.0, liq_usd=8_000_000.0)
        await r.minute(41, drop=-0.012, volume=120.0, liq_usd=8_000_000.0)
        doc = await r.live()
        assert doc["provisional"] is True
        assert doc["firing"] is True
        assert doc["fired_at"] == "2024-01-02T09:42:00Z"  # the close of minute 41, the second minute down
        assert doc["provisional_level"] in ("developing", "severe")
        assert doc["liquidations"]["binance"]["long_usd"] > 16e6
        assert not doc["liquidations"]["binance"]["partial"]
        await r.minute(42, drop=-0.012, volume=120.0, liq_usd=8_000_000.0)
        await r.tg.wait_for(lambda: len(r.tg.delivered) >= 1)
        await asyncio.sleep(0.3)
        assert [m.plain.splitlines()[0] for m in r.tg.delivered] == [
            f"{'🔴' if doc['provisional_level'] == 'severe' else '🟠'} "
            f"{'CRITICAL' if doc['provisional_level'] == 'severe' else 'WARNING'} · "
            f"Cascade developing (provisional, {doc['provisional_level']})"
        ]


async def test_calm_hour_close_retracts_in_the_same_thread(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """The hour closing calm retracts the provisional alert as a reply to it."""
    async with rig(tmp_path, redis_url, prefix) as r:
        await plant_cascade(r)
        await r.tg.wait_for(lambda: len(r.tg.delivered) >= 1)
        sink = RedisSink(r.client, r.settings.redis)
        await sink.publish(hourly(HOUR, "calm"))
        await sink.publish(hourly(HOUR + pd.Timedelta(hours=1), "elevated"))
        r.clock.set(HOUR + pd.Timedelta(hours=1, seconds=30))
        await r.tg.wait_for(lambda: len(r.tg.delivered) >= 2)
        first, second = r.tg.delivered[:2]
        assert "retracted" in second.plain
        assert second.reply_to == first.message_id
        assert not await r.client.hlen(f"{prefix}:regime:live:episodes")


async def test_hour_close_confirms_without_a_second_alert(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """A cascade hour confirms: the hourly cascade alerts reply in the provisional thread, no new thread."""
    async with rig(tmp_path, redis_url, prefix) as r:
        await plant_cascade(r)
        await r.tg.wait_for(lambda: len(r.tg.delivered) >= 1)
        sink = RedisSink(r.client, r.settings.redis)
        await sink.publish(hourly(HOUR, "calm"))
        end = HOUR + pd.Timedelta(hours=1)
        await sink.publish(hourly(end, "cascade", "strict", episode="ep-1"))
        r.clock.set(end + pd.Timedelta(seconds=30))
        feed = AlertFeed(
            r.client,
            prefix,
            r.pipeline,
            clock=lambda: r.clock.now().to_pydatetime(),
            lookback=timedelta(hours=6),
        )
        await feed.run()
        await r.tg.wait_for(lambda: len(r.tg.delivered) >= 3)
        await asyncio.sleep(0.5)
        roots = [m for m in r.tg.delivered if m.reply_to is None]
        assert len(roots) == 1
        assert "Cascade developing" in roots[0].plain
        replies = r.tg.delivered[1:]
        assert all(m.reply_to == roots[0].message_id for m in replies)
        assert any("Confirmed at the hour close" in m.plain for m in replies)
        assert not any("retracted" in m.plain for m in r.tg.delivered)


async def test_disconnect_mid_hour_records_the_gap_and_marks_the_hour_partial(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """A server disconnect reconnects, the down minutes have no row or coverage < 1, the hour is partial."""
    async with rig(tmp_path, redis_url, prefix) as r:
        for i in range(10):
            await r.minute(i, liq_usd=50_000.0)
        feed = r.streams.feeds["binance:liquidations"]
        r.clock.set(HOUR + pd.Timedelta(minutes=10, seconds=30))
        await r.fx.ws.disconnect("binance")
        await until(lambda: not feed.up)
        r.clock.set(HOUR + pd.Timedelta(minutes=12, seconds=30))
        await until(lambda: all(f.up for f in r.streams.feeds.values()))
        await r.fx.ws.wait_connected("binance", 2)  # both binance feeds subscribed again
        assert feed.reconnects >= 1
        for i in range(12, 60):
            await r.minute(i, liq_usd=50_000.0)
        doc = await r.live()
        assert doc["liquidations"]["binance"]["partial"] is True
        assert doc["liquidations"]["bybit"]["partial"] is False
        store = HistoryStore(r.settings.store_dir)
        await until(
            lambda: len(store.read("liquidations", "binance", "ALL")) > 50
        )  # written at the hour close
        stored = store.read("liquidations", "binance", "ALL")
        minutes = stored.index.strftime("%H:%M").tolist()
        assert "09:11" not in minutes
        assert "09:09" in minutes
        assert "09:13" in minutes
        assert stored["coverage"].loc[pd.Timestamp("2024-01-02 09:10", tz="UTC")] < 1.0
        assert stored["coverage"].loc[pd.Timestamp("2024-01-02 09:13", tz="UTC")] == 1.0


async def test_stall_is_detected_within_its_timeout(tmp_path: Path, redis_url: str, prefix: str) -> None:
    """An open but silent stream is marked down within its stall timeout, then reconnects when it talks."""
    async with rig(tmp_path, redis_url, prefix, stall_timeout_s=0.5) as r:
        await r.minute(0, liq_usd=50_000.0)
        feed = r.streams.feeds["bybit:liquidations"]
        await until(lambda: feed.messages > 0)
        feed.touch()
        r.fx.ws.stall("bybit")
        took = await until(lambda: feed.stalls >= 1, within_s=5)
        assert took <= 0.5 + 0.3
        assert not feed.up
        r.fx.ws.resume("bybit")
        await until(lambda: feed.up, within_s=5)


async def test_restart_after_a_crash_resends_nothing_and_loses_no_minute(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """A stop mid-episode and a fresh instance: no second alert, the journalled minutes reach the store."""
    async with rig(tmp_path, redis_url, prefix) as r:
        await plant_cascade(r)
        await r.tg.wait_for(lambda: len(r.tg.delivered) >= 1)
        r.task.cancel()  # nothing is flushed on the way out: a stop leaves what a kill -9 leaves
        await asyncio.gather(r.task, return_exceptions=True)
        journal = r.settings.data_dir / "state" / "liquidations.jsonl"
        assert journal.exists()
        assert len(journal.read_text().splitlines()) >= 2 * 43
        again = MinuteStreams(
            r.settings,
            client=r.client,
            pipeline=r.pipeline,
            clock=r.clock,
            store=HistoryStore(r.settings.store_dir),
        )
        r.streams = again
        r.task = asyncio.create_task(again.run(r.stop))
        await until(lambda: len(again.feeds) == 3 and all(f.up for f in again.feeds.values()))
        assert HOUR + pd.Timedelta(hours=1) in {
            pd.Timestamp(h, unit="ms", tz="UTC") for h in again.episodes.open
        }
        for i in range(44, 60):
            await r.minute(i, drop=-0.01, volume=120.0, liq_usd=8_000_000.0)
        await asyncio.sleep(0.5)
        assert len(r.tg.delivered) == 1
        store = HistoryStore(r.settings.store_dir)
        await until(lambda: len(store.read("liquidations", "binance", "ALL")) >= 59)
        assert "09:05" in store.read("liquidations", "binance", "ALL").index.strftime("%H:%M").tolist()


async def test_duplicate_and_out_of_order_events_count_once(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """Every frame sent twice and liquidations newest first: each liquidation is counted once, in its minute."""
    async with rig(tmp_path, redis_url, prefix) as r:
        m = HOUR
        ms = int(m.value // 1_000_000)
        liqs = [
            Liquidation("BTCUSDT", "sell", 100.0, 2.0, ms + 100),
            Liquidation("ETHUSDT", "buy", 200.0, 1.0, ms + 900),
        ]
        bars = {f"{s}USDT": (100.0, 100.0, 100.0, 100.0, 1.0) for s in SYMBOLS}
        r.clock.set(m + pd.Timedelta(seconds=61))
        await r.fx.ws.push_minute(m, bars, liqs, duplicate=True, out_of_order=True)
        await until(lambda: r.streams.next_minute is not None and r.streams.next_minute > ms)
        figs = (await r.live())["liquidations"]["binance"]
        assert (figs["events"], figs["long_usd"], figs["short_usd"]) == (2.0, 200.0, 200.0)
        assert r.streams.recorder.duplicates == 4  # both venues drop the second copy of each


async def test_malformed_frames_are_survived(tmp_path: Path, redis_url: str, prefix: str) -> None:
    """Frames that are not JSON break ccxt's reader; the silence is caught as a stall and the feed redials."""
    async with rig(tmp_path, redis_url, prefix, stall_timeout_s=0.5, candle_stall_timeout_s=0.5) as r:
        await r.minute(0)
        feed = r.streams.feeds["bybit:liquidations"]
        r.fx.ws.corrupt("bybit", 2)
        await r.fx.ws.push_minute(
            HOUR + pd.Timedelta(minutes=1), {}, [Liquidation("BTCUSDT", "sell", 1.0, 1.0, 1)]
        )
        await until(lambda: feed.stalls >= 1 or feed.errors >= 1, within_s=5)
        await until(lambda: feed.up, within_s=5)
        assert r.fx.ws.connects["bybit"] >= 2


async def test_live_key_and_its_pings_validate_against_the_shipped_schemas(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """What riskd really writes to ``regime:live`` and pings on ``events`` (calm, then firing) passes
    the shipped JSON Schemas (regime-live.v1, event.v1), checked by a real validator with formats."""
    import jsonschema
    from referencing import Registry, Resource

    from riskd.contract import schemas as contract

    schemas = contract.shipped_schemas()
    registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas.values())

    def errors(name: str, payload: Any) -> list[str]:
        v = jsonschema.Draft202012Validator(
            schemas[name], registry=registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        return [e.message for e in v.iter_errors(payload)]

    async with rig(tmp_path, redis_url, prefix) as r:
        pubsub = r.client.pubsub()
        await pubsub.subscribe(f"{prefix}:events")
        docs = []
        for i in range(40):
            await r.minute(i, liq_usd=10_000.0)
        docs.append(await r.live())
        for i in range(40, 43):
            await r.minute(i, drop=-0.012, volume=120.0, liq_usd=8_000_000.0)
        docs.append(await r.live())
        pings = []
        quiet = 0
        while quiet < 3:  # until the channel has been quiet three times in a row
            msg = await pubsub.get_message(timeout=0.2)
            if msg is None:
                quiet += 1
            elif msg["type"] == "message":
                quiet = 0
                pings.append(json.loads(msg["data"]))
        await pubsub.aclose()
    assert docs[-1]["firing"] is True
    for doc in docs:
        assert errors(contract.REGIME_LIVE, doc) == [], doc
    assert {p["type"] for p in pings} == {"live"}
    assert len(pings) >= 40
    assert all(errors(contract.EVENT, p) == [] for p in pings), pings[:3]
    assert pings[-1]["minute"].endswith("Z")
    broken = {**docs[-1], "provisional": False}  # the key is never the hourly regime
    assert errors(contract.REGIME_LIVE, broken)
    assert errors(contract.EVENT, {"type": "live", "minute": "09:42", "level": "developing"})
