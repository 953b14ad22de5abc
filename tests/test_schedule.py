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
