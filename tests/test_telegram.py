"""Telegram delivery and commands: the real python-telegram-bot client, the loopback fake, a real Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from redis.asyncio import Redis

from riskd.alerting.chart import render_chart
from riskd.alerting.pipeline import AlertPipeline
from riskd.config import AlertSettings, TelegramSettings
from riskd.contract.alerts import derive_alerts
from riskd.contract.models import Alert, Snapshot
from riskd.telegram.bot import CommandBot
from riskd.telegram.channel import ConsoleChannel, TelegramChannel, build_channel, make_bot
from riskd.telegram.commands import parse_duration
from riskd.telegram.status import RedisStatusSource
from riskd.testing.fake_telegram import FakeTelegram
from tests.helpers import snapshot

TOKEN = "123456789:AAE-secret-TOKEN-never-logged_xyz"
CHAT = 100
ADMIN = 7
STRANGER = 666
H0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
"""Alerts are about the current hour, so none reads as delayed."""
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

ALERTS = AlertSettings(cooldown_s=900.0)
"""Alerts one hour apart pass; the cooldown itself is tested with its own settings."""


def snap(hour: int, state: str = "calm", **kw: Any) -> Snapshot:
    """A snapshot ``hour`` hours after H0 (tests.helpers.snapshot, with a per-symbol funding z too)."""
    features = {"btc_return_1h": -0.084, "vol_ratio": 4.2, "funding_z": 2.1, "funding_z_BTC": 1.5}
    return snapshot(
        H0 + timedelta(hours=hour), state, **{"features": features, "components": {"funding_z": 1.2}, **kw}
    )


def hourly_alerts(n: int) -> list[Alert]:
    """``n`` distinct regime_change alerts, one per hour, alternating calm/elevated."""
    states = ["calm", "elevated"]
    return [
        derive_alerts(snap(h - 1, states[(h - 1) % 2]), snap(h, states[h % 2]), now=snap(h).as_of)[0]
        for h in range(1, n + 1)
    ]


def hour_line(alert: Alert) -> str:
    """The line naming an alert's hour (unique per alert in these tests)."""
    return f"Hour ending {alert.as_of:%Y-%m-%d %H:%M}"


