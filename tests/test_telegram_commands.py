"""The command table (help, menu, dispatch), honest /status and /cfi, /funding, /chart, /mutes, /version, roles.

Real python-telegram-bot against the loopback fake Bot API and a real Redis.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from redis.asyncio import Redis
from telegram.error import BadRequest

import riskd
from riskd.alerting.pipeline import AlertPipeline
from riskd.clock import SimClock
from riskd.config import AlertSettings, TelegramSettings
from riskd.contract.models import DataQuality, Snapshot
from riskd.telegram.bot import CommandBot
from riskd.telegram.channel import make_bot
from riskd.telegram.commands import COMMANDS
from riskd.telegram.format import Links
from riskd.telegram.status import RedisStatusSource
from riskd.testing.fake_telegram import Delivered, FakeTelegram
from tests.helpers import snapshot

TOKEN = "123456789:AAE-secret-TOKEN-never-logged_xyz"
ADMIN, READER = 7, 8
NOW = pd.Timestamp("2026-03-02 10:05", tz="UTC")
pytestmark = [
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Please use 'Bot.getUpdates'"),
]


def snap(age_h: float, state: str = "calm", **kw: Any) -> Snapshot:
    """A snapshot of the hour that ended ``age_h`` hours before NOW (rounded down to the hour)."""
    as_of = (NOW - pd.Timedelta(hours=age_h)).floor("h").to_pydatetime()
    base = {
        "risk_multiplier": 1.0,
        "cfi": 0.8,
        "cfi_percentile": 0.6,
        "cfi_quintile": 3,
        "reasons": [],
        "features": {},
        "components": {"funding_z": 1.2},
    }
    return snapshot(as_of, state, **{**base, **kw})


def chart_frame() -> pd.DataFrame:
    """48 hours of BTC close and CFI, as ``Daemon.chart_frame`` gives them."""
    idx = pd.date_range(NOW.floor("h") - pd.Timedelta(hours=47), periods=48, freq="h", name="ts")
    return pd.DataFrame({"btc_close": 60000 + np.arange(48) * 10.0, "cfi": np.linspace(-1, 2, 48)}, index=idx)


@dataclass
class Chat:
    """The fake, Redis under a fresh prefix, and the running bot."""

    tg: FakeTelegram
    redis: Redis
    prefix: str
    pipeline: AlertPipeline

    async def ask(self, text: str, *, user: int = ADMIN) -> Delivered:
        """Send a command as ``user`` in their private chat; the bot's answer."""
        before = len(self.tg.messages_to(user))
        self.tg.push_command(user, user, text)
        await self.tg.wait_for(lambda: len(self.tg.messages_to(user)) > before)
        return self.tg.messages_to(user)[-1]

    async def publish(self, s: Snapshot) -> None:
        """Write the regime key as the Redis sink does."""
        await self.redis.set(f"{self.prefix}:regime", s.to_json())


class _NoChannel:
    name, max_per_minute = "console", None

    def __init__(self) -> None:
        self.destinations = ["0"]

    async def send(self, dest: str, text: str, *, silent: bool, chart: bytes | None) -> str:
        raise AssertionError("no alert is delivered in these tests")


@pytest.fixture
async def chat(redis_url: str) -> AsyncIterator[Chat]:
    """The command bot on a simulated clock at NOW, polling the fake, reading Redis."""
    redis = Redis.from_url(redis_url)
    async with FakeTelegram(token=TOKEN) as tg:
        tgs = TelegramSettings(
            token=TOKEN, chat_ids=[ADMIN], allowed_ids=[READER], admin_ids=[ADMIN], api_base_url=tg.base_url
        )
        prefix = f"riskd:test:{uuid.uuid4().hex[:12]}"
        clock = SimClock(NOW)
        pipeline = AlertPipeline(
            redis,
            _NoChannel(),
            alerts=AlertSettings(),
            key_prefix=prefix,
            clock=lambda: clock.now().timestamp(),
        )
        now = lambda: clock.now().to_pydatetime()  # noqa: E731  (a one-line local helper reads best as a lambda)
        source = RedisStatusSource(redis, prefix, outbox=pipeline, chart_frame=chart_frame, clock=now)
        bot = CommandBot(
            make_bot(tgs),
            tgs,
            source,
            pipeline,
            clock=now,
            poll_timeout_s=1,
            links=Links("https://riskd.example.com"),
        )
        bot.start()
        try:
            yield Chat(tg, redis, prefix, pipeline)
        finally:
            await bot.stop()
            await bot.bot.shutdown()
    await redis.aclose()


