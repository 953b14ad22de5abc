"""Telegram faults: 429, 500 and down for hours while alerts are due; garbage updates to the command bot."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from faultkit import HOUR, OPERATOR, T0, assert_kept, market, rig

pytestmark = pytest.mark.slow

CASCADE = T0 + 10 * HOUR


def test_telegram_429_500_and_down_delivers_every_alert_once(fault_tmp: Path, record: dict[str, Any]) -> None:
    """Telegram answers 429 (retry_after), then 500 twice, then is unreachable for 5 h: once it is back every
    alert is delivered exactly once."""
    with rig(fault_tmp, market(CASCADE)) as r:
        r.start_daemon()
        r.drive(T0, CASCADE - HOUR)
        r.tg.fail_next(429, retry_after=1)
        r.tg.fail_next(500, times=2)
        r.drive(CASCADE, CASCADE + HOUR)
        assert r.gate is not None
        r.gate.close()
        r.drive(CASCADE + 2 * HOUR, CASCADE + 7 * HOUR)  # the recovery alert is due while Telegram is down
        r.gate.open()
        r.drive(CASCADE + 8 * HOUR, CASCADE + 9 * HOUR)
        r.wait_alerts_settled(timeout=40)
        v = r.judge()
        record.update(v.as_dict())
        served = sorted(set(r.tg.failures_served))
        if not {429, 500} <= set(served):
            v.add(f"the scripted Telegram failures were not all met (served {served}): the scenario is void")
        assert_kept(v, r)


def _push_raw(tg: Any, update: dict[str, Any]) -> None:
    """Queue a raw (possibly malformed) update in the fake, as Telegram could send one."""
    tg._loop.call_soon_threadsafe(tg._add_update, update)


def _replies(tg: Any) -> list[str]:
    return [m.text for m in tg.messages_to(OPERATOR)]


def _wait_reply(tg: Any, n: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(_replies(tg)) >= n:
            return True
        time.sleep(0.05)
    return False


def test_garbage_updates_do_not_stop_the_command_bot(fault_tmp: Path, record: dict[str, Any]) -> None:
    """A message that is a string and a text that is a number (finding 8): the bot answers the next command,
    confirms the bad updates so a restart does not read them again, and explains bad input in plain words."""
    with rig(fault_tmp, market(CASCADE)) as r:
        d = r.start_daemon()
        r.drive(T0, T0 + HOUR)
        tg = r.tg
        problems: list[str] = []
        garbage = [next(tg._update_ids), next(tg._update_ids)]
        _push_raw(tg, {"update_id": garbage[0], "message": "not an object"})
        _push_raw(
            tg,
            {
                "update_id": garbage[1],
                "message": {
                    "message_id": 1,
                    "date": int(time.time()),
                    "text": 12345,
                    "chat": {"id": OPERATOR, "type": "private"},
                    "from": {"id": OPERATOR, "is_bot": False, "first_name": "op"},
                },
            },
        )
        tg.push_command(OPERATOR, OPERATOR, "/status")
        if not _wait_reply(tg, 1):
            problems.append("no reply to /status after two garbage updates: the command bot stopped")
        tg.push_command(OPERATOR, OPERATOR, "/history ²")
        if _wait_reply(tg, 2):
            reply = _replies(tg)[-1]
            if any(s in reply for s in ("invalid literal", "Traceback", "Error", "int()")):
                problems.append(f"/history ² answered with Python's error text: {reply[:200]!r}")
        else:
            problems.append("no reply to /history ²")
        d.terminate()
        r.start_daemon("b")
        n = len(_replies(tg))
        tg.push_command(OPERATOR, OPERATOR, "/status")
        if not _wait_reply(tg, n + 1):
            problems.append(
                "after a restart the command bot does not answer /status (bad updates read again?)"
            )
        if tg.confirmed_offset <= max(garbage):
            problems.append(
                f"the bad updates were never confirmed (offset {tg.confirmed_offset}, ids {garbage})"
            )
        record.update({"hours_lost": 0, "alerts_lost": 0, "duplicates": 0, "stale_as_fresh": 0})
        if problems:
            logs = "\n".join(f"--- {x.name} ---\n{x.tail(15)}" for x in r.daemons)
            pytest.fail("\n".join(["command bot promises broken:", *problems, logs]), pytrace=False)
