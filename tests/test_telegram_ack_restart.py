"""An acknowledgement survives kill -9 and a restart: the Telegram process (delivery, bot, escalation) in a
subprocess, the real python-telegram-bot against the fake Bot API, a real Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis.asyncio import Redis

from riskd.alerting.pipeline import AlertPipeline
from riskd.config import AlertSettings
from riskd.contract.alerts import derive_alerts
from riskd.contract.models import STATE_CODES, Alert, DataQuality, Snapshot
from riskd.testing.fake_telegram import FakeTelegram

TOKEN = "123456789:AAE-secret-TOKEN-never-logged_xyz"
CHAT, ESC_CHAT, ADMIN, OTHER_ADMIN = 100, 900, 7, 9
ESCALATE_MIN = 0.05
"""3 s: long enough to acknowledge and kill inside it, short enough for a test."""
H0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def critical(hour: int) -> Alert:
    """A critical 'elevated → cascade' alert, ``hour`` hours after H0 (distinct per hour)."""

    def snap(h: int, state: str) -> Snapshot:
        as_of = H0 + timedelta(hours=h)
        return Snapshot(
            as_of=as_of,
            computed_at=as_of,
            live=True,
            state=state,
            state_code=STATE_CODES[state],
            risk_multiplier=0.25,
            cfi=2.0,
            cfi_percentile=0.97,
            cascade_level="strict",
            cascade_level_code=4,
            data_quality=DataQuality(status="ok", coverage=1.0),
        )

    (alert,) = derive_alerts(
        snap(hour - 1, "elevated"), snap(hour, "cascade"), now=H0 + timedelta(hours=hour)
    )
    return alert


class _Dest:
    """Submit-only: the test process queues, the subprocess delivers."""

    name, max_per_minute = "telegram", None

    def __init__(self) -> None:
        self.destinations = [str(CHAT)]

    async def send(self, dest: str, text: str, *, silent: bool, chart: bytes | None) -> str:
        raise AssertionError("the test process must not deliver")


def spawn(tg: FakeTelegram, redis_url: str, prefix: str, log: Path) -> subprocess.Popen[bytes]:
    """The standalone Telegram process (delivery + command bot + escalation), configured by environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKD_")}
    env.update(
        {
            "RISKD_REDIS__URL": redis_url,
            "RISKD_REDIS__KEY_PREFIX": prefix,
            "RISKD_TELEGRAM__TOKEN": TOKEN,
            "RISKD_TELEGRAM__API_BASE_URL": tg.base_url,
            "RISKD_TELEGRAM__CHAT_IDS": f"[{CHAT}]",
            "RISKD_TELEGRAM__ADMIN_IDS": f"[{ADMIN}, {OTHER_ADMIN}]",
            "RISKD_TELEGRAM__ESCALATION_CHAT_IDS": f"[{ESC_CHAT}]",
            "RISKD_TELEGRAM__ESCALATE_AFTER": str(ESCALATE_MIN),
            "RISKD_LOG_LEVEL": "INFO",
            "RISKD_DATA_DIR": str(log.parent),
        }
    )
    code = (
        "from riskd.daemon.wiring import delivery_main; "
        "delivery_main(with_bot=True, escalation_interval_s=0.2, lease_s=2, initial_backoff_s=0.2, poll_s=0.05)"
    )
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=out, stderr=out)


async def press(tg: FakeTelegram, user: int, chat: int, message_id: int, data: str, username: str) -> str:
    """Press a button as ``user``; the callback answer's text."""
    msg = tg.message(chat, message_id)
    assert msg is not None
    before = len(tg.answered)
    tg.push_callback(user, msg, data, username=username)
    await tg.wait_for(lambda: len(tg.answered) > before, 20)
    return str(tg.answered[-1].get("text", ""))


async def test_acknowledgement_survives_kill9_and_restart(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    """Acknowledged, then kill -9: after a restart the alert stays acknowledged and is never escalated,
    while an unacknowledged one delivered by the new process is escalated exactly once."""
    prefix = f"riskd:test:{uuid.uuid4().hex[:12]}"
    log = tmp_path / "telegram.log"
    acked, ignored = critical(0), critical(1)
    queue = AlertPipeline(redis, _Dest(), alerts=AlertSettings(cooldown_s=0), key_prefix=prefix)
    async with FakeTelegram(token=TOKEN) as tg:
        proc = spawn(tg, redis_url, prefix, log)
        try:
            await queue.submit([acked])
            await tg.wait_for(lambda: len(tg.messages_to(CHAT)) == 1, 30)
            first = tg.messages_to(CHAT)[0]
            ack_data = next(d for label, d in first.buttons if "Acknowledge" in label)
            assert await press(tg, ADMIN, CHAT, first.message_id, ack_data, "boss") == "Acknowledged."
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
            proc = spawn(tg, redis_url, prefix, log)
            await queue.submit([ignored])
            await tg.wait_for(lambda: len(tg.messages_to(CHAT)) == 2, 30)
            await tg.wait_for(lambda: len(tg.messages_to(ESC_CHAT)) == 1, 30)
            await asyncio.sleep(ESCALATE_MIN * 60 + 1.0)  # well past the first alert's own deadline
            late = await press(tg, OTHER_ADMIN, CHAT, first.message_id, ack_data, "late")
        finally:
            proc.kill()
            proc.wait(5)
    assert late.startswith("Already acknowledged by @boss (7)")
    assert "✅ Acknowledged by @boss (7)" in first.plain
    assert "@late" not in first.plain
    (escalation,) = tg.messages_to(ESC_CHAT)
    assert escalation.plain.startswith("⏫ ESCALATION: not acknowledged within 0.05 min")
    assert f"Hour ending {ignored.as_of:%Y-%m-%d %H:%M}" in escalation.plain
    assert TOKEN not in log.read_text()
    print("\n--- transcript (fake Bot API) ---\n" + tg.transcript())
