"""Inline keyboards and their callback data, built and read in one place.

Telegram caps ``callback_data`` at 64 bytes, so a button carries a one-letter action and the alert's
32-character fingerprint (or a mute's kind and duration), never the alert itself; what the fingerprint
stands for is in Redis (:mod:`riskd.alerting.outbox`), so a button still works after a restart or on
another replica.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from riskd.alerting.outbox import MUTE_TYPES
from riskd.contract.models import Alert

MUTE_SHORT_S = 3600
MUTE_LONG_S = 24 * 3600
_DATA = re.compile(r"^(?:(?P<ack>a):(?P<afp>[0-9a-f]{32})|(?P<ref>r):(?P<rfp>[0-9a-f]{32})|"
                   r"(?P<mute>m):(?P<kind>[a-z_]+):(?P<secs>[0-9]{1,7})|(?P<status>s))$")  # fmt: skip


@dataclass(frozen=True)
class Press:
    """A decoded button press. ``action``: ack, mute, refresh (an alert) or status (refresh /status)."""

    action: str
    fingerprint: str = ""
    kind: str = ""
    seconds: int = 0

    @property
    def writes(self) -> bool:
        """Ack and mute change state (admins only); refreshes only read."""
        return self.action in ("ack", "mute")


def alert_keyboard(alert: Alert, *, acknowledged: bool = False) -> InlineKeyboardMarkup:
    """Acknowledge · Mute 1 h (all alerts) · Mute this type 24 h · Refresh; no Acknowledge once acknowledged."""
    fp = alert.fingerprint
    first = [] if acknowledged else [InlineKeyboardButton("✅ Acknowledge", callback_data=f"a:{fp}")]
    return InlineKeyboardMarkup([
        [*first, InlineKeyboardButton("🔄 Refresh", callback_data=f"r:{fp}")],
        [InlineKeyboardButton("🔕 Mute 1 h", callback_data=f"m:all:{MUTE_SHORT_S}"),
         InlineKeyboardButton(f"🔕 Mute {alert.kind} 24 h", callback_data=f"m:{alert.kind}:{MUTE_LONG_S}")],
    ])  # fmt: skip


def status_keyboard() -> InlineKeyboardMarkup:
    """The Refresh button under /status."""
    return InlineKeyboardMarkup([[InlineKeyboardButton("🔄 Refresh", callback_data="s")]])


def parse_press(data: object) -> Press | None:
    """A button's callback data, or None when it is not one of ours (old, forged or garbage)."""
    m = _DATA.match(data) if isinstance(data, str) else None
    if m is None:
        return None
    if m["ack"]:
        return Press("ack", fingerprint=m["afp"])
    if m["ref"]:
        return Press("refresh", fingerprint=m["rfp"])
    if m["mute"]:
        if m["kind"] not in MUTE_TYPES or not 0 < int(m["secs"]) <= 30 * 86400:
            return None
        return Press("mute", kind=m["kind"], seconds=int(m["secs"]))
    return Press("status")
