"""When the daemon wakes up: at hour close plus grace, at once when an hour is pending."""

from __future__ import annotations

import pandas as pd
import pytest

from riskd.core.schedule import last_closed_hour, next_run

G = pd.Timedelta(seconds=20)


def T(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="UTC")


@pytest.mark.parametrize(
    ("now", "done", "due"),
    [
        ("2024-01-01 10:00:05", "2024-01-01 08:00", "2024-01-01 10:00:20"),  # hour 09 closes, in grace
        ("2024-01-01 10:00:30", "2024-01-01 08:00", "2024-01-01 10:00:30"),  # grace over: run now
        ("2024-01-01 10:30:00", "2024-01-01 09:00", "2024-01-01 11:00:20"),  # up to date: next close
        ("2024-01-01 10:00:05", "2024-01-01 05:00", "2024-01-01 10:00:05"),  # hours missed: catch up now
        ("2024-01-01 10:00:05", None, "2024-01-01 10:00:05"),  # first start: at once
    ],
)
def test_next_run(now: str, done: str | None, due: str) -> None:
    """The wake-up time for each situation of the cycle."""
    assert next_run(T(now), G, T(done) if done else None) == T(due)


def test_last_closed_hour_is_the_candle_before_now() -> None:
    """At 10:00:00 exactly the 09:00 candle has closed; at 09:59 the 08:00 one."""
    assert last_closed_hour(T("2024-01-01 10:00")) == T("2024-01-01 09:00")
    assert last_closed_hour(T("2024-01-01 09:59:59")) == T("2024-01-01 08:00")


def test_sim_clock_moves_only_when_the_daemon_sleeps() -> None:
    """The simulated clock stands still while the daemon works (so a loaded machine slows the demo
    down instead of making its hours late), and a sleep jumps it to the wake-up time after
    (when - now) / speed real seconds; a stop ends the sleep without moving it."""
    import asyncio
    import time

    from riskd.clock import SimClock

    t0 = pd.Timestamp("2021-05-19T00:00:20Z")
    clock = SimClock(t0, speed=3600 * 20)  # 20 simulated hours per real second

    time.sleep(0.05)  # the daemon working: no simulated time passes
    idle = clock.now()

    async def scenario() -> tuple[float, pd.Timestamp]:
        start = time.monotonic()
        await clock.sleep_until(t0 + pd.Timedelta(hours=1), asyncio.Event())
        slept = time.monotonic() - start
        stop = asyncio.Event()
        stop.set()
        await clock.sleep_until(t0 + pd.Timedelta(hours=5), stop)
        return slept, clock.now()

    slept, after_stop = asyncio.run(scenario())
    assert idle == t0
    assert slept >= 0.045  # 1 simulated hour at 20 h/s
    assert after_stop == t0 + pd.Timedelta(hours=1)