async def test_help_menu_and_dispatch_come_from_one_table(chat: Chat) -> None:
    """Every row of COMMANDS is in /help, in the setMyCommands menu, and answered by its own handler."""
    help_text = (await chat.ask("/help")).plain
    assert [c["command"] for c in chat.tg.menu] == [c.name for c in COMMANDS]
    for c in COMMANDS:
        assert f"/{c.name}" in help_text
        if c.name not in ("help", "chart"):
            assert not (await chat.ask(f"/{c.name}")).plain.startswith("riskd commands"), c.name
    assert "/mute <type> <duration> — Mute an alert type, e.g. /mute regime_change 2h (admins)" in help_text
    assert (await chat.ask("/nonsense")).plain.startswith("riskd commands")


async def test_status_of_an_old_snapshot_is_marked_stale(chat: Chat) -> None:
    """A two-year-old snapshot: /status and /cfi lead with a STALE banner, never pose as current."""
    await chat.publish(snap(2 * 365 * 24, "fragile"))
    status = await chat.ask("/status")
    assert status.plain.startswith("⚠️ STALE: last state is for 2024-")
    assert "do not act on this as the current regime" in status.plain
    assert "<b>STALE</b>" in status.text
    assert [label for label, _ in status.buttons] == ["🔄 Refresh"]
    assert (await chat.ask("/cfi")).plain.startswith("⚠️ STALE:")


async def test_status_of_degraded_data_is_marked_degraded(chat: Chat) -> None:
    """A fresh snapshot computed from degraded data: DEGRADED banner naming the source; a fresh one says so."""
    dq = DataQuality(status="degraded", coverage=0.8, stale_sources=["bybit:funding"])
    await chat.publish(snap(0, data_quality=dq, crash_prob_24h=0.12))
    status = (await chat.ask("/status")).plain
    assert status.startswith("⚠️ DEGRADED: degraded data: bybit:funding stale or missing")
    assert "P(BTC −5% within 24 h): 12%" in status
    assert '<a href="https://riskd.example.com">status</a>' in chat.tg.messages_to(ADMIN)[-1].text
    assert (await chat.ask("/cfi")).plain.startswith("⚠️ DEGRADED:")
    await chat.publish(snap(0))
    assert (await chat.ask("/status")).plain.startswith("Fresh (")


async def test_status_refresh_button_edits_in_place(chat: Chat) -> None:
    """Refresh under /status re-reads the regime and edits the same message."""
    await chat.publish(snap(0, "calm"))
    msg = await chat.ask("/status")
    await chat.publish(snap(0, "fragile"))
    chat.tg.push_callback(READER, msg, "s")
    await chat.tg.wait_for(lambda: "Regime FRAGILE" in msg.plain)
    assert chat.tg.answered[-1]["text"] == "Refreshed."


def _table(rows: list[tuple[str, str, float, float]]) -> dict[str, Any]:
    return {
        "as_of": "2026-03-02T10:00:00+00:00",
        "rows": [
            {
                "venue": v,
                "symbol": s,
                "rate": r * h,
                "interval_hours": h,
                "rate_per_hour": r,
                "rate_per_8h": r * 8,
                "funding_time": "2026-03-02T08:00:00+00:00",
                "next_funding_time": "2026-03-02T16:00:00+00:00",
            }
            for v, s, r, h in rows
        ],
    }


