"""Clocks the daemon can run on: the wall clock, or a simulated one for replays, demos and tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
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
    """Simulated time starting at ``start`` and running ``speed`` times faster than real time.

    ``speed=None`` jumps: sleeping moves the clock straight to the wake-up time (as fast as possible).
    """

    def __init__(self, start: pd.Timestamp, speed: float | None = None) -> None:
        self._t = pd.Timestamp(start)
        self._real = time.monotonic()
        self.speed = speed

    def now(self) -> pd.Timestamp:
        if self.speed is None:
            return self._t
        return self._t + pd.Timedelta(seconds=(time.monotonic() - self._real) * self.speed)

    def set(self, when: pd.Timestamp) -> None:
        """Move the clock to ``when`` (tests)."""
        self._t, self._real = pd.Timestamp(when), time.monotonic()

    async def sleep_until(self, when: pd.Timestamp, stop: asyncio.Event) -> None:
        if self.speed is None:
            if when > self._t:
                self._t = pd.Timestamp(when)
            await asyncio.sleep(0)
            return
        delay = (when - self.now()).total_seconds() / self.speed
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
