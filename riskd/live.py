"""The daemon's data: fetch what each hour needs, keep it in the store and in a recent-history cache.

The one-hour panel the core steps on is built by ``build_panel`` — the batch path's own function —
over the cached frames, so the live row of hour T is the row a batch panel over the store has at T.
Fetching is incremental (from the last row held), bounded by the venues' concurrency limits, and
never raises: what failed becomes a named stale or missing source in the hour's data quality.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskd.core import Panel, build_panel
from riskd.core.panel import Candles, Prints, prepare
from riskd.core.params import FragilityParams
from riskd.errors import RiskdError, SourceError
from riskd.models import DataQuality
from riskd.sources import VenueSource
from riskd.store import HistoryStore

log = logging.getLogger("riskd.live")

HOUR = pd.Timedelta(hours=1)
PANEL_DATASETS = ("ohlcv", "spot_ohlcv", "ohlcv_1d", "funding", "open_interest")
"""The stored datasets the hourly panel reads (daily bars only rank the funding universe)."""
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


class MarketCache:
    """Recent frames per (dataset, venue, symbol), trimmed to the look-back one panel row needs."""

    def __init__(self, symbols: Iterable[str], params: FragilityParams, keep_hours: int = 72) -> None:
        self.symbols = tuple(symbols)
        self.params = params
        lookback = max(params.panel.funding_max_age_hours, params.panel.open_interest_max_age_hours)
        self.lookback = pd.Timedelta(hours=lookback + 2)  # what one panel row can reach back to
        self.keep = pd.Timedelta(hours=max(keep_hours, lookback + 2))
        self.frames: dict[tuple[str, str, str], pd.DataFrame] = {}
        # The same data prepared once per fetch (core.panel.prepare), so the hourly one-row panel is
        # array look-ups: the compute budget is 20 ms for 50 symbols x 3 venues.
        self.prepared: dict[tuple[str, str, str], Candles | Prints] = {}

    def load(self, store: HistoryStore, venues: Iterable[str], until: pd.Timestamp) -> None:
        """Fill the cache from the store (start-up): the last ``keep`` before ``until``."""
        start = until - self.keep
        for dataset, venue, symbol in store.partitions():
            if dataset not in PANEL_DATASETS:  # other timeframes (5m, 4h, …) are not the hourly panel's
                continue
            if symbol in self.symbols and (venue in venues or dataset == "spot_ohlcv"):
                frame = store.read(dataset, venue, symbol, start, until)
                if len(frame):
                    self._hold((dataset, venue, symbol), frame)

    def add(self, dataset: str, venue: str, symbol: str, frame: pd.DataFrame) -> None:
        """Merge new rows (a later row for the same time wins) and trim to the look-back."""
        if frame.empty:
            return
        key = (dataset, venue, symbol)
        old = self.frames.get(key)
        merged = frame if old is None else pd.concat([old, frame.astype(old.dtypes.to_dict())])
        merged = merged[~merged.index.duplicated(keep="last")].sort_index()
        self._hold(key, merged[merged.index >= merged.index[-1] - self.keep])

    def _hold(self, key: tuple[str, str, str], frame: pd.DataFrame) -> None:
        self.frames[key] = frame
        self.prepared[key] = prepare(key[0], frame)

    def last_ts(self, dataset: str, venue: str, symbol: str) -> pd.Timestamp | None:
        """Newest row held for a partition."""
        frame = self.frames.get((dataset, venue, symbol))
        return None if frame is None or frame.empty else frame.index[-1]

    def panel(self, hour: pd.Timestamp, venues: Iterable[str]) -> Panel:
        """The one-row panel of the candle opened at ``hour``, built as the batch path builds it."""

        def pick(dataset: str, venue: str) -> dict[str, Any]:
            return {s: f for (d, v, s), f in self.prepared.items() if d == dataset and v == venue}

        primary = self.params.funding.primary_venue
        panel = build_panel(
            pick("ohlcv", primary),
            {v: pick("funding", v) for v in venues},
            pick("open_interest", primary) or None,
            pick("spot_ohlcv", primary) or None,
            ohlcv_1d=pick("ohlcv_1d", primary) or None,
            symbols=self.symbols,
            start=hour - self.lookback,
            end=hour,
            params=self.params.panel,
        )
        n = len(panel.index)
        return panel.rows(n - 1, n)


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


def assess(
    cache: MarketCache,
    hour: pd.Timestamp,
    venues: Iterable[str],
    report: FetchReport | None,
    btc: str = "BTC",
) -> DataQuality:
    """The data quality of the hour opened at ``hour``: ok, degraded (some source) or stale (BTC).

    Stale: the primary venue has no BTC candle for the hour. Degraded: a fetch failed, or a venue's
    newest funding print is older than its interval allows, or a venue lists none of the universe, or
    fewer than ``regime.min_coverage`` of the universe have a candle (the core then publishes the hour as
    ``unknown``: the same rule, so a restated hour recomputed from a partial fetch never reads ``ok``).
    """
    primary = cache.params.funding.primary_venue
    stale: list[str] = []
    missing: list[str] = []
    notes: list[str] = []
    have = sum(1 for s in cache.symbols if _has_hour(cache, "ohlcv", primary, s, hour))
    coverage = have / max(1, len(cache.symbols))
    if not _has_hour(cache, "ohlcv", primary, btc, hour):
        missing.append(f"{primary}:ohlcv")
        notes.append(f"no {btc} candle from {primary} for {hour:%Y-%m-%d %H:00} UTC")
    elif coverage < cache.params.regime.min_coverage:
        stale.append(f"{primary}:ohlcv")
        notes.append(
            f"candles for {have} of {len(cache.symbols)} symbols ({coverage:.0%}), below regime.min_coverage "
            f"({cache.params.regime.min_coverage:.0%}): the regime is unknown"
        )
    for (venue, dataset), err in sorted((report.failed if report else {}).items()):
        stale.append(f"{venue}:{dataset}")
        notes.append(f"{venue} {dataset}: {err[:160]}")
    for venue in venues:
        newest = [t for s in cache.symbols if (t := cache.last_ts("funding", venue, s)) is not None]
        if not newest:
            missing.append(f"{venue}:funding")
        elif max(newest) < hour + HOUR - pd.Timedelta(hours=9):  # longest interval (8 h) plus the hour
            stale.append(f"{venue}:funding")
    status = "stale" if f"{primary}:ohlcv" in missing else ("degraded" if stale or missing else "ok")
    return DataQuality(
        status=status,
        coverage=coverage,
        stale_sources=sorted(set(stale)),
        missing_sources=sorted(set(missing)),
        notes=notes,
    )


def _has_hour(cache: MarketCache, dataset: str, venue: str, symbol: str, hour: pd.Timestamp) -> bool:
    frame = cache.frames.get((dataset, venue, symbol))
    return frame is not None and hour in frame.index


def liquidation_minutes(
    store: HistoryStore, params: FragilityParams, start: pd.Timestamp | None, stop: pd.Timestamp
) -> dict[str, pd.DataFrame] | None:
    """riskd's own all-market liquidation minutes in [start, stop) per recording venue, for the panel;
    None unless ``fragility.liquidations.enabled`` (then the core ignores the record entirely). The batch
    panel and the daemon's hour read it here, from the store the minute streams write at each hour."""
    if not params.liquidations.enabled:
        return None
    return {v: store.read("liquidations", v, "ALL", start, stop) for v in params.liquidations.venues}