async def test_funding_per_symbol_and_top_bottom_five(chat: Chat) -> None:
    """/funding BTC lists each venue's rate per 8 h and per hour, interval and next time; bare /funding ranks."""
    rows = [("binance", "BTC", 1e-5, 8.0), ("hyperliquid", "BTC", 2e-5, 1.0)]
    rows += [("binance", f"S{i:02d}", i * 1e-6, 8.0) for i in range(12)]
    rows += [("binance", "<b>&", -5e-5, 4.0)]
    await chat.redis.set(f"{chat.prefix}:funding", json.dumps(_table(rows)))
    btc = (await chat.ask("/funding btc")).plain.splitlines()
    assert btc[1:] == [
        "  binance: +0.0080%/8 h (+0.00100%/h) · every 8 h · next 2026-03-02T16:00:00+00:00",
        "  hyperliquid: +0.0160%/8 h (+0.00200%/h) · every 1 h · next 2026-03-02T16:00:00+00:00",
    ]
    ranked = (await chat.ask("/funding")).plain.splitlines()
    high, low = ranked.index("Highest:"), ranked.index("Lowest:")
    assert [line.split(":")[0].strip() for line in ranked[high + 1 : low]] == [
        "BTC",
        "S11",
        "S10",
        "S09",
        "S08",
    ]
    assert [line.split(":")[0].strip() for line in ranked[low + 1 :]] == ["<b>&", "S00", "S01", "S02", "S03"]
    hostile = await chat.ask("/funding <b>&")
    assert hostile.plain.startswith("Funding <B>& · cycle")
    assert "  binance: -0.0400%/8 h" in hostile.plain
    assert "&lt;B&gt;&amp;" in hostile.text


async def test_funding_before_any_cycle_says_so(chat: Chat) -> None:
    """Without the funding key, /funding explains that nothing was published, not 'nothing available'."""
    assert "nothing published yet" in (await chat.ask("/funding BTC")).plain


async def test_chart_on_demand_is_a_photo_with_an_html_caption(chat: Chat) -> None:
    """/chart 24 sends a PNG of BTC and CFI with the state in an HTML caption; a bad n is explained."""
    await chat.publish(snap(0, "elevated"))
    msg = await chat.ask("/chart 24")
    assert msg.method == "sendPhoto"
    assert msg.photo is not None
    assert msg.photo[:8] == b"\x89PNG\r\n\x1a\n"
    assert msg.text == "Regime <b>ELEVATED</b> · ×1 · BTC and CFI, last 24 h"
    assert msg.parse_mode == "HTML"
    assert (await chat.ask("/chart 0")).plain == "n must be a whole number from 1 to 168, e.g. /chart 48"


async def test_mutes_lists_expiry_and_only_admins_mute(chat: Chat) -> None:
    """/mutes shows each mute's end; a read-only user's /mute is refused and changes nothing."""
    assert (await chat.ask("/mutes")).plain == "No active mutes."
    assert (await chat.ask("/mute cascade_end 2h")).plain.startswith(
        "Muted cascade_end until 2026-03-02 12:05 UTC"
    )
    assert (
        "cascade_end until 2026-03-02 12:05 UTC (120 min left)"
        in (await chat.ask("/mutes", user=READER)).plain
    )
    refused = (await chat.ask("/unmute", user=READER)).plain
    assert refused == "/unmute is for admins (telegram.admin_ids); you may read only."
    assert list(await chat.pipeline.mutes()) == ["cascade_end"]


async def test_version(chat: Chat) -> None:
    """/version names the running riskd."""
    assert (await chat.ask("/version")).plain == f"riskd {riskd.__version__}"


async def test_the_fake_refuses_unescaped_html_as_telegram_does() -> None:
    """The fake's HTML check is real: a bare '<b>&' in HTML parse mode is a 400, so escaping tests mean something."""
    async with FakeTelegram(token=TOKEN) as tg:
        bot = make_bot(TelegramSettings(token=TOKEN, api_base_url=tg.base_url))
        await bot.initialize()
        with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
            await bot.send_message(1, "symbol <b>& crashed", parse_mode="HTML")
        with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
            await bot.send_message(1, "<blink>x</blink>", parse_mode="HTML")
        await bot.send_message(1, "symbol &lt;b&gt;&amp; <b>ok</b>", parse_mode="HTML")
        await bot.shutdown()
    assert tg.delivered[0].plain == "symbol <b>& ok"
