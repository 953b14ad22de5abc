"""A slow or hanging Telegram (issue 19, case 3): the real PTB client, the loopback fake answering every
call late, a real Redis. Times are scaled down tenfold from the issue's (a 10 s read time-out becomes 1 s;
8 s and 20 s per call become 0.8 s and 2 s); the fault suite runs them at full scale against real daemons.

What must hold: ``getMe`` never holds an alert back; a send whose outcome is unknown is re-sent at most
once more, marked "possibly repeated", with more patience, so a Telegram that is merely slow confirms it;
past ``alerts.max_copies`` nothing more is sent and the alert is counted as unconfirmed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from riskd.alerting.pipeline import AlertPipeline
from riskd.config import AlertSettings
from riskd.daemon.wiring import drain_outbox
from riskd.telegram.channel import TelegramChannel
from riskd.testing.fake_telegram import FakeTelegram
from tests.test_telegram import TOKEN, hour_line, hourly_alerts, tg_settings

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

READ_TIMEOUT_S = 1.0


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN) as fake:
        yield fake


async def deliver(
    tg: FakeTelegram, redis: Redis, prefix: str, n: int, *, delay_s: float, settle_s: float, **alerts: Any
) -> tuple[list[list[Any]], AlertPipeline, float]:
    """Submit ``n`` alerts with Telegram answering ``delay_s`` late; run the pipeline until the outbox is
    empty and ``settle_s`` more; return each alert's delivered copies, the pipeline and the seconds from
    start to the first message's arrival at the fake."""
    tg.delay_s = delay_s
    channel = TelegramChannel(tg_settings(tg, read_timeout_s=READ_TIMEOUT_S, connect_timeout_s=1.0))
    p = AlertPipeline(
        redis,
        channel,
        alerts=AlertSettings(cooldown_s=900.0, **alerts),
        key_prefix=prefix,
        initial_backoff_s=0.05,
        retry_interval_s=0.5,
        lease_s=10.0,
        poll_s=0.05,
    )
    batch = hourly_alerts(n)
    assert await p.submit(batch) == ["queued"] * n
    started = time.monotonic()
    p.start()
    try:
        await tg.wait_for(lambda: len(tg.delivered) >= 1, 10)
        first_s = time.monotonic() - started
        await drain_outbox(p, 60.0)
        await asyncio.sleep(settle_s)
    finally:
        await p.stop()
        await channel.aclose()
    return [[m for m in tg.delivered if hour_line(a) in m.plain] for a in batch], p, first_s


async def test_telegram_at_8s_per_call_delivers_each_alert_once(
    tg: FakeTelegram, redis: Redis, prefix: str
) -> None:
    """Answers within the read time-out: one copy per alert, none marked, getMe in the background."""
    copies, p, first_s = await deliver(tg, redis, prefix, 3, delay_s=0.8, settle_s=1.0)
    assert [len(c) for c in copies] == [1, 1, 1]
    assert not any("possibly repeated" in m.plain for c in copies for m in c)
    assert first_s < 0.8  # the first send did not wait for getMe's answer
    assert "getMe" in tg.calls
    assert sum(p.stats.unconfirmed.values()) == 0


async def test_telegram_at_20s_per_call_sends_at_most_one_marked_copy(
    tg: FakeTelegram, redis: Redis, prefix: str
) -> None:
    """Answers after twice the read time-out, with no alert sent since start: the first send times out
    (it arrived: a slow Telegram still delivers); it is re-sent once, marked, with more patience and
    confirmed; the alerts after it wait long enough from the start and go once. Never an unbounded
    stream of copies (it was 3 copies in 20 s before, with no bound)."""
    copies, p, first_s = await deliver(tg, redis, prefix, 3, delay_s=2.0, settle_s=3.0)
    assert first_s < 1.0  # getMe (2 s late) held nothing back
    assert [len(c) for c in copies] == [2, 1, 1]
    first, again = copies[0]
    assert "possibly repeated" not in first.plain
    assert again.plain.startswith("[possibly repeated")
    assert not any("possibly repeated" in c[0].plain for c in copies[1:])
    assert p.stats.sent[("telegram", "warning")] + p.stats.sent[("telegram", "info")] == 3
    assert sum(p.stats.unconfirmed.values()) == 0
    assert await p.outbox_size() == 0


async def test_a_telegram_that_never_answers_gets_max_copies_then_an_error(
    tg: FakeTelegram, redis: Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Every request arrives and none is answered: exactly ``alerts.max_copies`` copies (the second marked),
    then the alert leaves the queue, logged as unconfirmed and counted — not re-sent forever."""
    caplog.set_level(logging.ERROR, logger="riskd")
    copies, p, _ = await deliver(tg, redis, prefix, 1, delay_s=120.0, settle_s=2.0, max_copies=2)
    assert [len(c) for c in copies] == [2]
    assert copies[0][1].plain.startswith("[possibly repeated")
    assert p.stats.unconfirmed == {("telegram", "warning"): 1} or p.stats.unconfirmed == {
        ("telegram", "info"): 1
    }
    assert await p.outbox_size() == 0
    assert "alert not confirmed after 2 copies, not sent again (alerts.max_copies)" in caplog.text
    assert TOKEN not in caplog.text