def store_first_hour(
    store: HistoryStore, params: FragilityParams, symbols: Iterable[str]
) -> pd.Timestamp | None:
    """The first hour the store's primary-venue candles (perp or spot) cover; None when it holds none."""
    primary = params.funding.primary_venue
    firsts = [
        frame.index[0].floor("h")
        for dataset in ("ohlcv", "spot_ohlcv")
        for s in symbols
        if len(frame := store.read(dataset, primary, s))
    ]
    return min(firsts) if firsts else None


def store_panel(
    store: HistoryStore,
    params: FragilityParams,
    symbols: Iterable[str],
    venues: Iterable[str],
    end: pd.Timestamp,
    start: pd.Timestamp | None = None,
) -> Panel | None:
    """The batch panel over the store's history through the hour opened at ``end`` (None: no BTC yet).

    The offline module, replay and the daemon's cold start all build their panel here.
    """
    primary = params.funding.primary_venue
    symbols = tuple(symbols)
    stop = end + HOUR

    def read(dataset: str, venue: str) -> dict[str, pd.DataFrame]:
        frames = {s: store.read(dataset, venue, s, None, stop) for s in symbols}
        return {s: f for s, f in frames.items() if len(f)}

    ohlcv = read("ohlcv", primary)
    spot = read("spot_ohlcv", primary)
    if "BTC" not in ohlcv and "BTC" not in spot:
        return None
    first = min(f.index[0] for f in (*ohlcv.values(), *spot.values())).floor("h")
    start = first if start is None else max(start.floor("h"), first)
    if start > end:
        return None
    return build_panel(
        ohlcv,
        {v: read("funding", v) for v in venues},
        read("open_interest", primary) or None,
        spot or None,
        ohlcv_1d=read("ohlcv_1d", primary) or None,
        liquidations=liquidation_minutes(store, params, start, stop),
        symbols=symbols,
        start=start,
        end=end,
        params=params.panel,
    )


