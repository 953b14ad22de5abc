"""``riskd demo``: the live daemon through the May 2021 crash in under a minute, on one machine.

It serves the bundled real sample (Binance perps, 2021-04-20 .. 2021-06-10) from the loopback fake
exchange, points the real ccxt clients at it, uses Redis (the configured one, one on localhost:6379
under a separate ``riskd-demo:v1`` prefix, or an embedded server), starts the metrics server, and
runs the *live* daemon on a simulated clock that passes hours in fractions of a second. Each hour is
printed as it is published; alerts go to the console unless a Telegram token is configured. It holds
the leader lease of its prefix and renews it until it exits, like ``riskd run``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from riskd.client import aread_regime
from riskd.clock import SimClock
from riskd.commands.demo.common import demo_settings, forget, sample_history
from riskd.config import Settings
from riskd.contract.models import Snapshot
from riskd.daemon.shutdown import install_signal_handlers
from riskd.daemon.wiring import drain_outbox, runtime

log = logging.getLogger("riskd.commands.demo.hourly")

DEMO_START = pd.Timestamp("2021-05-16 00:00", tz="UTC")
DEMO_END = pd.Timestamp("2021-05-21 00:00", tz="UTC")


def _line(snap: Snapshot) -> str:
    f = snap.features
    ret = f.get("btc_ret_1h")
    cfi = f"{snap.cfi:+.2f}" if snap.cfi is not None else "  n/a"
    pct = f"{snap.cfi_percentile:.2f}" if snap.cfi_percentile is not None else "n/a"
    btc = f"{ret:+.1%}" if ret is not None else "n/a"
    return (
        f"{snap.as_of:%Y-%m-%d %H:%M} UTC  {snap.state:<9} x{snap.risk_multiplier:.2f}  "
        f"CFI {cfi} (pct {pct})  cascade {snap.cascade_level:<11} BTC 1h {btc:>6}  data {snap.data_quality.status}"
    )


async def run_demo(
    settings: Settings,
    *,
    start: pd.Timestamp,
    end: pd.Timestamp,
    hours_per_second: float,
    hold: bool,
    out=sys.stdout,
) -> int:
    """Run the demo; returns the exit status."""
    from riskd.testing.fake_exchange import FakeExchange

    with tempfile.TemporaryDirectory(prefix="riskd-demo-") as tmp:
        history, perps = sample_history(Path(tmp) / "sample")
        clock = SimClock(start + pd.Timedelta(seconds=settings.daemon.grace_s), speed=3600 * hours_per_second)
        stop = asyncio.Event()
        install_signal_handlers(stop, settings.daemon.shutdown_deadline_s)
        async with FakeExchange(history, now=clock.now) as fx:
            cfg = demo_settings(settings, Path(tmp) / "data", fx.base_url, perps)
            seen: list[Snapshot] = []

            def show(snap: Snapshot) -> None:
                seen.append(snap)
                print(_line(snap), file=out, flush=True)
                if snap.as_of >= end:
                    stop.set()

            async with runtime(cfg, clock=clock, commands=False) as rt:
                d = rt.daemon
                d.sinks.on_snapshot.append(show)
                await rt.start_publishing()
                # Renewed until shutdown (--hold included), so riskd_leader and /healthz match Redis.
                rt.tasks.append(asyncio.create_task(d.lease_loop(asyncio.Event()), name="riskd-demo-lease"))
                port = rt.server.port if rt.server else None
                print(
                    f"riskd demo: fake exchange {fx.base_url} serving the real May 2021 sample ({', '.join(perps)}), "
                    f"Redis {rt.url.split('@')[-1]} key {cfg.redis.key_prefix}:regime, "
                    f"metrics http://127.0.0.1:{port}/metrics — {hours_per_second:g} simulated hours per second",
                    file=out,
                    flush=True,
                )
                print(
                    f"  read it yourself: {_redis_cli(rt.url)} GET {cfg.redis.key_prefix}:regime"
                    + ("" if hold else "   (the demo's keys are deleted at the end; --hold keeps them)"),
                    file=out,
                    flush=True,
                )
                await d.run_forever(stop)
                await _summary(rt, cfg.redis.key_prefix, seen, clock.now().to_pydatetime(warn=False), out)
                if hold:
                    print("holding (Ctrl-C to stop)…", file=out, flush=True)
                    stop.clear()
                    await stop.wait()
                if cfg.redis.key_prefix != settings.redis.key_prefix:  # our own prefix on a shared Redis
                    await forget(rt.client, cfg.redis.key_prefix)
    return 0 if seen else 1


async def _summary(rt: Any, prefix: str, seen: list[Snapshot], finished: Any, out: Any) -> None:
    """The closing line: hours, regime changes, alerts, and the key read as a consumer reads it at the last
    publish (``finished``: the simulated clock runs on while alerts drain, and would make it read stale)."""
    await drain_outbox(rt.pipeline, 10.0)
    reading = await aread_regime(rt.client, prefix=prefix, now=finished)
    changes = sum(a != b for a, b in itertools.pairwise([s.state for s in seen]))
    sent = sum(_samples(rt, "riskd_alerts_sent_total").values())
    held = sum(_samples(rt, "riskd_alerts_suppressed_total").values())
    print(
        f"\n{len(seen)} hours published, {changes} regime changes, {sent:.0f} alerts sent ({held:.0f} suppressed by "
        f"cooldown/mode); read_regime -> {reading.status} {reading.state} x{reading.risk_multiplier:.2f}",
        file=out,
        flush=True,
    )


def _redis_cli(url: str) -> str:
    """The redis-cli invocation that reaches ``url`` (host, port, db; never a password)."""
    from urllib.parse import urlparse

    u = urlparse(url)
    db = (u.path or "/0").lstrip("/") or "0"
    return f"redis-cli -h {u.hostname or '127.0.0.1'} -p {u.port or 6379} -n {db}"


def _samples(rt, name: str) -> dict:
    from riskd.sinks.metrics import parse_exposition

    return {k: v for k, v in parse_exposition(rt.metrics.exposition().decode()).items() if k[0] == name}
