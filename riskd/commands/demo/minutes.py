"""``riskd demo --minutes``: the 19 May 2021 crash at minute resolution, through the real minute side.

The loopback fake exchange serves real Binance SPOT bars of 2021-05-19 06:00–14:59 UTC over the
websocket streams ccxt.pro connects to: 1-minute bars for BTC and ETH, and 5-minute bars for XRP, LTC and
ADA, each spread over its five minutes (the close moves linearly from the bar's open to its close, the
volume is split evenly). No perp minute bars or liquidation history exist for that day, so the
**liquidation stream is synthetic**: each minute, longs liquidated = 1 % of BTC's quote volume × (1 + 100
× the minute's fall), shorts the same with its rise (a rule of thumb, stated in the output). riskd's
``MinuteStreams`` (the code ``riskd run`` runs with ``streams.enabled``) records, detects and publishes
``<prefix>:regime:live``; its "cascade developing" alert goes to the console. At each hour close the
demo publishes the hour as the hourly daemon would (the batch path over the bundled hourly sample, the
same functions), so the provisional alert is confirmed or retracted in its thread. The simulated clock
moves one minute as soon as the previous one has been processed (about 15 s for the nine hours).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from riskd.config import Settings
from riskd.contract.keys import Keys
from riskd.errors import DataError
from riskd.telegram.channel import ConsoleChannel

MINUTES_FILE = "sample_2021_05_19_minutes.csv.gz"
START = pd.Timestamp("2021-05-19 06:00", tz="UTC")
END = pd.Timestamp("2021-05-19 15:00", tz="UTC")  # exclusive
SYMBOLS = ("BTC", "ETH", "XRP", "LTC", "ADA")
"""BTC first (the detector's price), then the alts of its breadth; all are perps of the hourly sample."""
LIQ_RULE = "longs = 1% of BTC's quote volume x (1 + 100 x the minute's fall), shorts likewise with its rise"


def minutes_file() -> Path:
    """The shipped minute sample (source checkout only, like the hourly sample)."""
    from riskd.testing.sample import bundled

    return bundled(MINUTES_FILE, "make_minutes_sample.py")


def load_minutes(path: Path | None = None) -> dict[str, pd.DataFrame]:
    """Symbol → 1-minute bars (open, high, low, close, volume) on the demo's grid; 5-minute bars spread
    over their five minutes (linear close, volume split evenly)."""
    raw = pd.read_csv(path or minutes_file(), parse_dates=["ts"])
    grid = pd.date_range(START, END, freq="1min", inclusive="left", name="ts")
    out = {}
    for sym in SYMBOLS:
        bars = raw[raw["symbol"] == sym].set_index("ts").sort_index()
        if bars.empty:
            raise DataError(f"{MINUTES_FILE}: no bars for {sym}")
        if (bars["resolution"] == "5m").all():
            bars = _spread(bars)
        out[sym] = bars[["open", "high", "low", "close", "volume"]].reindex(grid).ffill()
    return out


def _spread(bars: pd.DataFrame) -> pd.DataFrame:
    """5-minute bars → five 1-minute bars each: the close moves linearly from open to close."""
    step = np.arange(1, 6) / 5.0
    o, c = bars["open"].to_numpy()[:, None], bars["close"].to_numpy()[:, None]
    closes = o + (c - o) * step
    opens = np.concatenate([o, closes[:, :-1]], axis=1)
    index = pd.DatetimeIndex(np.repeat(bars.index, 5), name="ts") + pd.to_timedelta(
        np.tile(np.arange(5), len(bars)), unit="min"
    )
    frame = pd.DataFrame(
        {
            "open": opens.ravel(),
            "close": closes.ravel(),
            "volume": np.repeat(bars["volume"].to_numpy() / 5, 5),
        },
        index=index,
    )
    frame["high"] = frame[["open", "close"]].max(axis=1)
    frame["low"] = frame[["open", "close"]].min(axis=1)
    return frame


def synthetic_liquidations(btc: pd.DataFrame) -> pd.DataFrame:
    """The stated rule (``LIQ_RULE``): minutes × (long_usd, short_usd)."""
    r = (btc["close"] / btc["open"] - 1.0).fillna(0.0)
    qv = (btc["volume"] * btc["close"]).fillna(0.0)
    return pd.DataFrame(
        {
            "long_usd": 0.01 * qv * (1 + 100 * np.maximum(0.0, -r)),
            "short_usd": 0.01 * qv * (1 + 100 * np.maximum(0.0, r)),
        }
    )


def minute_settings(settings: Settings, data_dir: Path, base_url: str) -> Settings:
    """The demo's settings (see :func:`riskd.commands.demo.hourly.demo_settings`) with the minute side on: Binance only
    (the synthetic stream would otherwise be counted twice), the demo's symbols, fast ticks."""
    from riskd.commands.demo.common import demo_settings

    cfg = demo_settings(settings, data_dir, base_url, list(SYMBOLS))
    streams = cfg.streams.model_copy(
        update={
            "enabled": True,
            "venues": ["binance"],
            "candle_venue": "binance",
            "candle_symbols": list(SYMBOLS),
            "tick_s": 0.02,
            "backoff_initial_s": 0.05,
            "backoff_max_s": 0.5,
            "close_grace_s": 0.0,
        }
    )
    return cfg.model_copy(update={"streams": streams})


def hourly_snapshots(sample_root: Path, cfg: Settings) -> dict[pd.Timestamp, Any]:
    """The hours of the demo as the hourly daemon publishes them: the batch path over the bundled hourly
    sample (live = batch is riskd's promise, tested elsewhere), keyed by ``as_of``."""
    from riskd.contract.snapshot import snapshots_of
    from riskd.core import compute_fragility
    from riskd.market import store_panel
    from riskd.testing.sample import load_sample_store

    store = load_sample_store(sample_root)
    panel = store_panel(store, cfg.fragility, cfg.universe.symbols, ["binance"], END - pd.Timedelta(hours=1))
    if panel is None:
        raise DataError("the hourly sample holds no BTC candles")
    frame = compute_fragility(panel, cfg.fragility)
    frame = frame[frame.index >= START - pd.Timedelta(hours=1)]
    snaps = snapshots_of(frame, computed_at=END.to_pydatetime())
    return {pd.Timestamp(s.as_of): s for s in snaps}


async def run_minute_demo(settings: Settings, *, out: TextIO = sys.stdout) -> int:
    """Replay the day minute by minute; returns the exit status (0 once an alert fired and settled)."""
    from riskd.alerting.pipeline import AlertPipeline
    from riskd.clock import SimClock
    from riskd.commands.demo.common import forget, sample_history
    from riskd.daemon.wiring import resolve_redis
    from riskd.sinks.redis import client_from_settings
    from riskd.store import HistoryStore
    from riskd.streams.task import MinuteStreams
    from riskd.testing.fake_exchange import FakeExchange

    bars = load_minutes()
    liqs = synthetic_liquidations(bars["BTC"])
    with tempfile.TemporaryDirectory(prefix="riskd-demo-minutes-") as tmp:
        history, _ = sample_history(Path(tmp) / "sample")
        clock = SimClock(START)
        async with FakeExchange(history, now=clock.now) as fx:
            cfg = minute_settings(settings, Path(tmp) / "data", fx.base_url)
            hours = hourly_snapshots(Path(tmp) / "sample", cfg)
            url, embedded = resolve_redis(cfg)
            client = client_from_settings(cfg.redis, url)
            prefix = cfg.redis.key_prefix
            channel = _Recording(out)
            pipeline = AlertPipeline.from_settings(
                client, channel, cfg, poll_s=0.02, clock=lambda: clock.now().timestamp()
            )
            pipeline.start()
            streams = MinuteStreams(
                cfg, client=client, pipeline=pipeline, clock=clock, store=HistoryStore(cfg.store_dir)
            )
            stop = asyncio.Event()
            task = asyncio.create_task(streams.run(stop))
            try:
                await fx.ws.wait_connected("binance", 2, within_s=30.0)
                print(
                    f"riskd demo --minutes: 2021-05-19 {START:%H:%M}-{END:%H:%M} UTC, real Binance spot bars "
                    f"(1 m: BTC, ETH; 5 m spread to minutes: XRP, LTC, ADA) over ccxt.pro websockets; "
                    f"SYNTHETIC liquidations ({LIQ_RULE}). Redis {url.split('@')[-1]} key {prefix}:regime:live",
                    file=out,
                    flush=True,
                )
                report = await _replay(bars, liqs, hours, fx, clock, streams, client, cfg, pipeline, channel)
                await _drain(pipeline)
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
                await pipeline.stop(grace_s=2)
                if prefix != settings.redis.key_prefix:
                    await forget(client, prefix)
                await client.aclose()
                if embedded is not None:
                    embedded.stop()
    return _summary(report, out)


async def _replay(
    bars: dict[str, pd.DataFrame],
    liqs: pd.DataFrame,
    hours: dict[pd.Timestamp, Any],
    fx: Any,
    clock: Any,
    streams: Any,
    client: Any,
    cfg: Settings,
    pipeline: Any,
    channel: _Recording,
) -> list[dict[str, Any]]:
    """Push every minute, publish every hour at its close; one report row per hour."""
    from riskd.alerting.feed import AlertFeed
    from riskd.sinks.redis import RedisSink
    from riskd.testing.fake_exchange._ws import Liquidation

    sink = RedisSink(client, cfg.redis)
    feed = AlertFeed(
        client,
        cfg.redis.key_prefix,
        pipeline,
        clock=lambda: clock.now().to_pydatetime(),
        lookback=timedelta(hours=6),
    )
    await sink.publish(hours[START])  # the hour before the replay: the first one's "previous"
    keys = Keys(cfg.redis.key_prefix)
    newest = await client.xrevrange(keys.history, count=1)
    await client.set(keys.alert_cursor, newest[0][0])  # already known: no catch-up alert for it
    rows: list[dict[str, Any]] = []
    fired: dict[str, Any] = {}
    for m in pd.date_range(START, END, freq="1min", inclusive="left"):
        frame = {
            f"{s}USDT": tuple(float(x) for x in bars[s].loc[m, ["open", "high", "low", "close", "volume"]])
            for s in SYMBOLS
        }
        ms = int(m.value // 1_000_000)
        btc = float(bars["BTC"].loc[m, "close"])
        events = [
            Liquidation("BTCUSDT", side, btc, float(liqs.loc[m, col]) / btc, ms + 30_000)
            for side, col in (("sell", "long_usd"), ("buy", "short_usd"))
            if liqs.loc[m, col] > 0
        ]
        clock.set(m + pd.Timedelta(seconds=61))
        await fx.ws.push_minute(m, frame, events)
        await _until(lambda ms=ms: streams.next_minute is not None and streams.next_minute > ms)
        live = await _live(client, cfg.redis.key_prefix)
        if live and live.get("fired_at") and "at" not in fired:
            fired = {"at": pd.Timestamp(live["fired_at"]), "level": live["provisional_level"]}
        end = m + pd.Timedelta(minutes=1)
        if end.minute == 0:
            rows.append(await _close_hour(end, fired, hours, sink, feed, clock, streams, bars, channel))
            fired = {}
    return rows


async def _close_hour(
    end: pd.Timestamp,
    fired: dict[str, Any],
    hours: dict[pd.Timestamp, Any],
    sink: Any,
    feed: Any,
    clock: Any,
    streams: Any,
    bars: dict[str, pd.DataFrame],
    channel: _Recording,
) -> dict[str, Any]:
    """The hour closes: publish it as the hourly daemon would, derive its alerts, let the minute side
    confirm or retract; print one line."""
    snap = hours[end]
    await sink.publish(snap)
    clock.set(end + pd.Timedelta(seconds=20))
    await feed.run()
    await _until(lambda: int(end.value // 1_000_000) not in streams.episodes.open, within_s=20.0)
    btc = bars["BTC"]
    ret = btc.loc[end - pd.Timedelta(minutes=1), "close"] / btc.loc[end - pd.Timedelta(hours=1), "open"] - 1
    outcome = (streams.last_outcome or {}).get("outcome") if fired else None
    lead = int((end - fired["at"]).total_seconds() // 60) if fired else None
    hour = f"{end - pd.Timedelta(hours=1):%H:%M}-{end:%H:%M} UTC"
    line = f"{hour}  BTC {ret:+6.1%}  hourly: {snap.state}, level {snap.cascade_level}"
    sent = channel.developing(end)
    if fired:
        line += f"  | provisional {fired['level']} at {fired['at']:%H:%M}, {lead} min before the close -> {outcome}"
        line += (
            "" if sent else " (its alert held back by alerts.cooldown_s: an earlier one is still in cooldown)"
        )
    else:
        line += "  | no provisional alert"
    print(f">> {line}", file=channel.out, flush=True)
    return {
        "end": end,
        "ret": ret,
        "fired": fired,
        "lead": lead,
        "outcome": outcome,
        "level": snap.cascade_level,
        "state": snap.state,
        "sent": sent,
    }


class _Recording(ConsoleChannel):
    """The console channel, remembering which hours' "cascade developing" alerts it printed."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(out)
        self.out = out
        self.texts: list[str] = []

    async def send(
        self, dest: str, text: str, *, silent: bool, chart: bytes | None, reply_to: str | None = None
    ) -> str:
        self.texts.append(text)
        return await super().send(dest, text, silent=silent, chart=chart, reply_to=reply_to)

    def developing(self, end: pd.Timestamp) -> bool:
        """Whether the provisional alert of the hour ending ``end`` was printed."""
        return any("Cascade developing" in t and f"Hour ending {end:%Y-%m-%d %H:%M}" in t for t in self.texts)


async def _live(client: Any, prefix: str) -> dict[str, Any] | None:
    import json

    raw = await client.get(Keys(prefix).live)
    return json.loads(raw) if raw else None


async def _until(cond: Any, within_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not cond():
        if loop.time() > deadline:
            raise DataError("the minute side did not keep up with the demo (is Redis answering?)")
        await asyncio.sleep(0.005)


async def _drain(pipeline: Any) -> None:
    from riskd.daemon.wiring import drain_outbox

    await drain_outbox(pipeline, 10.0)


def _summary(rows: list[dict[str, Any]], out: TextIO) -> int:
    fired = [r for r in rows if r["fired"]]
    confirmed = [r for r in fired if r["outcome"] == "confirmed"]
    print(
        f"\n{len(rows)} hours replayed at minute resolution; provisional alerts in {len(fired)} "
        f"({len(confirmed)} confirmed at the hour close, {len(fired) - len(confirmed)} retracted)",
        file=out,
        flush=True,
    )
    for r in confirmed:
        how = "alert sent" if r["sent"] else "alert held back by the cooldown of an earlier one"
        print(
            f"  hour ending {r['end']:%H:%M} UTC (BTC {r['ret']:+.1%}; hourly {r['state']}, level {r['level']}): "
            f"provisional {r['fired']['level']} {r['lead']} minutes before the close ({how})",
            file=out,
            flush=True,
        )
    print(f"Liquidations in this demo are SYNTHETIC: {LIQ_RULE}.", file=out, flush=True)
    return 0 if confirmed else 1
