"""The local record of alerts delivered: what a Redis that forgot cannot make riskd send twice.

The outbox's receipts live in Redis (``sent:{id}``, ``msgs:{fingerprint}``). A Redis restored from an
older snapshot (an RDB or AOF from hours before) brings back the queue items of alerts delivered since,
and forgets their de-duplication keys, so the alerts derived again would be queued again: both went out a
second time, three hours late, in the issue that asked for this file (issue 19). So each delivery is also
written here, fsynced, before its Redis mark: ``<data_dir>/state/alert-receipts.<prefix>.json``, keyed by channel,
fingerprint, destination and escalation. An item whose delivery this record holds is marked delivered in
Redis with the recorded receipt (threads and edits keep working) and never sent again.

The record is this replica's: a replica that never delivered an alert has no receipt of it. A disk fault is
logged once and delivery goes on (the record only guards against a rollback).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from riskd.alerting.outbox import Item
from riskd.store.files import write_durably

log = logging.getLogger("riskd.alerting")


@dataclass(frozen=True)
class Receipt:
    """One delivered copy: the channel's receipt (e.g. the Telegram message id) and when it went out."""

    receipt: str
    delivered_ms: int


def key_of(channel: str, item: Item) -> str:
    """The same copy of the same alert, whatever queue id Redis gave it (ids restart after a rollback)."""
    esc = "" if item.escalation is None else f"esc{item.escalation:g}"
    return f"{channel}|{item.alert.fingerprint}|{item.dest}|{esc}"


class Receipts:
    """Delivered copies, kept ``keep_s`` (the outbox's de-duplication time), in one fsynced JSON file."""

    def __init__(self, path: Path, keep_s: float) -> None:
        self.path = path
        self._keep_ms = int(keep_s * 1000)
        self._held: dict[str, Receipt] = self._load()
        self._error: str | None = None
        self._lock = asyncio.Lock()

    def get(self, channel: str, item: Item) -> Receipt | None:
        """This copy's receipt, when it was delivered."""
        return self._held.get(key_of(channel, item))

    async def record(self, channel: str, item: Item, receipt: str, delivered_ms: int) -> None:
        """Keep this delivery (fsynced, in a thread); receipts older than ``keep_s`` are dropped."""
        async with self._lock:  # pipelines of one process share the file: one write at a time
            self._held[key_of(channel, item)] = Receipt(receipt, delivered_ms)
            cutoff = delivered_ms - self._keep_ms
            self._held = {k: r for k, r in self._held.items() if r.delivered_ms >= cutoff}
            body = json.dumps({k: [r.receipt, r.delivered_ms] for k, r in self._held.items()})
            try:
                await asyncio.to_thread(write_durably, self.path, body)
            except OSError as err:
                if self._error is None:
                    log.error(
                        "alert receipts %s not written (%s): a Redis rollback could repeat alerts",
                        self.path,
                        err,
                    )
                self._error = str(err)
                return
            if self._error is not None:
                log.warning("alert receipts %s writable again", self.path)
                self._error = None

    def _load(self) -> dict[str, Receipt]:
        if not self.path.exists():
            return {}
        try:
            raw = json.loads(self.path.read_text())
            return {str(k): Receipt(str(v[0]), int(v[1])) for k, v in raw.items()}
        except (OSError, ValueError, TypeError, IndexError, AttributeError) as err:
            log.warning("alert receipts %s unusable (%s): starting a new record", self.path, err)
            return {}
