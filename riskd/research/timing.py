"""Wall seconds per step of a validation run, and the progress callback that times the parts.

Pure bookkeeping (a clock read, no I/O): ``riskd validate`` prints these and writes them to
``results.json``; the benchmark reads them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

Say = Callable[[str], None]
"""Told the name of each step as it starts."""


@dataclass
class Timings:
    """Wall seconds per step, in order (loading, core, inputs, each part, the report)."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the ``with`` block under ``name``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

    @contextmanager
    def parts(self, say: Say) -> Iterator[Say]:
        """A progress callback for ``run_validation`` that times each part from its start to the
        next one's (the last part ends with the ``with`` block) and passes the name on to ``say``."""
        current: list[tuple[str, float]] = []

        def close() -> None:
            if current:
                name, t0 = current.pop()
                self.seconds[name] = time.perf_counter() - t0

        def progress(name: str) -> None:
            close()
            current.append((name, time.perf_counter()))
            say(name)

        try:
            yield progress
        finally:
            close()

    @property
    def total(self) -> float:
        """Sum of all steps."""
        return sum(self.seconds.values())
