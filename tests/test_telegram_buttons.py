"""Alerts as HTML with buttons, acknowledgement, escalation on a simulated clock, roles and routing.

Real python-telegram-bot against the loopback fake Bot API, a real Redis, the real pipeline and bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from redis.asyncio import Redis

from riskd.alerting.escalation import EscalationLoop
from riskd.alerting.pipeline import AlertPipeline
from riskd.clock import SimClock
from riskd.config import AlertSettings, TelegramSettings
from riskd.contract.alerts import derive_alerts
from riskd.contract.models import Alert, Snapshot
from riskd.daemon.lease import LeaderLease
from riskd.telegram.bot import CommandBot
from riskd.telegram.channel import TelegramChannel
from riskd.telegram.format import Links
from riskd.telegram.status import RedisStatusSource
from riskd.testing.fake_telegram import Delivered, FakeTelegram
from tests.helpers import snapshot

TOKEN = "123456789:AAE-secret-TOKEN-never-logged_xyz"
CHAT, CRIT_CHAT, INFO_CHAT, ESC_CHAT = 100, 200, 300, 900
ADMIN, READER, STRANGER = 7, 8, 666
H0 = pd.Timestamp("2026-03-02 10:00", tz="UTC")
pytestmark = [
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Please use 'Bot.getUpdates'"),
]


def snap(hour: int, state: str = "calm", **kw: Any) -> Snapshot:
    """A snapshot ``hour`` hours after H0 (tests.helpers.snapshot)."""
    return snapshot((H0 + timedelta(hours=hour)).to_pydatetime(), state, **kw)


def critical(hour: int = 0, **kw: Any) -> Alert:
    """The critical 'elevated → cascade' alert of hour ``hour``."""
    cur = snap(hour, "cascade", cascade_level="strict", cascade_level_code=4, **kw)
    (alert,) = derive_alerts(snap(hour - 1, "elevated"), cur, now=cur.as_of)
    assert alert.severity == "critical"
    return alert


@dataclass
class Desk:
    """The fake Telegram, the pipeline delivering to it, the bot answering it, and the shared sim clock."""

    tg: FakeTelegram
    redis: Redis
    prefix: str
    clock: SimClock
    pipeline: AlertPipeline
    bot: CommandBot

    def advance(self, minutes: float) -> None:
        """Move the simulated clock."""
        self.clock.set(self.clock.now() + pd.Timedelta(minutes=minutes))

    async def deliver(self, alerts: list[Alert], count: int) -> list[Delivered]:
        """Submit ``alerts`` and wait until the fake holds ``count`` more messages."""
        before = len(self.tg.delivered)
        await self.pipeline.submit(alerts)
        await self.tg.wait_for(lambda: len(self.tg.delivered) >= before + count)
        for _ in range(200):  # the fake saw the message; wait for the outbox's record of it too
            if await self.pipeline.outbox_size() == 0:
                break
            await asyncio.sleep(0.01)
        return self.tg.delivered[before:]

    async def press(self, user: int, msg: Delivered, label: str, *, username: str | None = None) -> str:
        """Press the button whose label starts with ``label``; returns the callback answer's text."""
        data = next(d for lab, d in msg.buttons if lab.split(" ", 1)[1].startswith(label))
        before = len(self.tg.answered)
        self.tg.push_callback(user, msg, data, username=username)
        await self.tg.wait_for(lambda: len(self.tg.answered) > before)
        return self.tg.answered[-1].get("text", "")


def settings(tg: FakeTelegram, **kw: Any) -> TelegramSettings:
    """Telegram settings pointed at the fake, with one admin and one read-only user."""
    base: dict[str, Any] = {
        "token": TOKEN,
        "chat_ids": [CHAT],
        "allowed_ids": [READER],
        "admin_ids": [ADMIN],
        "api_base_url": tg.base_url,
        "escalation_chat_ids": [ESC_CHAT],
        "escalate_after": 15,
        "grafana_url": "https://grafana.example.com/d/riskd",
    }
    return TelegramSettings(**{**base, **kw})


