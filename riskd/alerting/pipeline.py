"""The alert delivery pipeline: policy, de-duplication and a durable Redis outbox, for any channel.

``submit()`` applies the policy in one atomic Redis script: mode ``off`` → fingerprint already seen
(``duplicate``) → muted → cooldown → queued in the outbox, one item per destination. ``run()`` is the
worker that empties the outbox through a :class:`Channel` (Telegram or console).

Exactly-once, and where it stops. Each item is claimed with a lease (its score in the due set
becomes ``now + lease``), marked ``inflight`` just before the request, and removed in the same
script that writes its ``sent`` marker — only after the channel confirmed. The worker is strictly
sequential, so once the channel has seen request N+1, item N's mark is committed: a crash can
never leave a delivery the channel observed unmarked, except the one in flight. A worker killed
before ``inflight`` leaves an item that is claimed again, clean, after the lease. The window left
is from ``inflight`` to the mark (one round trip plus one Redis call): the channel has no
idempotency key, so after a crash there we cannot know whether it arrived. We err on delivery:
the item is re-sent headed "possibly repeated" rather than risk losing a critical alert. Sends
are cut off at 60 % of the lease, so a live worker's lease is not taken over (unless the process
stalls for longer than that, e.g. SIGSTOP).

Why this module is over 400 lines: one class whose delivery steps share the claim → start → mark
discipline above, kept together so that invariant reads in one place; the Redis side is
:mod:`riskd.alerting.outbox`, the local receipts :mod:`riskd.alerting.receipts`, the channel
:mod:`riskd.alerting.channel`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from riskd.alerting.channel import (
    AlertStats,
    Channel,
    DeliveryError,
    RateLimiter,
    as_delivered,
    format_message,
)
from riskd.alerting.outbox import MUTE_TYPES, Item, Outbox
from riskd.alerting.receipts import Receipts
from riskd.contract.fence import Fence
from riskd.contract.models import Alert

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from riskd.config import AlertSettings, Settings

log = logging.getLogger("riskd.alerting")


class AlertPipeline:
    """Policy + outbox + delivery worker for one channel; see the module docstring for the guarantees.

    ``on_sent(channel, severity)`` and ``on_suppressed(reason)`` are called as things happen (the
    metrics sink increments its Prometheus counters there); ``stats`` keeps the same numbers.
    """

    def __init__(
        self,
        redis: Redis,
        channel: Channel,
        *,
        alerts: AlertSettings,
        key_prefix: str,
        retry_interval_s: float = 30.0,
        initial_backoff_s: float = 1.0,
        lease_s: float = 60.0,
        poll_s: float = 1.0,
        rate_window_s: float = 60.0,
        dedup_ttl_s: float = 30 * 86400,
        sent_ttl_s: float = 7 * 86400,
        clock: Callable[[], float] = time.time,
        on_sent: Callable[[str, str], None] | None = None,
        on_suppressed: Callable[[str], None] | None = None,
        on_unconfirmed: Callable[[str, str], None] | None = None,
        fence: Fence | None = None,
        receipts: Receipts | None = None,
    ) -> None:
        self.channel = channel
        self._receipts = receipts
        self.outbox = Outbox(
            redis,
            key_prefix,
            uuid.uuid4().hex[:12],
            seen_ttl_s=dedup_ttl_s,
            sent_ttl_s=sent_ttl_s,
            fence=fence,
        )
        self._settings = alerts
        self._retry_interval_s = retry_interval_s
        self._initial_backoff_s = min(initial_backoff_s, retry_interval_s)
        self._lease_ms = int(lease_s * 1000)
        self._send_timeout_s = lease_s * 0.6  # a send is cut off well before its lease can lapse
        self._poll_s = poll_s
        self._clock = clock
        self._on_sent = on_sent
        self._on_suppressed = on_suppressed
        self._on_unconfirmed = on_unconfirmed
        limit = channel.max_per_minute
        self._limiter = RateLimiter(limit, rate_window_s) if limit else None
        self._replies = "reply_to" in inspect.signature(channel.send).parameters  # older channels: no threads
        self._paused_until = 0.0
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.stats = AlertStats()

    @classmethod
    def from_settings(cls, redis: Redis, channel: Channel, settings: Settings, **kw: Any) -> AlertPipeline:
        """The pipeline as ``riskd run`` configures it (``kw``: hooks and test-speed timings)."""
        kw.setdefault("key_prefix", settings.redis.key_prefix)
        return cls(
            redis, channel, alerts=settings.alerts, retry_interval_s=settings.telegram.retry_interval_s, **kw
        )

    # -- submission ------------------------------------------------------------------------------

    async def submit(self, alerts: Sequence[Alert], *, chart: bytes | None = None) -> list[str]:
        """Apply the policy and queue what passes; returns each alert's outcome.

        Outcomes: ``queued``, ``upgrade`` (queued: a stronger correction of an alert already queued),
        ``off``, ``duplicate``, ``downgrade`` (a weaker correction: not sent), ``muted``, ``cooldown``. Redis unreachable raises
        (RedisError): nothing is held in memory, the caller (:class:`riskd.alerting.feed.AlertFeed`)
        keeps its cursor and derives the same alerts again later; fingerprints make that idempotent.
        """
        chart_key = ""
        if chart and any(self._mode(a) != "off" for a in alerts):
            with contextlib.suppress(RedisError):
                chart_key = await self.outbox.store_chart(chart)
        outcomes = [await self._submit_one(alert, chart_key) for alert in alerts]
        self._wake.set()
        return outcomes

    async def _submit_one(self, alert: Alert, chart_key: str) -> str:
        mode = self._mode(alert)
        if mode == "off":
            outcome = "off"
        else:
            outcome = await self.outbox.submit(
                alert,
                silent=mode == "silent",
                chart_key=chart_key,
                now_ms=self._now_ms(),
                cooldown_ms=self._cooldown_ms(alert),
                dests=self._dests_for(alert),
            )
        if outcome not in ("queued", "upgrade"):
            self._suppressed(outcome, alert)
        elif outcome == "upgrade":
            log.warning(
                "alert upgraded kind=%s as_of=%s severity=%s: corrected data raised it",
                alert.kind,
                alert.as_of.isoformat(),
                alert.severity,
            )
        return outcome

    def _suppressed(self, reason: str, alert: Alert) -> None:
        self.stats.suppressed[reason] += 1
        if self._on_suppressed:
            self._on_suppressed(reason)
        log.info("alert suppressed reason=%s kind=%s as_of=%s", reason, alert.kind, alert.as_of.isoformat())

    def _cooldown_ms(self, alert: Alert) -> int:
        """The kind's cooldown; none for a provisional alert's confirmation or retraction, which
        settles a message already sent rather than raising a new one."""
        if alert.kind == "cascade_developing" and alert.figures.get("to") != "developing":
            return 0
        return int(self._settings.cooldown_s * 1000)

    def _mode(self, alert: Alert) -> str:
        return str(getattr(self._settings, alert.kind))

    def _dests_for(self, alert: Alert) -> list[str]:
        route = getattr(self.channel, "destinations_for", None)
        return list(route(alert)) if route is not None else list(self.channel.destinations)

    # -- escalation ------------------------------------------------------------------------------

    @property
    def escalation(self) -> tuple[list[str], float] | None:
        """(chats, minutes) when the channel escalates unacknowledged critical alerts, else None."""
        esc = getattr(self.channel, "escalation", None)
        return esc if esc and esc[0] and esc[1] > 0 else None

    async def escalate_due(self) -> list[tuple[str, str]]:
        """Escalate every critical alert whose wait is over and nobody acknowledged: (fingerprint, outcome).

        Run by the leader only (:class:`riskd.alerting.escalation.EscalationLoop`); the claim in Redis is
        atomic, so even two replicas that both believe they lead escalate each alert at most once.
        """
        esc = self.escalation
        if esc is None:
            return []
        out = []
        for fp in await self.outbox.due_escalations(self._now_ms()):
            outcome = await self.outbox.escalate(fp, now_ms=self._now_ms(), minutes=esc[1], dests=esc[0])
            log.log(
                logging.WARNING if outcome == "escalated" else logging.INFO,
                "escalation fingerprint=%s outcome=%s",
                fp,
                outcome,
            )
            out.append((fp, outcome))
        if out:
            self._wake.set()
        return out

    # -- mute ------------------------------------------------------------------------------------

    async def mute(self, kind: str, seconds: float) -> datetime:
        """Suppress alerts of ``kind`` (or ``all``) raised during the next ``seconds``; returns the end."""
        if kind not in MUTE_TYPES:
            raise ValueError(f"unknown alert type {kind!r}; one of {', '.join(MUTE_TYPES)}")
        until = self._now() + timedelta(seconds=seconds)
        await self.outbox.set_mute(kind, until.isoformat(), seconds)
        return until

    async def unmute(self, kind: str | None = None) -> int:
        """Lift one mute, or every mute when ``kind`` is None; returns how many were lifted."""
        return await self.outbox.clear_mutes(MUTE_TYPES if kind is None else (kind,))

    async def mutes(self) -> dict[str, float]:
        """Active mutes: type → seconds left."""
        return await self.outbox.mutes()

    # -- delivery --------------------------------------------------------------------------------

    async def outbox_size(self) -> int:
        """Items waiting to be (re)sent, in flight included; also cached in ``stats.outbox_size``."""
        self.stats.outbox_size = await self.outbox.size()
        return self.stats.outbox_size

    def start(self) -> asyncio.Task[None]:
        """Run the delivery worker as a task; ``await stop()`` ends it after the send in flight."""
        self._stop.clear()
        self._task = asyncio.create_task(self.run(self._stop), name="riskd-alert-delivery")
        return self._task

    async def stop(self, grace_s: float = 10.0) -> None:
        """Ask the worker to finish its current send and return; cancel it after ``grace_s``."""
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, grace_s)
            self._task = None

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Deliver due items until ``stop`` is set (or the task is cancelled)."""
        stop = stop or asyncio.Event()
        unreachable = False
        while not stop.is_set():
            try:
                busy = await self.deliver_next(stop)
                await self.outbox_size()
                if unreachable:
                    log.warning("alert outbox reachable again (redis)")
                unreachable = False
            except RedisError as exc:
                if not unreachable:  # once per outage, not once a poll
                    log.warning(
                        "alert outbox unreachable (redis): %s; retrying every %.1fs", exc, self._poll_s
                    )
                unreachable = True
                busy = False
            if not busy:
                await self._idle(stop, self._poll_s)

    async def deliver_next(self, stop: asyncio.Event | None = None) -> bool:
        """Send the oldest due item, if any; False when there was nothing due."""
        stop = stop or asyncio.Event()
        await self._wait_until_allowed(stop)
        if stop.is_set():
            return False
        item = await self.outbox.claim(self._now_ms(), self._lease_ms)
        if item is None:
            return False
        if item.dest not in self.channel.destinations:
            log.error("outbox item for a destination this channel does not serve, dropped id=%s", item.id)
            await self.outbox.abandon(item, "dropped: destination not configured")
            return True
        held = self._receipts.get(self.channel.name, item) if self._receipts is not None else None
        if held is not None:
            await self._delivered_before(item, held.receipt, held.delivered_ms)
            return True
        if item.copies >= self._settings.max_copies:
            await self._give_up(item)
            return True
        root = await self.outbox.thread_root(item.alert.thread, item.dest) if item.alert.thread else None
        item.alert = as_delivered(item, root[1] if root else "")
        reply_to = await self.outbox.receipt(item.upgrade_of, item.dest) if item.upgrade_of else None
        reply_to = reply_to or (root[0] if root else None)
        render = getattr(self.channel, "render", format_message)
        text = render(item.alert, now=self._now(), maybe_repeated=item.maybe_sent, escalation=item.escalation)
        chart = await self.outbox.load_chart(item.chart_key)
        if not await self.outbox.start(item):
            return True  # the lease lapsed and another worker owns the item now
        if self._limiter:
            self._limiter.record()
        try:
            extra: dict[str, Any] = (
                {"alert": item.alert} if getattr(self.channel, "structured", False) else {}
            )
            if reply_to and self._replies:
                extra["reply_to"] = reply_to
            sent_ms = self._now_ms()  # the delivery's time, as its text judged it (edits render the same)
            send = self.channel.send(item.dest, text, silent=item.silent, chart=chart, **extra)
            receipt = await asyncio.wait_for(send, self._send_timeout_s)
        except DeliveryError as exc:
            await self._release(item, exc)
        except TimeoutError:
            await self._release(item, DeliveryError("send timed out", definite=False))
        else:
            await self._delivered(item, receipt, sent_ms)
        return True

    async def _delivered_before(self, item: Item, receipt: str, sent_ms: int) -> None:
        """This replica's local record says the copy went out, but Redis queued it again (Redis lost the
        receipt: restored from an older snapshot): mark it delivered with the recorded receipt, never
        send it twice."""
        log.warning(
            "alert already delivered (local receipt %s), queued again by a Redis that lost its receipt "
            "(restored from an older snapshot?): not sent again id=%s channel=%s dest=%s kind=%s severity=%s",
            receipt,
            item.id,
            self.channel.name,
            item.dest,
            item.alert.kind,
            item.alert.severity,
        )
        await self.outbox.mark(item, receipt, delivered_ms=sent_ms)
        if item.alert.thread:
            await self.outbox.set_thread_root(item.alert.thread, item.dest, receipt, item.alert.kind)
        self.stats.suppressed["delivered_before"] += 1
        if self._on_suppressed:
            self._on_suppressed("delivered_before")

    async def _delivered(self, item: Item, receipt: str, sent_ms: int) -> None:
        if self._receipts is not None:  # first, so a crash before the Redis mark cannot repeat it
            await self._receipts.record(self.channel.name, item, receipt, sent_ms)
        esc = self.escalation
        due = 0
        if esc is not None and item.alert.severity == "critical" and item.escalation is None:
            due = self._now_ms() + int(esc[1] * 60_000)
        if not await self.outbox.mark(item, receipt, delivered_ms=sent_ms, escalate_at_ms=due):
            log.warning("alert delivered after its lease lapsed (possible duplicate) id=%s", item.id)
        if item.alert.thread:
            await self.outbox.set_thread_root(item.alert.thread, item.dest, receipt, item.alert.kind)
        self.stats.sent[(self.channel.name, item.alert.severity)] += 1
        self.stats.last_success_ts = self._clock()
        if self._on_sent:
            self._on_sent(self.channel.name, item.alert.severity)
        log.info(
            "alert sent channel=%s dest=%s kind=%s severity=%s receipt=%s",
            self.channel.name,
            item.dest,
            item.alert.kind,
            item.alert.severity,
            receipt,
        )

    async def _give_up(self, item: Item) -> None:
        """``alerts.max_copies`` copies went out and none was confirmed: send no more (each further copy
        could be one more duplicate in the chat); say so loudly and count it."""
        log.error(
            "alert not confirmed after %d copies, not sent again (alerts.max_copies) id=%s channel=%s dest=%s "
            "kind=%s severity=%s: check the chat",
            item.copies,
            item.id,
            self.channel.name,
            item.dest,
            item.alert.kind,
            item.alert.severity,
        )
        if await self.outbox.abandon(item, f"unconfirmed after {item.copies} copies"):
            self.stats.unconfirmed[(self.channel.name, item.alert.severity)] += 1
            if self._on_unconfirmed:
                self._on_unconfirmed(self.channel.name, item.alert.severity)

    async def _release(self, item: Item, exc: DeliveryError) -> None:
        attempts = await self.outbox.release(
            item,
            now_ms=self._now_ms(),
            counts=exc.retry_after is None,
            definite=exc.definite,
            error=str(exc),
            defer_ms=int(self._retry_interval_s * 1000),
        )
        if exc.retry_after is not None:
            pause = exc.retry_after  # flood control is per bot: everything waits
        elif not exc.definite:
            pause = self._initial_backoff_s  # this item waits retry_interval_s (RELEASE); the others need not
        else:
            pause = min(self._retry_interval_s, self._initial_backoff_s * 2 ** max(0, attempts - 1))
        self._paused_until = time.monotonic() + pause
        log.warning(
            "alert delivery failed id=%s attempt=%s definite=%s retry_in=%.1fs error=%s",
            item.id,
            attempts,
            exc.definite,
            pause,
            exc,
        )

    async def _wait_until_allowed(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            delay = max(
                self._paused_until - time.monotonic(), self._limiter.delay() if self._limiter else 0.0
            )
            if delay <= 0:
                return
            await self._idle(stop, delay)

    async def _idle(self, stop: asyncio.Event, seconds: float) -> None:
        self._wake.clear()
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
