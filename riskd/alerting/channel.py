"""What a channel is (:class:`Channel`), how it fails (:class:`DeliveryError`), and how an alert reads as a
message: the text a console shows, the headers a delivery adds (an upgrade, a confirmation, what the
cooldown held), and the rate limit a chat imposes."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from riskd.alerting.outbox import Item
from riskd.contract.alerts import LATE_AFTER_S, format_late
from riskd.contract.models import Alert

ICONS = {"critical": "🔴", "warning": "🟠", "info": "🟢"}


class DeliveryError(Exception):
    """A channel could not deliver. ``definite``: surely not delivered (the server said no)."""

    def __init__(self, message: str, *, definite: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.definite = definite
        self.retry_after = retry_after


class Channel(Protocol):
    """Where alerts go. ``send`` returns a receipt (e.g. the message id) once the channel confirmed.

    Optional, looked up with ``getattr``: ``destinations_for(alert)`` (routing; default: all
    ``destinations``), ``render(alert, now=, maybe_repeated=, escalation=)`` (own formatting),
    ``escalation`` (``(dests, minutes)``: critical alerts left unacknowledged are re-sent there) and
    ``structured`` (``send`` also gets ``alert=``).
    """

    name: str
    destinations: list[str]
    max_per_minute: int | None

    async def send(
        self, dest: str, text: str, *, silent: bool, chart: bytes | None, reply_to: str | None = None
    ) -> str: ...


@dataclass
class AlertStats:
    """Counters the metrics sink reads: sent{channel,severity}, suppressed{reason},
    unconfirmed{channel,severity} (``alerts.max_copies`` reached), outbox size."""

    sent: Counter[tuple[str, str]] = field(default_factory=Counter)
    suppressed: Counter[str] = field(default_factory=Counter)
    unconfirmed: Counter[tuple[str, str]] = field(default_factory=Counter)
    outbox_size: int = 0
    last_success_ts: float | None = None


class RateLimiter:
    """At most ``max_events`` per sliding ``window_s`` (Telegram: ~20 messages a minute per group)."""

    def __init__(self, max_events: int, window_s: float = 60.0) -> None:
        self.max_events = max_events
        self.window_s = window_s
        self._times: list[float] = []

    def delay(self) -> float:
        """Seconds until one more event is allowed (0 when allowed now)."""
        now = time.monotonic()
        self._times = [t for t in self._times if now - t < self.window_s]
        if len(self._times) < self.max_events:
            return 0.0
        return self._times[0] + self.window_s - now

    def record(self) -> None:
        """Count one event now."""
        self._times.append(time.monotonic())


def format_message(
    alert: Alert, *, now: datetime, maybe_repeated: bool = False, escalation: float | None = None
) -> str:
    """The text a human reads: severity, title, figures; delays, possible repeats, escalation said plainly.

    Channels that format for themselves (Telegram's HTML) provide ``render`` with the same arguments."""
    head = f"{ICONS.get(alert.severity, '')} {alert.severity.upper()} · {alert.title}".strip()
    lines = [head]
    if escalation is not None:
        lines.insert(0, f"[ESCALATION: not acknowledged within {escalation:g} min]")
    delayed = (now - alert.as_of).total_seconds()
    if delayed > LATE_AFTER_S and delayed - alert.late_by_seconds > LATE_AFTER_S:
        lines.insert(0, f"[DELAYED: delivered {format_late(delayed)} after the hour — delivery was held up]")
    if maybe_repeated:
        lines.insert(0, "[possibly repeated: an earlier delivery was interrupted]")
    return "\n".join([*lines, alert.body])


CONFIRMED = "Confirmed at the hour close (provisional alert above)"


def as_delivered(item: Item, root_kind: str) -> Alert:
    """The alert as its message says it, headers first: an upgrade says what it corrects, a cascade that
    a provisional "developing" alert announced says it is confirmed (only when that alert was sent: the
    thread's first message was one), and the alerts the cooldown held since the last one are listed."""
    alert = item.alert
    title, lines = alert.title, []
    if item.upgrade_from:
        title = f"⬆ {title} (upgraded from {item.upgrade_from})"
        lines.append(
            f"Upgrade: corrected data raise this from {item.upgrade_from.upper()} to {alert.severity.upper()} "
            "(a reply to the earlier alert)."
        )
    confirms = alert.kind in ("cascade_start", "regime_change") and root_kind == "cascade_developing"
    if confirms and item.escalation is None and not alert.body.startswith(CONFIRMED):
        lines.append(CONFIRMED)
    body = "\n".join([*lines, alert.body])
    if item.folded:
        body += "\nHeld by the cooldown since the last message:\n" + "\n".join(f"• {x}" for x in item.folded)
    return alert.model_copy(update={"title": title, "body": body})