@contextlib.asynccontextmanager
async def make_desk(redis: Redis, tgs_kw: dict[str, Any] | None = None) -> AsyncIterator[Desk]:
    """Build and start every part; stop them all afterwards."""
    async with FakeTelegram(token=TOKEN) as tg:
        tgs = settings(tg, **(tgs_kw or {}))
        prefix = f"riskd:test:{uuid.uuid4().hex[:12]}"
        clock = SimClock(H0 + pd.Timedelta(minutes=5))
        links = Links("https://riskd.example.com", tgs.grafana_url)
        channel = TelegramChannel(tgs, links=links)
        pipeline = AlertPipeline(
            redis,
            channel,
            alerts=AlertSettings(cooldown_s=0),
            key_prefix=prefix,
            initial_backoff_s=0.05,
            lease_s=2,
            poll_s=0.05,
            clock=lambda: clock.now().timestamp(),
        )
        now = lambda: clock.now().to_pydatetime()  # noqa: E731  (a one-line local helper reads best as a lambda)
        source = RedisStatusSource(redis, prefix, outbox=pipeline, clock=now)
        bot = CommandBot(channel.bot, tgs, source, pipeline, links=links, clock=now, poll_timeout_s=1)
        pipeline.start()
        bot.start()
        try:
            yield Desk(tg, redis, prefix, clock, pipeline, bot)
        finally:
            await bot.stop()
            await pipeline.stop()
            await channel.aclose()


@pytest.fixture
async def desk(redis: Redis) -> AsyncIterator[Desk]:
    """The desk with the default settings (every alert to CHAT, escalation to ESC_CHAT after 15 min)."""
    async with make_desk(redis) as d:
        yield d


async def test_alert_is_html_with_header_links_and_buttons(desk: Desk) -> None:
    """An alert goes as HTML: bold header, state · multiplier · what fired, status/runbook/Grafana links, 4 buttons."""
    (msg,) = await desk.deliver([critical()], 1)
    assert msg.parse_mode == "HTML"
    assert msg.text.splitlines()[0] == "🔴 <b>CRITICAL · Regime elevated → cascade</b>"
    assert msg.plain.splitlines()[1] == "State CASCADE · ×0.25 · BTC cascade level strict"
    assert '<a href="https://riskd.example.com">status</a>' in msg.text
    assert '<a href="https://riskd.example.com/runbooks/RiskdCascadeInProgress">runbook</a>' in msg.text
    assert '<a href="https://grafana.example.com/d/riskd">Grafana</a>' in msg.text
    labels = [label for label, _ in msg.buttons]
    assert labels == ["✅ Acknowledge", "🔄 Refresh", "🔕 Mute 1 h", "🔕 Mute regime_change 24 h"]
    assert all(len(data.encode()) <= 64 for _, data in msg.buttons)


async def test_links_are_left_out_when_not_configured(redis: Redis) -> None:
    """Without an external URL or a Grafana URL, the alert has no links at all (never a dead one)."""
    async with FakeTelegram(token=TOKEN) as tg:
        tgs = settings(tg, grafana_url=None)
        channel = TelegramChannel(tgs, links=Links())
        p = AlertPipeline(
            redis, channel, alerts=AlertSettings(), key_prefix=f"riskd:test:{uuid.uuid4().hex[:12]}"
        )
        await p.submit([critical()])
        assert await p.deliver_next()
        await channel.aclose()
    assert "<a " not in tg.delivered[0].text


