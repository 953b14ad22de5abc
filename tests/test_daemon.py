"""The daemon end to end: real ccxt against the fake exchange, real Redis, real HTTP scrapes."""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import pandas as pd
import redis.asyncio as aioredis

from riskd.clock import SimClock
from riskd.config import Settings
from riskd.contract.keys import Keys
from riskd.contract.models import Snapshot
from riskd.contract.snapshot import snapshots_of
from riskd.core import compute_fragility
from riskd.daemon.embedded import RedisServer
from riskd.daemon.wiring import Runtime, drain_outbox, runtime
from riskd.market import store_panel
from riskd.sinks.metrics import parse_exposition
from riskd.sinks.redis import read_history
from riskd.store import HistoryStore
from riskd.testing.fake_exchange import FakeExchange
from riskd.testing.synthetic import MarketHistory, synthetic_market
from tests.helpers import fake_settings

SYMS = ["BTC", "ETH", "SOL", "XRP", "DOGE"]
VENUES = ("binance", "bybit", "hyperliquid")
T0 = pd.Timestamp("2024-03-01", tz="UTC")
HOUR = pd.Timedelta(hours=1)
GRACE = pd.Timedelta(seconds=20)
CASCADE = T0 + 30 * HOUR


def _market(hours_after: int = 80) -> MarketHistory:
    return synthetic_market(
        SYMS,
        T0 - pd.Timedelta(days=12),
        hours=12 * 24 + hours_after,
        seed=3,
        cascades=[(CASCADE, 0.07, 6.0, None)],
        funding_intervals={"DOGE": 4},
    )


class Recorder:
    """An alert channel that keeps what it was asked to deliver (stands in for the console)."""

    name = "console"
    max_per_minute: int | None = None

    def __init__(self) -> None:
        self.destinations = ["rec"]
        self.sent: list[str] = []

    async def send(self, dest: str, text: str, *, silent: bool, chart: bytes | None) -> str:
        self.sent.append(text)
        return str(len(self.sent))

    async def aclose(self) -> None:
        return None


def _settings(tmp: Path, fx: FakeExchange, redis_url: str, prefix: str, **extra: object) -> Settings:
    """The daemon on the fake exchange: 10 days of warm-up, a 2 s lease, CFI v2 ranked within the warm-up."""
    return fake_settings(
        tmp,
        fx,
        universe={"symbols": SYMS},
        redis={"url": redis_url, "key_prefix": prefix, "socket_timeout_s": 0.5},
        daemon={"warmup_hours": 24 * 10, "grace_s": GRACE.total_seconds(), "lease_ttl_s": 2.0, **extra},
        fragility={"cfi_v2": {"rank_min_history": 24}},
    )


@contextlib.asynccontextmanager
async def _live_daemon(
    tmp_path: Path, redis_url: str, prefix: str, hours_after: int = 80
) -> AsyncIterator[tuple[Runtime, SimClock, Settings]]:
    """A loaded riskd runtime on a simulated clock at T0, against the fake exchange serving ``_market``."""
    clock = SimClock(T0)
    async with FakeExchange(_market(hours_after), now=clock.now) as fx:
        settings = _settings(tmp_path, fx, redis_url, prefix)
        async with runtime(settings, clock=clock, channel=Recorder(), commands=False) as rt:
            rt.daemon.load()
            yield rt, clock, settings


async def _drive(rt, clock: SimClock, hours: list[pd.Timestamp]) -> list[Snapshot]:
    """Run the cycle at each hour's close plus grace, as the scheduler would."""
    out: list[Snapshot] = []
    for hour in hours:
        clock.set(hour + HOUR + GRACE)
        await rt.daemon.sinks.lease.tick()
        out += await rt.daemon.run_once()
    return out


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


def _assert_matches_batch(snaps: list[Snapshot], settings: Settings, venues: tuple[str, ...]) -> None:
    store = HistoryStore(settings.store_dir)
    last = pd.Timestamp(snaps[-1].as_of) - HOUR
    panel = store_panel(store, settings.fragility, SYMS, venues, last)
    frame = compute_fragility(panel, settings.fragility)
    batch = {s.as_of: s for s in snapshots_of(frame, computed_at=snaps[-1].computed_at)}
    for s in snaps:
        b = batch[s.as_of]
        assert (s.state, s.risk_multiplier, s.cascade_level, s.episode_id, s.cfi_quintile) == (
            b.state,
            b.risk_multiplier,
            b.cascade_level,
            b.episode_id,
            b.cfi_quintile,
        ), s.as_of
        assert _close(s.cfi, b.cfi), s.as_of
        assert _close(s.cfi_percentile, b.cfi_percentile), s.as_of
        for name, value in b.features.items():
            assert _close(s.features[name], value), (s.as_of, name, s.features[name], value)


