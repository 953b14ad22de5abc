"""Reading the regime history stream the way every consumer should: tolerant, newest revision per hour.

Several stream entries can exist for one ``as_of`` (a restatement after late or corrected data adds an
entry with a higher ``revision``); a reader keeps the highest revision of each hour. Entries that do not
parse as a v1 snapshot are skipped and counted, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

from riskd.contract.codec import latest_revisions, read_entry
from riskd.contract.keys import Keys
from riskd.contract.models import Snapshot

log = logging.getLogger("riskd.http")

MAX_SPAN = timedelta(days=31)
"""The longest /history window one request may ask for (about 750 hours)."""


class HistorySource(Protocol):
    """Where the API and the status page read past hours from."""

    async def between(self, start: datetime, end: datetime) -> list[Snapshot]: ...


def parse_entries(entries: Iterable[tuple[Any, dict[Any, Any]]]) -> list[Snapshot]:
    """Stream entries (id, fields) → snapshots; entries without a valid ``json`` field are skipped."""
    out = []
    bad = 0
    for _id, fields in entries:
        try:
            out.append(read_entry(fields))
        except (ValueError, TypeError):
            bad += 1
    if bad:
        log.warning("history: %d stream entr(ies) are not valid v1 snapshots; skipped", bad)
    return out


class RedisHistory:
    """``<prefix>:regime:history`` through a ``redis.asyncio`` client."""

    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._key = Keys(prefix).history

    async def between(self, start: datetime, end: datetime) -> list[Snapshot]:
        """Hours with ``start <= as_of <= end``, newest revision each, oldest first.

        Entry ids start with the hour in ms (docs/redis.md), so the read starts at ``start``; it is bounded
        by a count rather than by ``end`` so that restatements written under a later id are still seen."""
        hours = int((end - start).total_seconds() // 3600) + 1
        first_ms = int(start.timestamp() * 1000)
        entries = await self._client.xrange(self._key, min=str(first_ms), max="+", count=hours * 4 + 64)
        snaps = [s for s in parse_entries(entries) if start <= s.as_of <= end]
        return latest_revisions(snaps)
