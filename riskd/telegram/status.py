"""What the bot reads: the published regime, its history, the funding table and the chart, from Redis.

Reads only what the leader publishes (``<prefix>:regime``, ``<prefix>:regime:history``,
``<prefix>:funding``), so any replica's bot answers the same; the chart comes from this process's
own recent hours (BTC close and CFI), when it has them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from riskd.contract.codec import latest_revisions, read_entry, read_snapshot
from riskd.contract.keys import Keys
from riskd.contract.models import Snapshot
from riskd.sinks.funding import funding_key

if TYPE_CHECKING:
    from redis.asyncio import Redis


class RedisStatusSource:
    """Reads ``{prefix}:regime`` (Snapshot JSON), stream ``{prefix}:regime:history`` and ``{prefix}:funding``."""

    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        *,
        outbox: Any = None,
        chart_frame: Callable[[], pd.DataFrame] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._redis = redis
        self._p = key_prefix
        self._outbox = outbox
        self._chart_frame = chart_frame
        self._clock = clock

    async def latest(self) -> Snapshot | None:
        """The published snapshot, or None when the key is absent (expired: riskd is not publishing)."""
        raw = await self._redis.get(Keys(self._p).regime)
        return read_snapshot(raw) if raw else None

    async def history(self, n: int) -> list[Snapshot]:
        """The last ``n`` hours from the stream, oldest first."""
        entries = await self._redis.xrevrange(Keys(self._p).history, count=n)
        out = []
        for _id, fields in reversed(entries or []):
            with contextlib.suppress(ValueError):  # an entry riskd cannot read is left out, never fatal
                out.append(read_entry(fields))
        return latest_revisions(out)

    async def health(self) -> dict[str, Any]:
        """Key presence and TTL, snapshot age and data quality, outbox size."""
        snap = await self.latest()
        ttl = await self._redis.ttl(Keys(self._p).regime)
        info: dict[str, Any] = {"redis": "ok", "regime_key": "present" if snap else "missing (expired)"}
        if snap is not None:
            info["as_of"] = snap.as_of.isoformat()
            info["age_s"] = round((self._clock() - snap.as_of).total_seconds())
            info["key_ttl_s"] = ttl
            info["data_quality"] = snap.data_quality.status
        if self._outbox is not None:
            info["alert_outbox"] = await self._outbox.outbox_size()
        return info

    async def funding_table(self) -> dict[str, Any] | None:
        """The latest cycle's per-venue, per-symbol funding (``riskd.market.funding_table``), or None."""
        raw = await self._redis.get(funding_key(self._p))
        table = json.loads(raw) if raw else None
        return table if isinstance(table, dict) else None

    async def chart(self, hours: int) -> bytes | None:
        """PNG of BTC close and CFI over the last ``hours`` this process holds; None when it holds none."""
        if self._chart_frame is None:
            return None
        frame = self._chart_frame()
        if frame.dropna(how="all").empty:
            return None
        from riskd.alerting.chart import render_chart  # matplotlib only when a chart is asked for

        return await asyncio.to_thread(render_chart, frame, hours=hours)
