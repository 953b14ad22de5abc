"""The leader's alert derivation: every hour in the history stream raises its alerts exactly once.

Alerts are derived from what was *published*, never from a cycle's memory. The leader reads the
history stream after a cursor kept in Redis (``<prefix>:alerts:cursor``), derives each hour's alerts
against the hour before it (:func:`riskd.contract.alerts.derive_alerts`), submits them to the outbox, whose
script drops a fingerprint it has seen, and only then moves the cursor past what it read. So:

- hours computed while this process was a follower, spooled while Redis was down, or published by a
  leader that died before alerting, raise their alerts when the (new) leader next reads the stream;
- a crash between the submit and the cursor re-derives the same alerts, and the fingerprints drop them;
- a restated hour (a revision) is derived against the latest revision of the hour before it, and the
  hour after it is re-derived against it when that one was not restated itself. A batch is read as its
  newest revision per hour, so a superseded revision raises nothing.

Redis unreachable means nothing can be queued: the cursor stays, and the next call starts there.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from riskd.contract.alerts import blind, derive_alerts
from riskd.contract.codec import read_entry
from riskd.contract.fence import FENCED, Fence, fenced_set
from riskd.contract.keys import Keys
from riskd.contract.models import Alert, Snapshot

log = logging.getLogger("riskd.contract.alerts")

KEEP = timedelta(days=8)
"""How far back the feed remembers published hours (the prev of a late revision lies within it)."""


class AlertSubmitter(Protocol):
    """What the feed needs of the delivery pipeline (:class:`riskd.alerting.pipeline.AlertPipeline`)."""

    async def submit(self, alerts: Sequence[Alert], *, chart: bytes | None = None) -> list[str]: ...


class AlertFeed:
    """Derives alerts from the history stream by a durable cursor (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        pipeline: AlertSubmitter | Sequence[AlertSubmitter],
        *,
        clock: Callable[[], datetime],
        lookback: timedelta,
        chart: Callable[[], Awaitable[bytes | None]] | None = None,
        batch: int = 500,
        fence: Fence | None = None,
    ) -> None:
        names = Keys(prefix)
        self._client = client
        self._fence = fence or Fence.off()
        self._stream = names.history
        self._cursor_key = names.alert_cursor
        self._pipelines = list(pipeline) if isinstance(pipeline, Sequence) else [pipeline]
        self._clock = clock
        self._lookback = lookback
        self._chart = chart
        self._batch = batch
        self._known: dict[datetime, Snapshot] = {}  # newest revision read per hour
        self._times: list[datetime] = []  # sorted keys of _known
        self._primed = False
        self._cursor_held: str | None = None  # our last write; re-read from Redis after any error

    async def run(self) -> int:
        """Derive and submit the alerts of every entry after the cursor; returns the entries read.

        Raises what the Redis client raises when Redis is unreachable (the cursor then stays)."""
        try:
            return await self._run()
        except BaseException:  # whatever ended the run (cancellation included): re-read the cursor next time
            self._cursor_held = None
            raise

    async def _run(self) -> int:
        cursor = self._cursor_held or await self._cursor()
        if not self._primed:
            await self._prime(cursor)
        read = 0
        while True:
            low = f"({cursor}" if cursor else self._start_id()
            rows = await self._client.xrange(self._stream, min=low, max="+", count=self._batch)
            if not rows:
                self._cursor_held = cursor
                return read
            if not await self._derive(
                [snap for _, fields in rows if (snap := _snapshot(fields)) is not None]
            ):
                self._cursor_held = None  # fenced: a newer leader derives from its own reading of the cursor
                return read
            cursor = _text(rows[-1][0])
            if await fenced_set(self._client, self._fence, "alert_cursor", self._cursor_key, cursor) is None:
                self._cursor_held = None
                return read
            read += len(rows)

    async def _cursor(self) -> str | None:
        raw = await self._client.get(self._cursor_key)
        return _text(raw) if raw else None

    def _start_id(self) -> str:
        """No cursor yet (first start, or Redis lost it): the hours within ``lookback`` are derived; the
        outbox's fingerprints drop what an earlier run already raised."""
        since = self._clock() - self._lookback
        return f"{int(since.timestamp() * 1000)}-0"

    async def _prime(self, cursor: str | None) -> None:
        """Learn the hours published before the cursor, so the first hour read has its predecessor."""
        top = cursor or self._start_id()
        rows = await self._client.xrevrange(self._stream, max=top, min="-", count=24 * 8)
        for _, fields in reversed(rows):
            snap = _snapshot(fields)
            if snap is not None:
                self._remember(snap)
        self._primed = True

    async def _derive(self, entries: list[Snapshot]) -> bool:
        """Derive and submit the entries' alerts; False when a submission was fenced (the cursor stays)."""
        newest: dict[datetime, Snapshot] = {}
        for snap in entries:
            held = newest.get(snap.as_of)
            if held is None or snap.revision >= held.revision:
                newest[snap.as_of] = snap
        now = self._clock()
        alerts: list[Alert] = []
        pending = sorted(newest)
        for as_of in pending:
            cur = newest[as_of]
            alerts += derive_alerts(self._before(as_of), cur, now=now, known=self._known_before(as_of))
            self._remember(cur)
        for as_of in pending:  # a restated hour changes the step into the next one, if that one stood
            after = self._after(as_of)
            if newest[as_of].revision and after is not None and after.as_of not in newest:
                known = self._known_before(after.as_of)
                alerts += derive_alerts(newest[as_of], after, now=now, known=known)
        if not alerts:
            return True
        chart = await self._chart() if self._chart is not None else None
        for pipeline in self._pipelines:  # each channel's outbox drops what it already queued
            outcomes = await pipeline.submit(alerts, chart=chart)
            log.debug("alert feed: %d hour(s), alerts %s", len(newest), outcomes)
            if FENCED in outcomes:
                return False
        return True

    def _remember(self, snap: Snapshot) -> None:
        held = self._known.get(snap.as_of)
        if held is not None and held.revision > snap.revision:
            return
        if held is None:
            bisect.insort(self._times, snap.as_of)
        self._known[snap.as_of] = snap
        cutoff = self._times[-1] - KEEP
        while self._times and self._times[0] < cutoff:
            del self._known[self._times.pop(0)]

    def _before(self, as_of: datetime) -> Snapshot | None:
        i = bisect.bisect_left(self._times, as_of)
        return self._known[self._times[i - 1]] if i > 0 else None

    def _known_before(self, as_of: datetime) -> Snapshot | None:
        """The newest remembered hour before ``as_of`` that riskd could see (market alerts compare with it,
        so a blind spell between two hours neither invents nor hides a transition)."""
        i = bisect.bisect_left(self._times, as_of)
        while i > 0:
            i -= 1
            snap = self._known[self._times[i]]
            if not blind(snap):
                return snap
        return None

    def _after(self, as_of: datetime) -> Snapshot | None:
        i = bisect.bisect_right(self._times, as_of)
        return self._known[self._times[i]] if i < len(self._times) else None


def _snapshot(fields: dict[Any, Any]) -> Snapshot | None:
    """The entry's snapshot; None (logged) for an entry riskd cannot read, which must not stall alerts."""
    try:
        return read_entry(fields)
    except ValueError as err:
        log.error("history entry unreadable, no alerts derived from it: %s", str(err)[:200])
        return None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