def tg_settings(tg: FakeTelegram, **kw: Any) -> TelegramSettings:
    """Telegram settings pointed at the fake."""
    base: dict[str, Any] = {
        "token": TOKEN,
        "chat_ids": [CHAT],
        "allowed_ids": [ADMIN],
        "admin_ids": [ADMIN],
        "api_base_url": tg.base_url,
        "retry_interval_s": 0.5,
    }
    return TelegramSettings(**{**base, **kw})


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    """The fake Bot API on a free loopback port."""
    async with FakeTelegram(token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def channel(tg: FakeTelegram) -> AsyncIterator[TelegramChannel]:
    """The real Telegram channel (PTB Bot) talking to the fake."""
    ch = TelegramChannel(tg_settings(tg))
    yield ch
    await ch.aclose()


def telegram_pipeline(redis: Redis, prefix: str, channel: TelegramChannel, **kw: Any) -> AlertPipeline:
    """A pipeline with test-speed backoff and lease."""
    opts: dict[str, Any] = {"initial_backoff_s": 0.05, "retry_interval_s": 0.5, "lease_s": 2, "poll_s": 0.05}
    return AlertPipeline(redis, channel, alerts=ALERTS, key_prefix=prefix, **{**opts, **kw})


async def test_429_then_500_then_ok_delivers_every_alert_once(
    tg: FakeTelegram, redis: Redis, prefix: str, channel: TelegramChannel
) -> None:
    """Flood control (retry_after honoured) then a server error: each alert still arrives exactly once."""
    tg.fail_next(429, retry_after=1)
    tg.fail_next(500)
    p = telegram_pipeline(redis, prefix, channel)
    alerts = hourly_alerts(3)
    assert await p.submit(alerts) == ["queued"] * 3
    started = time.monotonic()
    p.start()
    await tg.wait_for(lambda: len(tg.delivered) == 3)
    elapsed = time.monotonic() - started
    await asyncio.sleep(0.3)
    await p.stop()
    assert tg.failures_served == [429, 500]
    assert elapsed >= 1.0  # the 429's retry_after was waited out
    assert [m.plain.splitlines()[0] for m in tg.delivered] == [
        f"🟠 WARNING · {a.title}" if a.severity == "warning" else f"🟢 INFO · {a.title}" for a in alerts
    ]
    assert len({m.plain for m in tg.delivered}) == 3
    assert p.stats.sent == {("telegram", "warning"): 2, ("telegram", "info"): 1}
    assert await p.outbox_size() == 0


async def test_silent_mode_sets_disable_notification(
    tg: FakeTelegram, redis: Redis, prefix: str, channel: TelegramChannel
) -> None:
    """cascade_end (silent by default) is sent with disable_notification; cascade_start (on) is not."""
    p = telegram_pipeline(redis, prefix, channel)
    start = derive_alerts(snap(0), snap(1, episode_id="E1"), now=snap(1).as_of)
    end = derive_alerts(snap(1, episode_id="E1"), snap(2), now=snap(2).as_of)
    await p.submit(start + end)
    while await p.deliver_next():
        pass
    assert [(m.plain.split("\n")[0][2:], m.disable_notification) for m in tg.delivered] == [
        ("WARNING · Cascade started", False),
        ("INFO · Cascade episode ended", True),
    ]


async def test_chart_goes_as_photo_with_the_alert_as_caption(
    tg: FakeTelegram, redis: Redis, prefix: str, channel: TelegramChannel
) -> None:
    """With a chart the alert is one sendPhoto: a small PNG (multipart upload) captioned by the text."""
    idx = pd.date_range(H0 - timedelta(hours=99), H0, freq="h")
    frame = pd.DataFrame(
        {"btc_close": 40000 - pd.Series(range(100), index=idx) * 50.0, "cfi": 0.02}, index=idx
    )
    png = render_chart(frame, hours=72)
    assert png.startswith(b"\x89PNG")
    assert len(png) < 100_000
    p = telegram_pipeline(redis, prefix, channel)
    await p.submit(hourly_alerts(1), chart=png)
    assert await p.deliver_next()
    (msg,) = tg.delivered
    assert msg.method == "sendPhoto"
    assert msg.photo == png
    assert "Regime calm → elevated" in msg.plain


async def test_rate_limit_spaces_messages(
    tg: FakeTelegram, redis: Redis, prefix: str, channel: TelegramChannel
) -> None:
    """With max 2 messages per window the third waits for the window to slide."""
    channel.max_per_minute = 2
    p = telegram_pipeline(redis, prefix, channel, rate_window_s=0.6)
    await p.submit(hourly_alerts(3))
    p.start()
    await tg.wait_for(lambda: len(tg.delivered) == 3)
    await p.stop()
    first, _, third = tg.delivered
    assert third.at - first.at >= 0.55


# -- kill -9 of the delivering process -------------------------------------------------------------


def spawn_delivery(tg: FakeTelegram, redis_url: str, prefix: str, log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``delivery_main`` in a fresh Python process, configured through the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKD_")}
    env.update(
        {
            "RISKD_REDIS__URL": redis_url,
            "RISKD_REDIS__KEY_PREFIX": prefix,
            "RISKD_TELEGRAM__TOKEN": TOKEN,
            "RISKD_TELEGRAM__API_BASE_URL": tg.base_url,
            "RISKD_TELEGRAM__CHAT_IDS": f"[{CHAT}]",
            "RISKD_TELEGRAM__RETRY_INTERVAL_S": "0.5",
            "RISKD_LOG_LEVEL": "DEBUG",
            "RISKD_DATA_DIR": str(log_path.parent),
        }
    )
    code = "from riskd.daemon.wiring import delivery_main; delivery_main(lease_s=2, initial_backoff_s=0.2, poll_s=0.05)"
    with log_path.open("ab") as log:
        return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log, stderr=log)


async def wait_in_backoff(redis: Redis, prefix: str) -> None:
    """Until the head item was given back after a failure (the worker now sleeps ≥ 0.4 s before retrying)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ids = await redis.zrange(f"{prefix}:alerts:due", 0, 0)
        item = await redis.hgetall(f"{prefix}:alerts:item:{ids[0].decode()}") if ids else {}
        if int(item.get(b"attempts", 0)) >= 2 and item.get(b"owner") == b"":
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the worker never backed off")


def kill9(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL, no cleanup of any kind."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(5)


async def test_kill9_during_backoff_loses_nothing_and_resends_nothing(
    tg: FakeTelegram, redis: Redis, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    """Killed while retrying, with 3 of 5 alerts unsent: the restart sends those 3, not the 2 already sent."""
    alerts = hourly_alerts(5)
    tg.pass_next(2)
    tg.fail_next(500, times=1000)
    p = AlertPipeline(redis, _Dest(), alerts=ALERTS, key_prefix=prefix)
    await p.submit(alerts)
    log = tmp_path / "delivery.log"
    proc = spawn_delivery(tg, redis_url, prefix, log)
    try:
        await tg.wait_for(lambda: len(tg.delivered) == 2 and len(tg.failures_served) >= 2, 20)
        await wait_in_backoff(redis, prefix)
        kill9(proc)
        assert await redis.zcard(f"{prefix}:alerts:due") == 3
        tg.clear_failures()
        proc = spawn_delivery(tg, redis_url, prefix, log)
        await tg.wait_for(lambda: len(tg.delivered) == 5, 20)
        await asyncio.sleep(0.5)
    finally:
        proc.kill()
        proc.wait(5)
    assert [[hour_line(a) in m.plain for a in alerts].index(True) for m in tg.delivered] == [0, 1, 2, 3, 4]
    assert not any("possibly repeated" in m.plain for m in tg.delivered)
    assert await redis.zcard(f"{prefix}:alerts:due") == 0
    assert TOKEN not in log.read_text()
    assert "alert sent channel=telegram" in log.read_text()


async def test_kill9_with_a_request_in_flight_resends_it_once_flagged(
    tg: FakeTelegram, redis: Redis, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    """Killed while a send hangs unanswered: after the lease it is sent once, headed 'possibly repeated'."""
    alerts = hourly_alerts(3)
    await AlertPipeline(redis, _Dest(), alerts=ALERTS, key_prefix=prefix).submit(alerts)
    tg.pass_next(1)
    tg.hang_next()
    log = tmp_path / "delivery.log"
    proc = spawn_delivery(tg, redis_url, prefix, log)
    try:
        await tg.wait_for(lambda: tg.hanging == 1, 20)
        kill9(proc)
        proc = spawn_delivery(tg, redis_url, prefix, log)
        await tg.wait_for(lambda: len(tg.delivered) == 3, 20)
        await asyncio.sleep(0.5)
    finally:
        proc.kill()
        proc.wait(5)
    per_alert = [[m for m in tg.delivered if hour_line(a) in m.plain] for a in alerts]
    assert [len(found) for found in per_alert] == [1, 1, 1]
    # Only the one that was in flight says so (it comes last: it waited for its lease to lapse).
    assert ["possibly repeated" in found[0].plain for found in per_alert] == [False, True, False]


async def test_kill9_after_telegram_accepted_is_the_documented_window(
    tg: FakeTelegram, redis: Redis, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    """Killed after the server accepted but before the mark: we err on delivery, the copy is flagged."""
    (alert,) = hourly_alerts(1)
    await AlertPipeline(redis, _Dest(), alerts=ALERTS, key_prefix=prefix).submit([alert])
    tg.hang_next(record=True)
    log = tmp_path / "delivery.log"
    proc = spawn_delivery(tg, redis_url, prefix, log)
    try:
        await tg.wait_for(lambda: tg.hanging == 1, 20)
        kill9(proc)
        proc = spawn_delivery(tg, redis_url, prefix, log)
        await tg.wait_for(lambda: len(tg.delivered) == 2, 20)
    finally:
        proc.kill()
        proc.wait(5)
    first, second = tg.delivered
    assert "possibly repeated" not in first.plain
    assert second.plain.startswith("[possibly repeated")


class _Dest:
    """A submit-only channel with the Telegram destination (the test process only enqueues)."""

    name = "telegram"
    max_per_minute = None

    def __init__(self) -> None:
        self.destinations = [str(CHAT)]

    async def send(self, dest: str, text: str, *, silent: bool, chart: bytes | None) -> str:
        raise AssertionError("the test process must not deliver")


# -- commands ---------------------------------------------------------------------------------------


@pytest.fixture
async def commands(
    tg: FakeTelegram, redis: Redis, prefix: str
) -> AsyncIterator[tuple[CommandBot, AlertPipeline]]:
    """The command bot polling the fake, reading Redis under ``prefix``, muting through a pipeline."""
    tgs = tg_settings(tg)
    bot = make_bot(tgs)
    pipeline = AlertPipeline(redis, _Dest(), alerts=ALERTS, key_prefix=prefix)
    cmd = CommandBot(bot, tgs, RedisStatusSource(redis, prefix, outbox=pipeline), pipeline, poll_timeout_s=1)
    cmd.start()
    yield cmd, pipeline
    await cmd.stop()
    await bot.shutdown()


async def ask(tg: FakeTelegram, text: str, *, user: int = ADMIN) -> str:
    """Send a command as ``user`` in their private chat and return the bot's answer."""
    before = len(tg.messages_to(user))
    tg.push_command(user, user, text)
    await tg.wait_for(lambda: len(tg.messages_to(user)) > before, 5)
    return tg.messages_to(user)[-1].plain


async def publish(redis: Redis, prefix: str, snaps: list[Snapshot]) -> None:
    """Write what the Redis sink writes: the regime key and the history stream."""
    for s in snaps:
        await redis.xadd(f"{prefix}:regime:history", {"json": s.to_json()})
    await redis.set(f"{prefix}:regime", snaps[-1].to_json(), ex=9000)


async def test_stranger_gets_no_answer_and_is_logged(
    tg: FakeTelegram, commands: tuple[CommandBot, AlertPipeline], caplog: pytest.LogCaptureFixture
) -> None:
    """A command from an id not on the allow-list is logged with the id and never answered."""
    caplog.set_level(logging.INFO, logger="riskd")
    tg.push_command(STRANGER, STRANGER, "/status")
    tg.push_command(STRANGER, CHAT, "/mute all 1d")
    assert "Regime UNKNOWN" in await ask(tg, "/status")  # answered after both strangers' updates
    assert tg.messages_to(STRANGER) == []
    assert tg.messages_to(CHAT) == []
    assert "non-allowed id user=666 chat=666" in caplog.text
    assert "non-allowed id user=666 chat=100" in caplog.text
    assert await commands[1].mutes() == {}


async def test_allowed_commands_answer_with_the_state(
    tg: FakeTelegram, redis: Redis, prefix: str, commands: tuple[CommandBot, AlertPipeline]
) -> None:
    """An allow-listed id gets the published state from every read command."""
    await publish(
        redis,
        prefix,
        [
            snap(-2),
            snap(-1, "fragile"),
            snap(0, "cascade", episode_id="E1", cascade_level="strict", cascade_level_code=4),
        ],
    )
    status = await ask(tg, "/status")
    assert "Regime CASCADE" in status
    assert "risk multiplier 0.25" in status
    assert "CFI 2.41 (p97)" in status
    assert "CFI 2.41 (p97, quintile 5)" in await ask(tg, "/cfi")
    assert "Episode: E1" in await ask(tg, "/cascade@riskd_fake_bot")
    table = {
        "as_of": "2026-01-01T00:00:00+00:00",
        "rows": [
            {
                "venue": "binance",
                "symbol": "BTC",
                "rate": 0.0001,
                "interval_hours": 8.0,
                "rate_per_hour": 0.0001 / 8,
                "rate_per_8h": 0.0001,
                "next_funding_time": "2026-01-01T08:00:00+00:00",
            }
        ],
    }
    await redis.set(f"{prefix}:funding", json.dumps(table))
    assert "binance: +0.0100%/8 h (+0.00125%/h) · every 8 h · next 2026-01-01T08:00" in await ask(
        tg, "/funding btc"
    )
    history = (await ask(tg, "/history 2")).splitlines()
    assert [line.split()[2] for line in history] == ["fragile", "cascade"]
    assert "regime_key: present" in await ask(tg, "/health")
    assert "/mute <type> <duration>" in await ask(tg, "/help")


async def test_mute_and_unmute_commands_drive_the_pipeline(
    tg: FakeTelegram, commands: tuple[CommandBot, AlertPipeline]
) -> None:
    """/mute stops a kind from being queued until /unmute; bad arguments get an explanation."""
    pipeline = commands[1]
    assert (await ask(tg, "/mute regime_change 2h")).startswith("Muted regime_change until")
    first, second = hourly_alerts(2)
    assert await pipeline.submit([first]) == ["muted"]
    assert "regime_change until" in await ask(tg, "/mute")
    assert "(120 min left)" in await ask(tg, "/mutes")
    assert "unknown alert type" in await ask(tg, "/mute bogus 1h")
    assert "1 mute(s) lifted" in await ask(tg, "/unmute")
    assert await pipeline.submit([second]) == ["queued"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("1d", 86400), ("15", 900)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    """Mute durations read as seconds, minutes, hours, days (bare numbers are minutes)."""
    assert parse_duration(text) == seconds


def test_parse_duration_rejects_nonsense() -> None:
    """Unreadable or out-of-range durations raise ValueError."""
    for bad in ("soon", "2x", "0m", "40d"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


# -- the token, the console -------------------------------------------------------------------------


async def test_token_never_in_logs_or_messages(
    tg: FakeTelegram, redis: Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Not in DEBUG logs of riskd, PTB or httpx (which logs URLs), not in PTB's InvalidToken, not in messages."""
    caplog.set_level(logging.DEBUG)
    wrong = "987654321:AAF-wrong-SECRET-token_abc"
    bad_channel = TelegramChannel(tg_settings(tg, token=wrong))
    good_channel = TelegramChannel(tg_settings(tg))
    caplog.set_level(logging.DEBUG, logger="httpx")
    bad = telegram_pipeline(redis, prefix, bad_channel)
    await bad.submit(hourly_alerts(1))
    assert await bad.deliver_next()  # getMe answers 401: PTB's InvalidToken message quotes the token
    assert "InvalidToken" in caplog.text
    await redis.delete(f"{prefix}:alerts:due")
    good = telegram_pipeline(redis, prefix + ":good", good_channel)
    await good.submit(hourly_alerts(2))
    while await good.deliver_next():
        pass
    assert "HTTP Request: POST http://127.0.0.1" in caplog.text  # httpx did log the URLs …
    assert "/bot<token>/sendMessage" in caplog.text  # … scrubbed
    assert len(tg.delivered) == 2
    for secret in (TOKEN, wrong):
        assert secret not in caplog.text
        assert all(secret not in m.text for m in tg.delivered)
    assert TOKEN not in repr(good_channel)
    await bad_channel.aclose()
    await good_channel.aclose()


def test_no_token_means_console_and_riskd_says_so(caplog: pytest.LogCaptureFixture) -> None:
    """Without a token alerts go to the console, and the log says so."""
    caplog.set_level(logging.INFO, logger="riskd")
    assert isinstance(build_channel(TelegramSettings()), ConsoleChannel)
    assert "no Telegram token configured" in caplog.text
    assert isinstance(build_channel(TelegramSettings(token=TOKEN, chat_ids=[1])), TelegramChannel)


def test_threaded_fake_serves_a_sync_caller() -> None:
    """start_in_thread(): a caller on another loop sends and reads updates pushed from this thread."""
    fake = FakeTelegram().start_in_thread()
    try:
        fake.push_command(ADMIN, ADMIN, "/help")

        async def roundtrip() -> list[Any]:
            bot = make_bot(TelegramSettings(token=TOKEN, api_base_url=fake.base_url.removesuffix("/bot")))
            async with bot:
                await bot.send_message(CHAT, "hello", disable_notification=True)
                return list(await bot.get_updates(timeout=0))

        updates = asyncio.run(roundtrip())
    finally:
        fake.stop_thread()
    assert [u.message.text for u in updates] == ["/help"]
    assert [(m.chat_id, m.text, m.disable_notification) for m in fake.delivered] == [(CHAT, "hello", True)]
