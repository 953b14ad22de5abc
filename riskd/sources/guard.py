"""What one venue asked of us and what it has been doing: its circuit, its ban, its pause, one cycle's tally.

A 429, a ban or a dead host is a property of the venue (one IP, one host), not of the symbol a request
was for, so every request to a venue passes through its one ``VenueGuard``:

- **circuit breaker**: after ``retry.circuit_failures`` failed requests in a row the circuit opens and
  requests fail at once (``CircuitOpen``, nothing sent) for a cool-down that doubles with each failed
  probe up to ``retry.circuit_max_cooldown_s``; then one probe request is let through, and its success
  closes the circuit;
- **the venue's wait**: a Retry-After or a ban is never shortened. A wait the request can afford (within
  ``retry.max_wait_s`` and the cycle's deadline) pauses every request to the venue; a longer one fails the
  request now (``VenueBanned``) and no request goes out until it is over;
- **the cycle**: its deadline (set by ``begin_cycle``) bounds every wait, and a tally of requests,
  retries and failures becomes the venue's one summary line.

Times the venue names (a ban's end, a circuit's next probe) are on the source's clock, the clock the
venue is read at (simulated in the demo and tests); short pauses are slept on the event loop's clock.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from riskd.errors import CircuitOpen, RateLimited, SourceError, TemporaryError, VenueBanned
from riskd.sources.options import RetryOptions

log = logging.getLogger("riskd.sources")

Clock = Callable[[], pd.Timestamp]
Health = Literal["ok", "degraded", "down"]
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
_STATUS = re.compile(r"https?://\S+ ([45]\d\d) ")  # ccxt: "<id> <method> <url> <status> <reason> <body>"


@dataclass
class Tally:
    """One cycle of a venue: HTTP requests sent, of them retries, and requests that failed in the end."""

    requests: int = 0
    retried: int = 0
    failed: int = 0
    refused: int = 0  # failed at once, nothing sent (circuit open, banned)
    cut: int = 0  # fetches cancelled by the cycle's deadline


class VenueGuard:
    """The circuit breaker, ban, pause, deadline and cycle tally of one venue (see the module docstring)."""

    def __init__(self, venue: str, policy: RetryOptions, clock: Clock) -> None:
        self.venue = venue
        self._policy = policy
        self._clock = clock
        self.state = CLOSED
        self.failures = 0  # failed requests in a row
        self.trips = 0  # circuit openings since the last success: the cool-down doubles with each
        self.open_until: pd.Timestamp | None = None
        self.down_since: pd.Timestamp | None = None
        self.banned_until: pd.Timestamp | None = None
        self.reason = ""
        self.last_error = ""  # of this cycle, for its summary line
        self.tally = Tally()
        self._pause_until = 0.0  # event-loop time
        self._deadline: float | None = None  # event-loop time

    # ---- the cycle -------------------------------------------------------------------------------

    def begin_cycle(self, deadline_s: float | None) -> None:
        """Start a cycle's tally; every wait of its requests must end within ``deadline_s`` from now."""
        self.tally = Tally()
        self.last_error = ""
        self._deadline = None if deadline_s is None else _loop_time() + deadline_s

    def end_cycle(self) -> None:
        """Lift the cycle's deadline (a backfill after it is bounded by ``max_wait_s`` only)."""
        self._deadline = None

    def time_left(self) -> float:
        """Seconds a request may still wait: the cycle's rest, never more than ``retry.max_wait_s``."""
        left = self._policy.max_wait_s
        if self._deadline is not None:
            left = min(left, self._deadline - _loop_time())
        return max(0.0, left)

    @property
    def is_open(self) -> bool:
        """Whether requests are refused until a probe (a retry's back-off should not wait for that)."""
        return self.state != CLOSED

    # ---- one attempt -----------------------------------------------------------------------------

    async def admit(self, endpoint: str) -> bool:
        """Let one request go out, after any pause the venue asked for; True when it is the probe.

        Raises ``VenueBanned`` while banned (or when the pause outlasts what is left of the cycle) and
        ``CircuitOpen`` while the circuit is open or another probe is out.
        """
        delay = self._pause_until - _loop_time()
        if delay > 0:
            if delay > self.time_left():
                self.tally.refused += 1
                raise VenueBanned(
                    f"{self.venue} {endpoint}: not sent, the venue asked for {delay:.1f}s more and the cycle "
                    f"has {self.time_left():.1f}s left",
                    venue=self.venue, endpoint=endpoint, retry_after=delay,
                )  # fmt: skip
            await asyncio.sleep(delay)
        now = self._clock()
        if self.banned_until is not None and now < self.banned_until:
            self.tally.refused += 1
            wait = (self.banned_until - now).total_seconds()
            raise VenueBanned(
                f"{self.venue} {endpoint}: not sent, banned until {_hms(self.banned_until)} ({self.reason})",
                venue=self.venue, endpoint=endpoint, retry_after=wait,
            )  # fmt: skip
        if self.state == CLOSED:
            return False
        if self.state == OPEN and self.open_until is not None and now >= self.open_until:
            self.state = HALF_OPEN
            log.debug("%s: circuit half-open, probing with %s", self.venue, endpoint)
            return True
        self.tally.refused += 1
        raise CircuitOpen(
            f"{self.venue} {endpoint}: not sent, circuit open since {_hms(self.down_since)} "
            f"(next probe {_hms(self.open_until)}): {self.reason}",
            venue=self.venue, endpoint=endpoint, reason=self.reason,
        )  # fmt: skip

    def sent(self, retry: bool) -> None:
        """Count one request that goes out."""
        self.tally.requests += 1
        self.tally.retried += int(retry)

    def succeeded(self) -> None:
        """The venue answered: the circuit closes and the failure streak ends."""
        if self.state != CLOSED:
            log.info("%s: circuit closed, the venue answers again", self.venue)
        self.state = CLOSED
        self.failures = self.trips = 0
        self.open_until = self.down_since = None
        self.reason = ""

    def failed(self, err: SourceError, cause: BaseException, probe: bool) -> SourceError:
        """Account for a failed request; returns the error to raise (``VenueBanned`` for a wait too long).

        A rate limit or a request the venue refused as wrong is an answer (the venue is up); timeouts,
        5xx, refused connections and bad replies count towards opening the circuit.
        """
        if isinstance(err, RateLimited):
            self.succeeded()
            return self._honour(err)
        if not isinstance(err, TemporaryError):
            self.succeeded()
            return err
        self.failures += 1
        self.reason = self.last_error = f"{_root_cause(cause)} ({err.endpoint})"
        if probe or (self.state == CLOSED and self.failures >= self._policy.circuit_failures):
            self._trip()
        return err

    def abandoned(self, probe: bool) -> None:
        """A request was cancelled in flight: a probe slot is freed so the next request can probe."""
        if probe and self.state == HALF_OPEN:
            self.state = OPEN

    def wait_asked(self, err: RateLimited) -> float | None:
        """Seconds the venue asked us to wait (the longer of Retry-After and a named moment), if it said."""
        waits = [err.retry_after] if err.retry_after is not None else []
        if err.until_ms is not None:
            waits.append((err.until_ms - self._clock().value // 1_000_000) / 1000)
        return max(0.0, *waits) if waits else None

    def _honour(self, err: RateLimited) -> RateLimited:
        wait = self.wait_asked(err)
        if wait is None or wait <= 0:
            return err
        if wait <= self.time_left():
            self._pause_until = max(self._pause_until, _loop_time() + wait)
            return err
        self.banned_until = self._clock() + pd.Timedelta(seconds=wait)
        # After the ban the circuit is half-open: one probe goes out first, not a burst of every symbol's
        # request into what may be a renewed ban.
        self.state = OPEN
        self.open_until = self.banned_until
        self.down_since = self.down_since or self._clock()
        self.reason = (
            f"{'ban' if err.until_ms is not None else 'Retry-After'} of {wait:.0f}s ({err.endpoint})"
        )
        log.warning(
            "%s: the venue asked us to wait %.0fs (until %s); no request goes to it until then",
            self.venue, wait, _hms(self.banned_until),
        )  # fmt: skip
        return VenueBanned(
            f"{err} (asked to wait {wait:.0f}s, more than the {self.time_left():.0f}s this request may wait)",
            venue=err.venue, endpoint=err.endpoint, retry_after=wait, until_ms=err.until_ms,
        )  # fmt: skip

    def _trip(self) -> None:
        first = self.state == CLOSED
        self.trips += 1
        p = self._policy
        cooldown = min(p.circuit_max_cooldown_s, p.circuit_cooldown_s * 2 ** (self.trips - 1))
        now = self._clock()
        self.state = OPEN
        self.open_until = now + pd.Timedelta(seconds=cooldown)
        self.down_since = self.down_since or now
        level = logging.WARNING if first else logging.DEBUG
        log.log(
            level, "%s: circuit open for %.0fs after %d failed requests in a row: %s",
            self.venue, cooldown, self.failures, self.reason,
        )  # fmt: skip

    # ---- what it looks like ----------------------------------------------------------------------

    def health(self) -> Health:
        """down: circuit open or banned; degraded: requests failed lately; ok otherwise."""
        if self.state != CLOSED or (self.banned_until is not None and self._clock() < self.banned_until):
            return "down"
        t = self.tally
        return "degraded" if self.failures or t.failed or t.cut else "ok"

    def summary(self) -> str:
        """The venue's one line for the cycle, e.g. ``binance: 150 requests, 3 retried, 0 failed, circuit closed``."""
        t = self.tally
        counts = f"{t.requests} requests, {t.retried} retried, {t.failed} failed"
        if t.refused:
            counts += f" ({t.refused} not sent)"
        if t.cut:
            counts += f", {t.cut} cut by the deadline"
        if self.banned_until is not None and self._clock() < self.banned_until:
            return f"{self.venue}: BANNED until {_hms(self.banned_until)}: {self.reason}; {counts}"
        if self.state != CLOSED:
            return (
                f"{self.venue}: DOWN since {_hms(self.down_since)} (circuit {self.state}, next probe "
                f"{_hms(self.open_until)}): {self.reason}; {counts}"
            )
        why = f": {self.last_error}" if t.failed and self.last_error else ""
        return f"{self.venue}: {counts}, circuit closed{why}"


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


def _hms(ts: pd.Timestamp | None) -> str:
    return "?" if ts is None else f"{ts:%H:%M:%S}"


def _root_cause(err: BaseException) -> str:
    """The innermost cause's type (ConnectionRefusedError, RequestTimeout), with an HTTP status if named."""
    root = err
    while root.__cause__ is not None or (root.__context__ is not None and not root.__suppress_context__):
        root = root.__cause__ or root.__context__  # type: ignore[assignment]
    status = _STATUS.search(str(root)) if root is err else None
    return f"{type(root).__name__} {status.group(1)}" if status else type(root).__name__


def utc_clock() -> pd.Timestamp:
    """The wall clock, UTC (the guard of a bare ``call_with_retry``)."""
    return pd.Timestamp.now(tz="UTC")
