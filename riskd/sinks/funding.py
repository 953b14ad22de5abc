"""Publishes the latest cycle's per-venue, per-symbol funding as one Redis key, for ``/funding``.

The snapshot carries aggregate funding only; the per-symbol prints are in the daemon's market cache.
This sink is registered next to the others (``Sinks.publishers``), so the daemon needs no change:
for each published hour it writes :func:`riskd.market.funding_table` of the cache as of that hour.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import pandas as pd

from riskd.contract.fence import Fence, fenced_set
from riskd.contract.keys import Keys
from riskd.contract.models import Snapshot
from riskd.market import funding_table

if TYPE_CHECKING:
    from redis.asyncio import Redis

TTL_S = 6 * 3600
"""The table disappears when no cycle refreshed it for this long (riskd down): never shown as current."""


def funding_key(prefix: str) -> str:
    """``<prefix>:funding``: the JSON table ``/funding`` reads."""
    return Keys(prefix).funding


class FundingSink:
    """Leader-only: ``<prefix>:funding`` = the funding table of the cache as of the published hour, behind
    the fence (a deposed leader once wrote a table two hours old over the new leader's)."""

    name = "funding"
    leader_only = True

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        frames: Callable[[], Mapping[tuple[str, str, str], pd.DataFrame]],
        *,
        fence: Fence | None = None,
    ) -> None:
        self._redis = redis
        self._fence = fence or Fence.off()
        self._key = funding_key(prefix)
        self._frames = frames

    async def publish(self, snapshot: Snapshot) -> None:
        """Write the table as of the hour's end. Restated and catch-up hours (not ``live``) are skipped: the
        key is the latest cycle's, and a catch-up of a week writes it once, not 168 times (~30 ms each)."""
        if snapshot.restated or not snapshot.live:
            return
        table = funding_table(self._frames(), pd.Timestamp(snapshot.as_of))
        await fenced_set(self._redis, self._fence, "funding", self._key, json.dumps(table), "EX", TTL_S)