def assess_row(panel: Panel, venues: Iterable[str], params: FragilityParams) -> DataQuality:
    """Data quality of a one-row panel from stored history (replay): BTC present, venues present."""
    symbols = list(panel.symbols)
    closes = panel.close[0]
    coverage = float(np.isfinite(closes).mean()) if len(symbols) else 0.0
    missing = []
    if "BTC" not in symbols or not np.isfinite(closes[symbols.index("BTC")]):
        missing.append(f"{params.funding.primary_venue}:ohlcv")
    for venue in venues:
        rates = panel.funding.get(venue)
        if rates is None or not np.isfinite(rates[0]).any():
            missing.append(f"{venue}:funding")
    status = (
        "stale" if f"{params.funding.primary_venue}:ohlcv" in missing else ("degraded" if missing else "ok")
    )
    return DataQuality(status=status, coverage=coverage, missing_sources=missing)


def funding_table(frames: Mapping[tuple[str, str, str], pd.DataFrame], as_of: pd.Timestamp) -> dict[str, Any]:
    """The latest funding print per (venue, symbol) in ``frames`` (``MarketCache.frames``), as JSON-ready rows.

    Rates are fractions: ``rate`` per interval, ``rate_per_hour``, ``rate_per_8h`` (= per hour × 8, so venues
    with 1 h and 8 h intervals compare); ``next_funding_time`` is the last print plus its interval. Only
    prints at or before ``as_of`` count; what ``/funding`` shows (``<prefix>:funding``).
    """
    rows = []
    for (dataset, venue, symbol), frame in sorted(frames.items()):
        if dataset != "funding" or frame.empty:
            continue
        at = int(frame.index.searchsorted(as_of, side="right")) - 1  # the last print at or before as_of
        if at < 0:
            continue
        ts = frame.index[at]
        hours = float(frame["interval_hours"].to_numpy()[at])
        per_hour = float(frame["rate_per_hour"].to_numpy()[at])
        if not np.isfinite(per_hour):
            continue
        rows.append({
            "venue": venue, "symbol": symbol, "rate": float(frame["rate"].to_numpy()[at]), "interval_hours": hours,
            "rate_per_hour": per_hour, "rate_per_8h": per_hour * 8, "funding_time": ts.isoformat(),
            "next_funding_time": (ts + pd.Timedelta(hours=hours)).isoformat(),
        })  # fmt: skip
    return {"as_of": pd.Timestamp(as_of).isoformat(), "rows": rows}
