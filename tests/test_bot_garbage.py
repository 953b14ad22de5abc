"""The command bot survives any update: garbage is logged, confirmed and skipped; replies fit Telegram."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from riskd.alerting.pipeline import AlertPipeline
from riskd.config import AlertSettings, TelegramSettings
from riskd.daemon.embedded import free_port
from riskd.telegram.bot import MAX_REPLY_CHARS, TRUNCATED, CommandBot, cap_reply
from riskd.telegram.channel import make_bot
from riskd.telegram.status import RedisStatusSource
from riskd.testing.fake_telegram import FakeTelegram

TOKEN = "123456789:AAE-secret-TOKEN-never-logged_xyz"
ADMIN = 7
pytestmark = [
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    pytest.mark.filterwarnings(
        "ignore:Please use 'Bot.getUpdates'"
    ),  # raw polling is deliberate (CommandBot._poll)
]


def _message(text: Any, **kw: Any) -> dict[str, Any]:
    base = {
        "message_id": 1,
        "date": int(time.time()),
        "chat": {"id": ADMIN, "type": "private"},
        "from": {"id": ADMIN, "is_bot": False, "first_name": "admin"},
        "text": text,
    }
    return {**base, **kw}


GARBAGE: list[tuple[str, Any]] = [
    ("message is a string", {"message": "/status"}),
    ("text is a number", {"message": _message(12345)}),
    ("text is a list", {"message": _message(["/status"])}),
    ("message without chat", {"message": {"message_id": 2, "date": 0, "text": "/status"}}),
    ("message without date", {"message": {"message_id": 3, "chat": {"id": ADMIN}, "text": "/status"}}),
    ("from is a number", {"message": _message("/status", **{"from": 5})}),
    ("unknown update type", {"future_thing": {"x": 1}}),
    ("edited message", {"edited_message": _message("/status")}),
    ("callback query", {"callback_query": {"id": "q", "data": "x"}}),
    ("update is a list", [1, 2, 3]),
    ("update is null", None),
    ("update_id is a string", {"update_id": "nine", "message": _message("/status")}),
]


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    """The fake Bot API on a free loopback port."""
    async with FakeTelegram(token=TOKEN) as fake:
        yield fake


def _settings(tg: FakeTelegram) -> TelegramSettings:
    return TelegramSettings(token=TOKEN, chat_ids=[ADMIN], allowed_ids=[ADMIN], api_base_url=tg.base_url)


def _bot(tg: FakeTelegram, redis: Redis, prefix: str) -> CommandBot:
    tgs = _settings(tg)
    pipeline = AlertPipeline(redis, _NoChannel(), alerts=AlertSettings(), key_prefix=prefix)
    source = RedisStatusSource(redis, prefix, outbox=pipeline)
    return CommandBot(make_bot(tgs), tgs, source, pipeline, poll_timeout_s=1)


class _NoChannel:
    name, max_per_minute = "console", None

    def __init__(self) -> None:
        self.destinations = [str(ADMIN)]

    async def send(self, dest: str, text: str, *, silent: bool, chart: bytes | None) -> str:
        raise AssertionError("no alert is delivered in these tests")


async def _ask(tg: FakeTelegram, text: str) -> str:
    before = len(tg.messages_to(ADMIN))
    tg.push_command(ADMIN, ADMIN, text)
    await tg.wait_for(lambda: len(tg.messages_to(ADMIN)) > before, 10)
    return tg.messages_to(ADMIN)[-1].plain


def _push_garbage(tg: FakeTelegram) -> list[int]:
    ids = []
    for _, payload in GARBAGE:
        uid = tg.push_raw(payload)
        if uid is not None:
            ids.append(uid)
    return ids


async def test_garbage_updates_are_logged_confirmed_and_skipped(
    tg: FakeTelegram, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Every kind of malformed update is skipped with one log line; the bot keeps answering and confirms them."""
    caplog.set_level(logging.WARNING, logger="riskd")
    prefix = f"riskd:test:{uuid.uuid4().hex[:12]}"
    bot = _bot(tg, redis, prefix)
    task = bot.start()
    try:
        ids = _push_garbage(tg)
        assert "Regime UNKNOWN" in await _ask(tg, "/status")
        assert not task.done()
        assert "/history [n]" in await _ask(tg, "/help")  # still polling after the whole batch
        assert tg.confirmed_offset > max(ids)
    finally:
        await bot.stop()
        await bot.bot.shutdown()
    skipped = [r for r in caplog.records if "skipped a malformed update" in r.getMessage()]
    assert len(skipped) >= 5  # the ones PTB cannot parse; the rest are ignored as non-commands
    assert all("\n" not in r.getMessage() for r in skipped)
    assert TOKEN not in caplog.text
    assert next(m.plain for m in tg.messages_to(ADMIN)).startswith("Regime UNKNOWN")  # garbage got no reply


