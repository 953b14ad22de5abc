"""The history origin: the hour every replica's expanding statistics start from, shared through Redis.

CFI v2 ranks each component against its whole past, so the published values depend on where the past
starts. The first replica whose store holds data fixes it in Redis (its store's first hour, or the warm-up
start when its first fetch brought the data); a replica started later backfills from it, so a standby that
takes over publishes what the old leader would have. An empty store claims nothing: it fetches from the
warm-up start and claims once the fetch brought data, so a blind first start never pins the history.
Settled once and saved with the state; ``riskd origin --set`` moves it for every replica (:meth:`follow`).
Redis down at a cold start: this replica uses its own, and says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import pandas as pd

from riskd.core.params import FragilityParams
from riskd.daemon.book import StateBook
from riskd.errors import SinkError
from riskd.market import MarketCache, store_first_hour
from riskd.sinks.metrics import LiveState
from riskd.sinks.redis import RedisSink
from riskd.store import HistoryStore

log = logging.getLogger("riskd.daemon")


class Origin:
    """Settles, claims and follows the shared origin for one replica (its value lives in the book)."""

    def __init__(self, book: StateBook, store: HistoryStore, params: FragilityParams, symbols: Iterable[str],
                 redis: RedisSink | None, live: LiveState) -> None:  # fmt: skip
        self.book = book
        self.store = store
        self.params = params
        self.symbols = tuple(symbols)
        self.redis = redis
        self.live = live

    async def settle(self, warm_start: pd.Timestamp) -> pd.Timestamp:
        """The hour to fetch from this cycle: the settled origin, the shared one, or ``warm_start`` when
        neither this store nor Redis holds one yet (nothing is claimed then)."""
        if self.book.origin is not None:
            return self.book.origin
        local = await asyncio.to_thread(store_first_hour, self.store, self.params, self.symbols)
        shared = await self.shared()
        if local is None and shared is None:
            return warm_start
        candidate = min(local, warm_start) if local is not None else warm_start
        origin = shared if shared is not None else await self.claim(candidate)
        if local is not None and local > origin:
            log.warning(
                "the store starts at %s, after the shared history origin %s: hours a venue no longer serves "
                "are missing, so this replica's ranks can differ from the other replicas'",
                local, origin,
            )  # fmt: skip
        elif local is not None and local < origin:
            log.warning(
                "the store holds hours from %s, before the shared history origin %s: they are not used; "
                "`riskd origin --from-store` moves the origin there (every replica then rebuilds)",
                local, origin,
            )  # fmt: skip
        log.info("history origin %s", origin)
        self.book.origin = origin
        return origin

    async def shared(self) -> pd.Timestamp | None:
        """The origin in Redis; None when none is set or Redis cannot say (logged once per outage)."""
        if self.redis is None:
            return None
        try:
            return await self.redis.shared_origin()
        except SinkError as err:
            log.log(self._level(), "%s", err)
            return None

    async def claim(self, candidate: pd.Timestamp) -> pd.Timestamp:
        """``candidate`` unless another replica set one first; ``candidate`` when Redis is down."""
        if self.redis is None:
            return candidate
        try:
            return await self.redis.claim_origin(candidate)
        except SinkError as err:
            log.log(self._level(), "%s; ranking from this replica's own history start %s", err, candidate)
            return candidate

    async def claim_after_fetch(self, cache: MarketCache, fetched_from: pd.Timestamp) -> None:
        """An empty store's first fetch brought the primary venue's BTC candles: the history starts where
        that fetch started, and now it may be shared."""
        if self.book.origin is not None:
            return
        if cache.last_ts("ohlcv", self.params.funding.primary_venue, self.params.universe.btc_symbol) is None:
            return  # still nothing seen: nothing claimed
        self.book.origin = await self.claim(fetched_from)
        log.info("history origin %s (the first data this replica fetched)", self.book.origin)

    async def follow(self) -> None:
        """Another replica or ``riskd origin --set`` moved the shared origin: forget the core state so the
        next cycle rebuilds every statistic from it, and all replicas rank against the same past again."""
        if self.book.origin is None:
            return
        shared = await self.shared()
        if shared is None:  # never shared (Redis was down at our cold start) or lost: ours, if nobody's
            shared = await self.claim(self.book.origin)
        if shared == self.book.origin:
            return
        log.warning("history origin moved from %s to %s: rebuilding the state from the store", self.book.origin,
                    shared)  # fmt: skip
        self.book.origin = shared
        self.book.forget()

    def _level(self) -> int:
        """WARNING, or DEBUG while a Redis outage is already logged (once per outage, not per cycle)."""
        return logging.DEBUG if "redis" in self.live.down else logging.WARNING