async def test_button_from_a_stranger_is_ignored_and_logged(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    """A non-allowed user's Acknowledge is answered empty, logged with the id, and changes nothing."""
    caplog.set_level(logging.INFO, logger="riskd")
    (msg,) = await desk.deliver([critical()], 1)
    assert await desk.press(STRANGER, msg, "Acknowledge") == ""
    assert "ignored button" in caplog.text
    assert "user=666" in caplog.text
    assert await desk.redis.keys(f"{desk.prefix}:alerts:ack:*") == []
    assert msg.edits == []
    assert "Acknowledged" not in msg.plain


async def test_reader_may_refresh_but_not_acknowledge_or_mute(desk: Desk) -> None:
    """A read-only user is told only admins may acknowledge or mute; their Refresh edits the alert in place."""
    (msg,) = await desk.deliver([critical()], 1)
    assert "Only admins" in await desk.press(READER, msg, "Acknowledge")
    assert "Only admins" in await desk.press(READER, msg, "Mute 1 h")
    assert await desk.pipeline.mutes() == {}
    await desk.redis.set(f"{desk.prefix}:regime", snap(0, "cascade").to_json())
    assert await desk.press(READER, msg, "Refresh") == "Refreshed."
    assert "🔄 Now (10:05 UTC): Regime CASCADE · ×0.25 · Fresh" in msg.plain
    assert await desk.redis.keys(f"{desk.prefix}:alerts:ack:*") == []


async def test_acknowledgement_edits_every_copy_once(redis: Redis) -> None:
    """An admin's Acknowledge edits each routed copy to say who and when, drops the button; a second is refused."""
    async with make_desk(redis, {"routes": {"critical": [CHAT, CRIT_CHAT]}}) as desk:
        first, second = await desk.deliver([critical()], 2)
        assert {first.chat_id, second.chat_id} == {CHAT, CRIT_CHAT}
        desk.advance(3)
        assert await desk.press(ADMIN, first, "Acknowledge", username="boss") == "Acknowledged."
        for copy in (first, second):
            assert "✅ Acknowledged by @boss (7) at 2026-03-02 10:08 UTC" in copy.plain
            assert next(label for label, _ in copy.buttons) == "🔄 Refresh"
        # A second press (a client that still shows the button) keeps the first acknowledgement.
        before = len(desk.tg.answered)
        desk.tg.push_callback(ADMIN, second, f"a:{critical().fingerprint}", username="late")
        await desk.tg.wait_for(lambda: len(desk.tg.answered) > before)
        assert desk.tg.answered[-1]["text"].startswith("Already acknowledged by @boss (7) at 10:08 UTC")
        assert "@late" not in first.plain + second.plain


async def test_mute_buttons_mute_all_for_an_hour_and_the_type_for_a_day(desk: Desk) -> None:
    """'Mute 1 h' mutes every alert for 3,600 s; 'Mute <type> 24 h' mutes that type for a day."""
    (msg,) = await desk.deliver([critical()], 1)
    assert (await desk.press(ADMIN, msg, "Mute 1 h")).startswith("Muted all until")
    assert (await desk.press(ADMIN, msg, "Mute regime_change")).startswith("Muted regime_change until")
    mutes = await desk.pipeline.mutes()
    assert 3590 < mutes["all"] <= 3600
    assert 86390 < mutes["regime_change"] <= 86400


async def test_unacknowledged_critical_alert_escalates_once_after_its_delay(desk: Desk) -> None:
    """On the simulated clock: nothing at 14 min, one escalation at 15, none again — even from a second replica."""
    (msg,) = await desk.deliver([critical()], 1)
    loop = EscalationLoop(desk.pipeline, None)
    desk.advance(14)
    assert await loop.tick() == []
    desk.advance(1.01)
    assert [outcome for _, outcome in await loop.tick()] == ["escalated"]
    await desk.tg.wait_for(lambda: len(desk.tg.messages_to(ESC_CHAT)) == 1)
    (esc,) = desk.tg.messages_to(ESC_CHAT)
    assert esc.plain.startswith(
        "⏫ ESCALATION: not acknowledged within 15 min\n🔴 CRITICAL · Regime elevated → cascade"
    )
    other = AlertPipeline(
        desk.redis,
        desk.pipeline.channel,
        alerts=AlertSettings(),
        key_prefix=desk.prefix,
        clock=lambda: desk.clock.now().timestamp(),
    )
    desk.advance(60)
    assert await loop.tick() == []
    assert await EscalationLoop(other, None).tick() == []
    # Someone acknowledges on the escalation copy: every copy shows it, and still nothing more is sent.
    assert await desk.press(ADMIN, esc, "Acknowledge") == "Acknowledged."
    assert "Acknowledged by user7 (7)" in msg.plain
    assert esc.plain.startswith("⏫ ESCALATION")
    assert "Acknowledged by user7 (7)" in esc.plain
    await desk.pipeline.outbox_size()
    assert len(desk.tg.messages_to(ESC_CHAT)) == 1
    assert len(desk.tg.messages_to(CHAT)) == 1


async def test_acknowledged_alert_is_never_escalated(desk: Desk) -> None:
    """Acknowledged at minute 5, the alert is not escalated at minute 15 or ever."""
    (msg,) = await desk.deliver([critical()], 1)
    desk.advance(5)
    assert await desk.press(ADMIN, msg, "Acknowledge") == "Acknowledged."
    desk.advance(30)
    assert await EscalationLoop(desk.pipeline, None).tick() == []
    assert desk.tg.messages_to(ESC_CHAT) == []


async def test_warnings_are_not_escalated(desk: Desk) -> None:
    """Only critical alerts wait for an acknowledgement: a warning is never put on the escalation list."""
    cur = snap(0, "elevated")
    (warning,) = derive_alerts(snap(-1, "calm"), cur, now=cur.as_of)
    assert warning.severity == "warning"
    await desk.deliver([warning], 1)
    desk.advance(60)
    assert await EscalationLoop(desk.pipeline, None).tick() == []


async def test_escalation_runs_on_the_leader_only(desk: Desk) -> None:
    """A replica that does not hold the lease never escalates; the leader does."""
    await desk.deliver([critical()], 1)
    leader = LeaderLease(desk.redis, f"{desk.prefix}:leader", "a", 30)
    standby = LeaderLease(desk.redis, f"{desk.prefix}:leader", "b", 30)
    assert await leader.tick()
    assert not await standby.tick()
    desk.advance(16)
    assert await EscalationLoop(desk.pipeline, standby).tick() == []
    assert [o for _, o in await EscalationLoop(desk.pipeline, leader).tick()] == ["escalated"]


async def test_severity_routing(redis: Redis) -> None:
    """telegram.routes sends critical and info to their chats; a severity without a route goes to chat_ids."""
    async with make_desk(redis, {"routes": {"critical": [CRIT_CHAT], "info": [INFO_CHAT]}}) as desk:
        cur = snap(1, "elevated")
        (warning,) = derive_alerts(snap(0, "calm"), cur, now=cur.as_of)
        calm = snap(2, "calm")
        (info,) = derive_alerts(cur, calm, now=calm.as_of)
        sent = await desk.deliver([critical(), warning, info], 3)
        route = {m.plain.splitlines()[0].split(" · ")[0][2:]: m.chat_id for m in sent}
        assert route == {"CRITICAL": CRIT_CHAT, "WARNING": CHAT, "INFO": INFO_CHAT}


async def test_hostile_strings_are_escaped(desk: Desk) -> None:
    """A reason and an episode named '<b>&' reach the chat as text: Telegram's HTML parser accepts the message."""
    cur = snap(
        0,
        "cascade",
        cascade_level="strict",
        cascade_level_code=4,
        reasons=["symbol <b>& crashed"],
        episode_id="<b>&",
    )
    regime, started = await desk.deliver(derive_alerts(snap(-1, "elevated"), cur, now=cur.as_of), 2)
    assert "symbol &lt;b&gt;&amp; crashed" in regime.text
    assert "Reasons: symbol <b>& crashed" in regime.plain
    assert "Episode <b>&: BTC cascade level strict" in started.plain
    assert desk.tg.failures_served == []


def test_default_routing_keeps_every_alert_on_chat_ids() -> None:
    """With no routes, every severity goes to chat_ids, as before routing existed."""
    tgs = TelegramSettings(token=TOKEN, chat_ids=[CHAT, CRIT_CHAT])
    channel = TelegramChannel(tgs, links=Links())
    for severity in ("info", "warning", "critical"):
        alert = Alert(
            kind="regime_change",
            severity=severity,
            as_of=datetime(2026, 1, 1, tzinfo=UTC),
            title="t",
            body="b",
        )
        assert channel.destinations_for(alert) == [str(CHAT), str(CRIT_CHAT)]


def cascade_start(hour: int, *, strict: bool) -> Alert:
    """The hour's cascade_start alert: WARNING on BTC's level alone, CRITICAL with the multi-asset detector."""
    level = "medium" if strict else "volume_only"
    cur = snap(
        hour,
        "cascade",
        cascade_level=level,
        cascade_level_code=3 if strict else 1,
        multi_asset_cascade=strict,
        episode_id="btc-E1",
    )
    (alert,) = [
        a for a in derive_alerts(snap(hour - 1, "cascade"), cur, now=cur.as_of) if a.kind == "cascade_start"
    ]
    return alert


async def test_a_correction_that_raises_severity_is_delivered_as_an_upgrade_threaded_to_the_first(
    desk: Desk,
) -> None:
    """A restated hour turns a WARNING cascade alert into a CRITICAL one: the CRITICAL goes out, says it is an
    upgrade, and replies to the WARNING (before: dropped as a duplicate); a later weaker one is not sent."""
    weak, strong = cascade_start(0, strict=False), cascade_start(0, strict=True)
    assert weak.identity == strong.identity
    assert (weak.severity, strong.severity) == ("warning", "critical")
    (first,) = await desk.deliver([weak], 1)
    (upgrade,) = await desk.deliver([strong], 1)
    assert upgrade.plain.splitlines()[0] == "🔴 CRITICAL · ⬆ Cascade started (upgraded from warning)"
    assert "Upgrade: corrected data raise this from WARNING to CRITICAL" in upgrade.plain
    assert upgrade.reply_to == first.message_id
    assert await desk.pipeline.submit([weak]) == ["duplicate"]
    assert await desk.pipeline.submit([weak.model_copy(update={"figures": {**weak.figures, "x": 1}})]) == [
        "duplicate"
    ]
    lower = cascade_start(0, strict=True).model_copy(update={"severity": "warning"})
    assert await desk.pipeline.submit([lower]) == ["downgrade"]
    await asyncio.sleep(0.2)
    assert len(desk.tg.delivered) == 2


async def test_an_acknowledgement_hours_later_adds_no_delay_banner(desk: Desk) -> None:
    """Acknowledged and refreshed 3 h after an on-time delivery, the alert still reads as delivered on time:
    no "[DELAYED …]" banner (before: every edit more than 1 h after the hour claimed a held-up delivery)."""
    (msg,) = await desk.deliver([critical()], 1)
    assert "DELAYED" not in msg.plain
    desk.advance(180)
    assert await desk.press(ADMIN, msg, "Acknowledge") == "Acknowledged."
    assert "Acknowledged by user7 (7)" in msg.plain
    assert "DELAYED" not in msg.plain
    assert await desk.press(ADMIN, msg, "Refresh") == "Refreshed."
    assert "DELAYED" not in msg.plain
    assert msg.plain.splitlines()[0] == "🔴 CRITICAL · Regime elevated → cascade"


async def test_an_escalated_confirmation_keeps_its_escalation_header_first(desk: Desk) -> None:
    """A cascade alert confirming a provisional one, escalated and then acknowledged: the escalation header
    stays the first line of the copy and the confirmation sits below the headers (before: "Confirmed at the
    hour close" was put above "⏫ ESCALATION")."""
    alert = critical()
    provisional = Alert(
        kind="cascade_developing",
        severity="warning",
        as_of=alert.as_of,
        title="Cascade developing (provisional, developing)",
        body="minute 09:43",
        figures={"to": "developing", "level": "developing"},
        thread=alert.thread,
    )
    (root,) = await desk.deliver([provisional], 1)
    (msg,) = await desk.deliver([alert.model_copy(update={"thread": provisional.thread})], 1)
    assert msg.reply_to == root.message_id
    assert msg.plain.splitlines()[0] == "🔴 CRITICAL · Regime elevated → cascade"
    assert "Confirmed at the hour close (provisional alert above)" in msg.plain
    desk.advance(15.1)
    assert [o for _, o in await EscalationLoop(desk.pipeline, None).tick()] == ["escalated"]
    await desk.tg.wait_for(lambda: len(desk.tg.messages_to(ESC_CHAT)) == 1)
    (esc,) = desk.tg.messages_to(ESC_CHAT)
    assert esc.plain.startswith("⏫ ESCALATION: not acknowledged within 15 min\n🔴 CRITICAL")
    assert esc.plain.count("Confirmed at the hour close") == 1
    desk.advance(90)
    assert await desk.press(ADMIN, esc, "Acknowledge") == "Acknowledged."
    assert esc.plain.startswith("⏫ ESCALATION: not acknowledged within 15 min\n🔴 CRITICAL")
    assert "DELAYED" not in esc.plain + msg.plain


async def test_no_confirmation_line_without_a_provisional_alert(desk: Desk) -> None:
    """A cascade alert whose thread has no provisional message (the first of the thread is itself) does not
    claim a "provisional alert above" (issue 21's demo finding)."""
    alert = critical()
    assert alert.thread is not None
    (first,) = await desk.deliver([alert], 1)
    (second,) = await desk.deliver(
        [cascade_start(0, strict=True).model_copy(update={"thread": alert.thread})], 1
    )
    assert second.reply_to == first.message_id
    assert "provisional alert above" not in first.plain + second.plain
