"""Webhook faults (issue 19, case 5): three receivers — one answering 500, one down, one healthy — beside a
real daemon through a planted cascade. The healthy one must not wait on the others."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from aiohttp import web
from faultkit import HOUR, T0, assert_kept, market, rig

from riskd.daemon.embedded import free_port
from riskd.sinks.webhook import ALERT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

pytestmark = pytest.mark.slow

CASCADE = T0 + 10 * HOUR
SECRET = "fault-suite-webhook-secret"


class ThreadedReceiver:
    """A webhook receiver on its own loop and thread: answers ``status`` to everything, records what a
    2xx accepted, with the time it arrived."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.snapshots: list[tuple[float, dict[str, Any]]] = []
        self.alerts: list[tuple[str, dict[str, Any]]] = []
        self.bad = 0
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        ts = request.headers.get(TIMESTAMP_HEADER, "")
        if not ts.isdigit() or not verify(
            SECRET.encode(), ts, body, request.headers.get(SIGNATURE_HEADER, "")
        ):
            self.bad += 1
            return web.Response(status=401)
        if self.status >= 300:
            return web.Response(status=self.status)
        payload = json.loads(body)
        if payload.get("type") == "alert":
            self.alerts.append((request.headers.get(ALERT_ID_HEADER, ""), payload))
        else:
            self.snapshots.append((time.monotonic(), payload))
        return web.Response(status=204)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            app = web.Application()
            app.router.add_post("/hook", self._handle)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}/hook"
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    def start(self) -> ThreadedReceiver:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def _has(receiver: ThreadedReceiver, as_of: pd.Timestamp) -> bool:
    return any(pd.Timestamp(s["as_of"]) == as_of for _, s in list(receiver.snapshots))


def test_a_failing_and_a_dead_webhook_never_hold_the_healthy_one_back(
    fault_tmp: Path, record: dict[str, Any]
) -> None:
    """With one receiver answering 500 and one down throughout, the healthy receiver gets every hour's
    snapshot within seconds of its publication and every alert the published hours imply, each once by
    ``alert_id`` (it once got 2 snapshots of 121 and 4-5 alerts of ~23, 14 s apart)."""
    failing, healthy = ThreadedReceiver(500).start(), ThreadedReceiver(204).start()
    down = f"http://127.0.0.1:{free_port()}/hook"
    hooks = {
        "urls": [failing.url, down, healthy.url],
        "secret": SECRET,
        "attempts": 50,
        "initial_backoff_s": 1.0,
        "timeout_s": 2.0,
    }
    try:
        with rig(fault_tmp, market(CASCADE)) as r:
            r.start_daemon(webhook=hooks)
            behind: list[str] = []
            for hour in pd.date_range(T0, CASCADE + 8 * HOUR, freq="h"):
                r.advance(hour)
                deadline = time.monotonic() + 5.0
                while time.monotonic() < deadline and not _has(healthy, hour + HOUR):
                    time.sleep(0.02)
                if not _has(healthy, hour + HOUR):
                    behind.append(f"{hour + HOUR:%m-%d %H:%M}")
            r.wait_alerts_settled(timeout=40)
            time.sleep(3.0)  # the healthy receiver's own outbox drains independently of Telegram's
            log = r.daemons[0].log()
            v = r.judge()
            if "/hook" in log:
                v.add("a receiver's URL reached the log (URLs may carry secrets: the log names url ids)")
            record.update(v.as_dict())
            if behind:
                v.add(
                    f"the healthy receiver lacked {len(behind)} hour(s) 5 s after publication: {behind[:6]}"
                )
            expected = {(k, t) for k, t, _ in r.expected_alerts}
            got_keys = [
                (p["alert"]["kind"], f"{pd.Timestamp(p['alert']['as_of']):%Y-%m-%d %H:%M}")
                for _, p in healthy.alerts
            ]
            missing = sorted(expected - set(got_keys))
            if missing:
                v.alerts_lost += len(missing)
                v.add(f"the healthy receiver never got {len(missing)} alert(s): {missing}")
            ids = [p["alert_id"] for _, p in healthy.alerts]
            if len(ids) != len(set(ids)):
                v.duplicates += len(ids) - len(set(ids))
                v.add("the healthy receiver got an alert_id twice")
            if any(h != p["alert_id"] for h, p in healthy.alerts):
                v.add("X-Riskd-Alert-Id differs from the body's alert_id")
            if healthy.bad or failing.bad:
                v.add(f"{healthy.bad + failing.bad} request(s) failed signature or integer-timestamp checks")
            assert_kept(v, r)
    finally:
        failing.stop()
        healthy.stop()
