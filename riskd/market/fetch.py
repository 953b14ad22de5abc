"""Fetching what each hour needs: incremental (from the last row held), bounded by the venues' limits and
one deadline per cycle, and never raising: what failed becomes a named stale or missing source in the
hour's data quality. The new rows go to the cache at once and to the store after publishing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field

import pandas as pd

from riskd.errors import RiskdError, SourceError
from riskd.market.cache import MarketCache
from riskd.sources import VenueSource
from riskd.store import HistoryStore

log = logging.getLogger("riskd.market")

_FETCH = {"ohlcv": "fetch_ohlcv", "funding": "fetch_funding", "open_interest": "fetch_open_interest"}


def datasets_for(venue: str, primary: str) -> tuple[str, ...]:
    """What the daemon fetches per venue: prices, funding and OI from the primary, funding elsewhere."""
    return ("ohlcv", "funding", "open_interest") if venue == primary else ("funding",)


@dataclass
class FetchReport:
    """Outcome of one incremental fetch: what came in (not yet in the store), what failed, what is unlisted.

    ``failed``: (venue, dataset) -> the first error, or "deadline: …" when the cycle's deadline cut it.
    ``venue_health``: venue -> "ok" | "degraded" | "down" after the fetch (LiveState.venue_health).
    ``summaries``: venue -> its one summary line of the cycle (also logged).
    """

    fetched: list[tuple[str, str, str, pd.DataFrame]] = field(default_factory=list)
    failed: dict[tuple[str, str], str] = field(default_factory=dict)
    unlisted: set[tuple[str, str]] = field(default_factory=set)
    venue_health: dict[str, str] = field(default_factory=dict)
    summaries: dict[str, str] = field(default_factory=dict)


async def fetch_recent(
    sources: Mapping[str, VenueSource],
    store: HistoryStore,
    cache: MarketCache,
    until: pd.Timestamp,
    warm_start: pd.Timestamp,
    *,
    deadline_s: float | None = None,
    health: MutableMapping[str, str] | None = None,
) -> FetchReport:
    """Bring every (venue, dataset, symbol) up to ``until`` (exclusive) in the cache; the new rows are
    listed in the report for :func:`persist`, which the daemon runs after publishing: an hour's
    Parquet writes (a few hundred files) must not stand between the hour close and the key.

    A partition with nothing held starts at ``warm_start``. Failures are recorded, never raised.
    Everything must finish within ``deadline_s`` (default: the sources' ``daemon.fetch_deadline_s``):
    what has not is cancelled and recorded as failed ("deadline"), so the hour goes out on time,
    degraded, rather than late. Each venue's health goes into the report and, when given, ``health``
    (the daemon passes ``LiveState.venue_health``); each venue logs one summary line.
    """
    report = FetchReport()
    primary = cache.params.funding.primary_venue
    if deadline_s is None:
        deadline_s = min((s.fetch_deadline_s for s in sources.values()), default=60.0)
    for source in sources.values():
        source.begin_cycle(deadline_s)
    ends = asyncio.get_running_loop().time() + deadline_s

    async def one(venue: str, dataset: str, symbol: str) -> None:
        source = sources[venue]
        last = cache.last_ts(dataset, venue, symbol) or store.last_ts(dataset, venue, symbol)
        start = warm_start if last is None else max(warm_start, last + pd.Timedelta(milliseconds=1))
        if start >= until or (dataset == "funding" and not _print_due(cache, venue, symbol, until)):
            return
        try:
            if await source.resolve(symbol) is None:
                report.unlisted.add((venue, symbol))
                return
            frame = await getattr(source, _FETCH[dataset])(symbol, start, until)
        except SourceError as err:
            report.failed.setdefault((venue, dataset), str(err))
            log.debug("%s %s %s: fetch failed: %s", venue, dataset, symbol, err)
            return
        if not frame.empty:
            cache.add(dataset, venue, symbol, frame)
            report.fetched.append((dataset, venue, symbol, frame))

    async def bounded(venue: str, dataset: str, symbol: str) -> None:
        try:
            async with asyncio.timeout_at(ends):
                await one(venue, dataset, symbol)
        except TimeoutError:
            sources[venue].guard.tally.cut += 1
            report.failed.setdefault((venue, dataset), f"deadline: not finished within {deadline_s:g}s")

    try:
        await asyncio.gather(
            *(bounded(v, d, s) for v in sources for d in datasets_for(v, primary) for s in cache.symbols)
        )
    finally:
        for source in sources.values():
            source.end_cycle()
    for venue, source in sources.items():
        report.venue_health[venue] = source.guard.health()
        report.summaries[venue] = line = source.guard.summary()
        log.log(logging.INFO if report.venue_health[venue] == "ok" else logging.WARNING, "%s", line)
    if health is not None:
        health.update(report.venue_health)
    return report


def persist(store: HistoryStore, pending: list[tuple[str, str, str, pd.DataFrame]]) -> int:
    """Append fetched frames to the store; returns the rows written. Blocking (run it in a thread).

    A partition whose write fails keeps that frame, and its later ones (their order decides which row
    wins), in ``pending`` for the caller to retry next cycle; the other partitions are written. The
    first error is raised once all were tried: the cache already serves the rows, the store must
    not miss them."""
    rows, kept, failed = 0, [], set()
    first_error: Exception | None = None
    for item in pending:
        dataset, venue, symbol, frame = item
        if (dataset, venue, symbol) in failed:
            kept.append(item)
            continue
        try:
            rows += store.append(dataset, venue, symbol, frame)
        except (OSError, RiskdError) as err:
            failed.add((dataset, venue, symbol))
            kept.append(item)
            first_error = first_error or err
    pending[:] = kept
    if first_error is not None:
        raise first_error
    return rows


def _print_due(cache: MarketCache, venue: str, symbol: str, until: pd.Timestamp) -> bool:
    """Whether a funding print can have appeared before ``until``: prints come once per interval, so
    most hours need no request for 8 h symbols (a shortened interval is picked up at the next due print)."""
    frame = cache.frames.get(("funding", venue, symbol))
    if frame is None or frame.empty:
        return True
    due = frame.index[-1].floor("h") + pd.Timedelta(hours=float(frame["interval_hours"].iloc[-1]))
    return due < until
