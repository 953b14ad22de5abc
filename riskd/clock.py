"""Clocks the daemon can run on: the wall clock, or a simulated one for replays, demos and tests."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

import pandas as pd


class Clock(Protocol):
    """What the daemon needs of time: read it, and wait on it."""

    def now(self) -> pd.Timestamp: ...

    async def sleep_until(self, when: pd.Timestamp, stop: asyncio.Event) -> None: ...


class WallClock:
    """UTC wall time; sleeps are real and end early when ``stop`` is set."""

    def now(self) -> pd.Timestamp:
        return pd.Timestamp.now(tz="UTC")

    async def sleep_until(self, when: pd.Timestamp, stop: asyncio.Event) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)


class SimClock:
    """Simulated time starting at ``start``.

    It moves only when the daemon sleeps: ``sleep_until`` jumps it to the wake-up time, at once
    (``speed=None``, replays and tests) or after ``(when - now) / speed`` real seconds (the demo's
    "hours per second"). Time standing still while the daemon works means a slow or loaded machine
    makes the demo slower, never makes its hours late: what it shows does not depend on the CPU.
    """

    def __init__(self, start: pd.Timestamp, speed: float | None = None) -> None:
        self._t = pd.Timestamp(start)
        self.speed = speed

    def now(self) -> pd.Timestamp:
        return self._t

    def set(self, when: pd.Timestamp) -> None:
        """Move the clock to ``when`` (tests, replay)."""
        self._t = pd.Timestamp(when)

    async def sleep_until(self, when: pd.Timestamp, stop: asyncio.Event) -> None:
        if when <= self._t:
            await asyncio.sleep(0)
            return
        if self.speed is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=(when - self._t).total_seconds() / self.speed)
            if stop.is_set():
                return
        self._t = pd.Timestamp(when)