async def test_live_hours_equal_the_batch_computation(tmp_path: Path, redis_url: str, prefix: str) -> None:
    """Hour by hour the live daemon publishes exactly what the batch path computes over the same history."""
    async with _live_daemon(tmp_path, redis_url, prefix) as (rt, clock, settings):
        snaps = await _drive(rt, clock, list(pd.date_range(T0, T0 + 60 * HOUR, freq="h")))
        stream = await read_history(rt.client, prefix, 1000)
        key = Snapshot.model_validate_json(await rt.client.get(Keys(prefix).regime))
    assert len(snaps) == 61
    assert [s.as_of for s in stream] == [s.as_of for s in snaps]  # every hour in the stream, in order
    assert key == snaps[-1]
    assert any(s.cascade_level != "none" for s in snaps)  # the planted cascade is in the window
    assert all(s.data_quality.status == "ok" for s in snaps)
    _assert_matches_batch(snaps, settings, VENUES)


async def test_the_liquidation_record_enters_live_hours_as_the_batch_reads_it(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """With ``fragility.liquidations.enabled`` the daemon reads each hour's record from the store (where
    the minute streams write it at the hour) and publishes what the batch path computes from the same
    store, the liquidation figures and CFI v2 included; a venue's gap hour has no figure, only coverage."""
    from riskd.core.liquidations import MINUTE_COLUMNS

    clock = SimClock(T0)
    async with FakeExchange(_market(), now=clock.now) as fx:
        base = _settings(tmp_path, fx, redis_url, prefix)
        liq = base.fragility.liquidations.model_copy(
            update={"enabled": True, "window_hours": 24, "min_periods": 6}
        )
        settings = base.model_copy(
            update={"fragility": base.fragility.model_copy(update={"liquidations": liq})}
        )
        minutes = pd.date_range(T0 - 24 * HOUR, T0 + 13 * HOUR, freq="1min", inclusive="left", name="ts")
        rng = np.random.default_rng(2)
        store = HistoryStore(settings.store_dir)
        for venue in ("binance", "bybit"):
            longs, shorts = rng.lognormal(9, 1, len(minutes)), rng.lognormal(8.5, 1, len(minutes))
            frame = pd.DataFrame(
                {
                    "events": 2.0,
                    "notional_usd": longs + shorts,
                    "long_usd": longs,
                    "short_usd": shorts,
                    "max_usd": longs,
                    "coverage": 1.0,
                },
                index=minutes,
            )
            if venue == "bybit":
                frame = frame[frame.index.floor("h") != T0 + 5 * HOUR]  # bybit's stream down for one hour
            store.append("liquidations", venue, "ALL", frame[list(MINUTE_COLUMNS)])
        async with runtime(settings, clock=clock, channel=Recorder(), commands=False) as rt:
            rt.daemon.load()
            snaps = await _drive(rt, clock, list(pd.date_range(T0, T0 + 12 * HOUR, freq="h")))
    _assert_matches_batch(snaps, settings, VENUES)
    by_hour = {s.as_of: s for s in snaps}
    assert by_hour[T0 + 6 * HOUR].features["liq_coverage"] == 0.5  # the hour opened at T0+5h
    assert by_hour[T0 + 6 * HOUR].features["liq_notional_usd"] is None
    assert by_hour[T0 + 8 * HOUR].features["liq_coverage"] == 1.0
    assert by_hour[T0 + 8 * HOUR].features["liq_notional_z"] is not None


async def test_metrics_scrape_carries_every_documented_metric(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """After live cycles, an HTTP scrape has every metric of docs/metrics.md with sane values."""
    async with _live_daemon(tmp_path, redis_url, prefix, hours_after=40) as (rt, clock, _):
        await _drive(rt, clock, list(pd.date_range(T0, T0 + 3 * HOUR, freq="h")))
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{rt.server.port}/metrics") as r:
            assert r.status == 200
            m = parse_exposition(await r.text())
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{rt.server.port}/healthz") as r:
            assert r.status == 200
    doc = (Path(__file__).parents[1] / "docs/metrics.md").read_text()
    hourly = doc.split("## Streams")[0]  # the minute side's metrics exist only with streams.enabled
    documented = re.findall(r"^\| `(riskd_[a-z0-9_]+)`", hourly, re.M)
    names = {k[0] for k in m}
    for name in documented:
        assert {name, f"{name}_total", f"{name}_count"} & names, f"{name} missing from the scrape"
    value = lambda n, **lab: m[(n, tuple(sorted(lab.items())))]  # noqa: E731  (a one-line local helper reads best as a lambda)
    assert 0 <= value("riskd_cfi_percentile_ratio") <= 1
    assert 0 <= value("riskd_risk_multiplier_ratio") <= 1
    assert value("riskd_regime_state") in {0, 1, 2, 3, 4}
    assert value("riskd_leader") == 1
    assert value("riskd_cycle_duration_seconds_count") == 4
    for pair in ("binance-bybit", "binance-hyperliquid", "binance-others"):
        assert math.isfinite(value("riskd_funding_gap_hourly_ratio", venue_pair=pair))
    assert value("riskd_exchange_requests_total", venue="binance", endpoint="klines", outcome="ok") > 0
    assert 0 <= value("riskd_data_age_seconds", venue="binance", dataset="ohlcv") <= 2 * 3600


async def test_redis_outage_keeps_computing_and_the_stream_gets_every_hour(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Redis stopped mid-run: cycles go on (metrics fresh); after restart the stream holds every hour."""
    history = _market(hours_after=40)
    clock = SimClock(T0)
    prefix = "riskd:v1"
    async with FakeExchange(history, now=clock.now) as fx:
        settings = _settings(tmp_path, fx, redis_server.url, prefix)
        async with runtime(settings, clock=clock, channel=Recorder(), commands=False) as rt:
            rt.daemon.load()
            hours = list(pd.date_range(T0, T0 + 11 * HOUR, freq="h"))
            before = await _drive(rt, clock, hours[:4])
            redis_server.stop()
            during = await _drive(rt, clock, hours[4:8])
            assert [s.as_of for s in during] == [h + HOUR for h in hours[4:8]]  # still computing
            assert rt.metrics.state.snapshot == during[-1]  # and still exposing the newest hour
            assert rt.daemon.sinks.redis.pending == 4
            redis_server.start()
            after = await _drive(rt, clock, hours[8:])
            client = aioredis.Redis.from_url(redis_server.url)
            stream = await read_history(client, prefix, 100)
            await client.aclose()
    assert [s.as_of for s in stream] == [s.as_of for s in before + during + after]


async def test_standby_takes_over_and_alerts_are_never_doubled(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """Two replicas, one Redis: one leads; after its death the other leads within the lease; no alert twice."""
    history = _market()
    clock = SimClock(T0)
    rec_a, rec_b = Recorder(), Recorder()
    async with FakeExchange(history, now=clock.now) as fx:
        sa = _settings(tmp_path / "a", fx, redis_url, prefix, instance_id="a")
        sb = _settings(tmp_path / "b", fx, redis_url, prefix, instance_id="b")
        async with (
            runtime(sa, clock=clock, channel=rec_a, commands=False) as a,
            runtime(sb, clock=clock, channel=rec_b, commands=False) as b,
        ):
            a.daemon.load()
            b.daemon.load()
            hours = list(pd.date_range(T0 + 20 * HOUR, T0 + 40 * HOUR, freq="h"))
            for hour in hours[:10]:  # the planted cascade at T0+30h falls after a's death
                clock.set(hour + HOUR + GRACE)
                assert await a.daemon.sinks.lease.tick() is True
                assert await b.daemon.sinks.lease.tick() is False
                await a.daemon.run_once()
                await b.daemon.run_once()
            await a.pipeline.stop(grace_s=5)  # a dies: no more cycles, no renewals
            await asyncio.sleep(2.2)  # the lease lapses (ttl 2 s)
            for hour in hours[10:]:
                clock.set(hour + HOUR + GRACE)
                await b.daemon.sinks.lease.tick()
                assert b.daemon.sinks.lease.is_leader
                await b.daemon.run_once()
            b.pipeline.start()
            await drain_outbox(b.pipeline, 10)
            stream = await read_history(b.client, prefix, 100)
    assert [s.as_of for s in stream] == [h + HOUR for h in hours]  # no hour lost at the takeover
    delivered = rec_a.sent + rec_b.sent
    assert rec_b.sent, "the new leader alerted on the cascade"
    assert len(delivered) == len(set(delivered))
    assert not rec_a.sent[len(rec_a.sent) :]  # nothing from the dead replica after its death


async def test_a_standby_started_later_ranks_from_the_leaders_origin(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """CFI v2 ranks against the whole past, so a standby whose warm-up starts later would publish other
    values at a takeover. The first replica fixes the history origin in Redis; one started 5 hours later
    backfills from it and computes the very same hours, bit for bit."""
    clock = SimClock(T0)
    async with FakeExchange(_market(), now=clock.now) as fx:
        sa = _settings(tmp_path / "a", fx, redis_url, prefix, instance_id="a")
        sb = _settings(tmp_path / "b", fx, redis_url, prefix, instance_id="b")
        async with runtime(sa, clock=clock, channel=Recorder(), commands=False) as a:
            a.daemon.load()
            led = {
                s.as_of: s for s in await _drive(a, clock, list(pd.date_range(T0, T0 + 9 * HOUR, freq="h")))
            }
            async with runtime(sb, clock=clock, channel=Recorder(), commands=False) as b:
                b.daemon.load()
                later = await _drive(b, clock, [T0 + 9 * HOUR])  # b's cold start, 10 hours after a's
                late = {s.as_of: s for s in await _drive(b, clock, [T0 + 10 * HOUR])}
                led |= {s.as_of: s for s in await _drive(a, clock, [T0 + 10 * HOUR])}
            origin = await a.client.get(Keys(prefix).history_origin)
    assert b.daemon.origin == a.daemon.origin == pd.Timestamp(origin.decode())
    assert a.daemon.origin == T0 - pd.Timedelta(hours=sa.daemon.warmup_hours)  # a's first newest hour: T0
    b_first = HistoryStore(sb.store_dir).read("ohlcv", "binance", "BTC").index[0]
    assert b_first == a.daemon.origin, "the standby backfilled from the shared origin"
    for s in later + list(late.values()):
        ours = led[s.as_of]
        assert s.cfi is not None, s.as_of
        assert _close(s.cfi, ours.cfi), (s.as_of, s.cfi, ours.cfi)
        assert _close(s.cfi_percentile, ours.cfi_percentile), s.as_of
        assert s.features == ours.features, s.as_of


async def test_restart_after_downtime_computes_missed_hours_in_order(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """Down for 6 hours across the cascade: the restart computes them in order, as late, still equal to batch."""
    history = _market()
    clock = SimClock(T0)
    rec = Recorder()
    async with FakeExchange(history, now=clock.now) as fx:
        settings = _settings(tmp_path, fx, redis_url, prefix)
        async with runtime(settings, clock=clock, channel=Recorder(), commands=False) as rt:
            rt.daemon.load()
            first = await _drive(rt, clock, list(pd.date_range(T0 + 20 * HOUR, T0 + 26 * HOUR, freq="h")))
        # the process is gone from T0+27h to T0+33h; it comes back at T0+33h's close
        async with runtime(settings, clock=clock, channel=rec, commands=False) as rt:
            rt.daemon.load()
            assert rt.daemon.state.last_ts == T0 + 26 * HOUR  # resumed from the saved state
            rt.pipeline.start()
            back = await _drive(rt, clock, [T0 + 33 * HOUR])
            await drain_outbox(rt.pipeline, 10)
            stream = await read_history(rt.client, prefix, 100)
    assert [s.as_of for s in back] == [T0 + h * HOUR for h in range(28, 35)]  # every missed hour, in order
    assert [s.live for s in back] == [False] * 6 + [True]
    assert [s.as_of for s in stream] == [s.as_of for s in first + back]
    cascade = [t for t in rec.sent if "Cascade started" in t]
    assert cascade, "the cascade during the downtime is reported"
    assert all(re.search(r"LATE by \d+ h", t) for t in cascade), cascade  # and says how late it is
    _assert_matches_batch(first + back, settings, VENUES)


async def test_a_failing_store_write_does_not_stop_publishing_and_lands_later(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """The history store writes after the key: a store that cannot be written (here a file where a
    partition folder must go, as a full or broken disk would) leaves the hours published, logs it,
    keeps the rows, and writes them once the store works again — no hour is missing from it."""
    async with _live_daemon(tmp_path, redis_url, prefix) as (rt, clock, settings):
        await _drive(rt, clock, [T0])
        blocker = settings.store_dir / "dataset=ohlcv" / "venue=binance" / "symbol=ETH"
        saved = blocker.with_name("saved-ETH")
        blocker.rename(saved)
        blocker.write_text("not a folder")
        snaps = await _drive(rt, clock, [T0 + HOUR, T0 + 2 * HOUR])
        assert [s.as_of for s in snaps] == [T0 + 2 * HOUR, T0 + 3 * HOUR]  # published all the same
        key = Snapshot.model_validate_json(await rt.client.get(Keys(prefix).regime))
        assert key.as_of == T0 + 3 * HOUR
        assert any(d == "ohlcv" and s == "ETH" for d, _, s, _ in rt.daemon.unsaved)
        store = HistoryStore(settings.store_dir)
        assert store.last_ts("ohlcv", "binance", "BTC") == T0 + 2 * HOUR  # the others were written
        blocker.unlink()
        saved.rename(blocker)
        await _drive(rt, clock, [T0 + 3 * HOUR])
        assert rt.daemon.unsaved == []
    eth = HistoryStore(settings.store_dir).read("ohlcv", "binance", "ETH", T0 - 48 * HOUR, T0 + 4 * HOUR)
    expected = pd.date_range(T0 - 48 * HOUR, T0 + 3 * HOUR, freq="h", tz="UTC")
    assert list(eth.index) == list(expected)