async def test_garbage_is_not_fetched_again_after_a_restart(
    tg: FakeTelegram, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """After a stop and a new bot, the malformed updates are not re-delivered: they were confirmed."""
    caplog.set_level(logging.WARNING, logger="riskd")
    prefix = f"riskd:test:{uuid.uuid4().hex[:12]}"
    first = _bot(tg, redis, prefix)
    first.start()
    ids = _push_garbage(tg)
    await _ask(tg, "/help")
    await first.stop()
    await first.bot.shutdown()
    served_before = len(tg.served_updates)
    caplog.clear()
    second = _bot(tg, redis, prefix)
    second.start()
    try:
        assert "Regime UNKNOWN" in await _ask(tg, "/status")
    finally:
        await second.stop()
        await second.bot.shutdown()
    again = tg.served_updates[served_before:]
    assert not [u for u in again if isinstance(u, dict) and u.get("update_id") in ids]
    assert "skipped a malformed update" not in caplog.text


async def test_long_reply_is_cut_to_telegram_limit_with_a_marker(tg: FakeTelegram, redis: Redis) -> None:
    """A reply longer than 4,096 characters arrives cut, ending in '… (truncated)', instead of being refused."""
    prefix = f"riskd:test:{uuid.uuid4().hex[:12]}"
    as_of = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    rows = [
        {
            "venue": f"venue_number_{v}",
            "symbol": "BTC",
            "rate_per_hour": 1e-5,
            "rate_per_8h": 8e-5,
            "interval_hours": 8.0,
            "next_funding_time": as_of.isoformat(),
        }
        for v in range(300)
    ]
    await redis.set(f"{prefix}:funding", json.dumps({"as_of": as_of.isoformat(), "rows": rows}), ex=600)
    bot = _bot(tg, redis, prefix)
    bot.start()
    try:
        reply = await _ask(tg, "/funding BTC")
    finally:
        await bot.stop()
        await bot.bot.shutdown()
    assert len(reply) <= MAX_REPLY_CHARS
    assert reply.endswith(TRUNCATED)
    assert reply.startswith("Funding BTC · cycle")
    assert reply.splitlines()[-2].startswith("  venue_number_")  # cut between lines, never inside one


@pytest.mark.parametrize("arg", ["²", "0", "49", "1000", "abc", "-3", "1.5", "٣"])
async def test_history_with_a_bad_n_is_explained(tg: FakeTelegram, redis: Redis, arg: str) -> None:
    """/history with anything but 1..48 answers in plain words, never Python's exception text."""
    bot = _bot(tg, redis, f"riskd:test:{uuid.uuid4().hex[:12]}")
    bot.start()
    try:
        reply = await _ask(tg, f"/history {arg}")
    finally:
        await bot.stop()
        await bot.bot.shutdown()
    assert reply == "n must be a whole number from 1 to 48, e.g. /history 24"


async def test_a_failing_source_is_explained_without_python_text(tg: FakeTelegram) -> None:
    """With Redis unreachable, /status says so in plain words; no exception class or errno reaches the chat."""
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    bot = _bot(tg, dead, "riskd:test:dead")
    bot.start()
    try:
        reply = await asyncio.wait_for(_ask(tg, "/status"), 20)
    finally:
        await bot.stop()
        await bot.bot.shutdown()
        await dead.aclose()
    assert reply.startswith("/status failed: riskd cannot reach its Redis right now.")
    for python_text in ("Error", "errno", "Connect call failed", "Traceback", "127.0.0.1"):
        assert python_text not in reply


@pytest.mark.parametrize(
    ("text", "cut"),
    [
        ("short", False),
        ("x" * MAX_REPLY_CHARS, False),
        ("x" * (MAX_REPLY_CHARS + 1), True),
        ("🔴" * 3000, True),  # 6,000 UTF-16 units: Telegram's count, not Python's 3,000
        ("é" * 4000, False),
    ],
)
def test_cap_reply_counts_like_telegram(text: str, cut: bool) -> None:
    """cap_reply keeps a reply within 4,096 UTF-16 units and marks a cut one."""
    out = cap_reply(text)
    assert len(out.encode("utf-16-le")) // 2 <= MAX_REPLY_CHARS
    assert out.endswith(TRUNCATED) is cut
    assert (out == text) is not cut
