"""``riskd backfill``: history from the venues into the Parquet store, concurrent and resumable.

Work is one task per (venue, dataset, symbol). A task starts after the last row the store already
holds and appends chunk by chunk in time order, so a backfill killed at any point continues where it
stopped. A chunk that still fails after the retries ends its task there: the store never holds data
past a hole, and the summary names the exact range that is missing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd
from rich.console import Console
from rich.progress import (
    Progress,
)
from rich.table import Table

from riskd.config import Settings
from riskd.errors import ConfigError, SourceError
from riskd.market.sources import make_source
from riskd.sources import Clock, VenueSource, utc_now
from riskd.sources.registry import VENUES as VENUES_BY_NAME
from riskd.sources.retry import RequestHook
from riskd.store import HistoryStore

log = logging.getLogger("riskd.market.backfill")

DATASETS = ("ohlcv", "funding", "open_interest")
_FETCH = {"ohlcv": "fetch_ohlcv", "funding": "fetch_funding", "open_interest": "fetch_open_interest"}
_MS = pd.Timedelta(milliseconds=1)


@dataclass(frozen=True)
class Task:
    """One partition of the store to bring up to date."""

    venue: str
    dataset: str
    symbol: str


@dataclass
class TaskResult:
    """What one task did: rows written, whether it was listed, and what it could not fetch."""

    task: Task
    rows: int = 0
    listed: bool = True
    failed: tuple[pd.Timestamp, pd.Timestamp] | None = None
    error: str = ""


@dataclass
class BackfillReport:
    """The summary printed at the end and returned to tests."""

    start: pd.Timestamp
    end: pd.Timestamp
    results: list[TaskResult] = field(default_factory=list)
    gaps: dict[Task, list[tuple[pd.Timestamp, pd.Timestamp]]] = field(default_factory=dict)

    @property
    def failures(self) -> list[TaskResult]:
        """Tasks that stopped early; their ``failed`` range is missing from the store."""
        return [r for r in self.results if r.failed is not None]

    @property
    def complete(self) -> bool:
        """True when every listed partition was fetched to the end."""
        return not self.failures

    def rows_by_venue(self) -> dict[str, int]:
        """Rows written per venue."""
        out: dict[str, int] = {}
        for r in self.results:
            out[r.task.venue] = out.get(r.task.venue, 0) + r.rows
        return out

    def missing_hours_by_venue(self) -> dict[str, int]:
        """Hours missing in stored candle and open-interest series, per venue (funding: see gaps)."""
        out: dict[str, int] = {}
        for task, runs in self.gaps.items():
            if task.dataset == "funding":
                continue
            hours = sum(int((b - a) / pd.Timedelta(hours=1)) + 1 for a, b in runs)
            out[task.venue] = out.get(task.venue, 0) + hours
        return out


def plan(symbols: Iterable[str], venues: Iterable[str], datasets: Iterable[str]) -> list[Task]:
    """Every (venue, dataset, symbol) partition to fetch, in a stable order."""
    return [Task(v, d, s) for v in venues for d in datasets if VENUES_BY_NAME[v].serves(d) for s in symbols]


def resume_point(store: HistoryStore, task: Task, since: pd.Timestamp) -> pd.Timestamp:
    """Where a task starts: just after the store's last row, or at ``since``."""
    last = store.last_ts(task.dataset, task.venue, task.symbol)
    if last is None or last < since:
        return since
    return last + _MS


async def _run_task(
    source: VenueSource,
    store: HistoryStore,
    task: Task,
    since: pd.Timestamp,
    end: pd.Timestamp,
    chunk: pd.Timedelta,
    advance: Callable[[float], None],
) -> TaskResult:
    result = TaskResult(task)
    if await source.resolve(task.symbol) is None:
        result.listed = False
        log.info("%s not listed on %s: skipped", task.symbol, task.venue)
        advance((end - since) / pd.Timedelta(hours=1))
        return result
    start = resume_point(store, task, since)
    advance(max(0.0, (start - since) / pd.Timedelta(hours=1)))
    fetch = getattr(source, _FETCH[task.dataset])
    cursor = start
    while cursor < end:
        stop = min(cursor + chunk, end)
        try:
            frame = await fetch(task.symbol, cursor, stop)
        except SourceError as err:
            result.failed, result.error = (cursor, end), str(err)
            log.error("%s %s %s: stopped at %s: %s", task.venue, task.dataset, task.symbol, cursor, err)
            advance((end - cursor) / pd.Timedelta(hours=1))
            return result
        if not frame.empty:
            result.rows += await asyncio.to_thread(store.append, task.dataset, task.venue, task.symbol, frame)
        advance((stop - cursor) / pd.Timedelta(hours=1))
        cursor = stop
    return result


def _sources(settings: Settings, venues: Sequence[str], clock: Clock, hook: RequestHook | None):
    return {v: make_source(v, settings, clock=clock, hook=hook) for v in venues}


async def backfill(
    settings: Settings,
    store: HistoryStore,
    *,
    since: pd.Timestamp,
    until: pd.Timestamp | None = None,
    symbols: Sequence[str] | None = None,
    venues: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    clock: Clock = utc_now,
    hook: RequestHook | None = None,
    progress: Progress | None = None,
) -> BackfillReport:
    """Bring the store up to date for every requested partition; never raises for a venue's fault."""
    end = (until or clock()).floor("h")
    end = min(end, clock().floor("h"))
    venues = list(venues or settings.venues.enabled())
    tasks = plan(symbols or settings.universe.symbols, venues, datasets or settings.backfill.datasets)
    report = BackfillReport(since, end)
    total = len(tasks) * max(0.0, (end - since) / pd.Timedelta(hours=1))
    bar = progress.add_task("backfill", total=total) if progress else None

    def advance(hours: float) -> None:
        if progress is not None and bar is not None:
            progress.advance(bar, hours)

    sources = _sources(settings, venues, clock, hook)
    chunk = pd.Timedelta(hours=settings.backfill.chunk_hours)
    try:
        results = await asyncio.gather(
            *(_guard(sources[t.venue], store, t, since, end, chunk, advance) for t in tasks)
        )
    finally:
        await asyncio.gather(*(s.close() for s in sources.values()))
    report.results = list(results)
    for r in report.results:
        if not r.listed:
            continue
        first = store.first_ts(r.task.dataset, r.task.venue, r.task.symbol)
        if first is None:
            continue
        # Over [first row, end): inner holes and a missing tail (a venue serving stale data) both show.
        runs = store.gaps(r.task.dataset, r.task.venue, r.task.symbol, start=first, end=end)
        if runs:
            report.gaps[r.task] = runs
    return report


async def _guard(source, store, task, since, end, chunk, advance) -> TaskResult:
    """A task that failed to even resolve its market (venue down) is reported, not raised."""
    try:
        return await _run_task(source, store, task, since, end, chunk, advance)
    except SourceError as err:
        log.error("%s %s %s: %s", task.venue, task.dataset, task.symbol, err)
        advance((end - since) / pd.Timedelta(hours=1))
        return TaskResult(task, failed=(since, end), error=str(err))


# ---- command line ------------------------------------------------------------------------------


def choose(given: list[str] | None, allowed: Sequence[str], name: str) -> list[str] | None:
    if given is None:
        return None
    bad = [g for g in given if g not in allowed]
    if bad:
        raise ConfigError(
            f"invalid argument {name}: unknown {', '.join(bad)} (choose from {', '.join(allowed)})"
        )
    return given


def render(report: BackfillReport, console: Console) -> None:
    """The end-of-run summary: per venue rows, partitions, missing hours and failures."""
    table = Table(title=f"backfill {report.start:%Y-%m-%d %H:%M} .. {report.end:%Y-%m-%d %H:%M} UTC")
    for col in ("venue", "partitions", "not listed", "rows written", "missing hours", "failed"):
        table.add_column(col, justify="right" if col != "venue" else "left")
    rows, gaps = report.rows_by_venue(), report.missing_hours_by_venue()
    for venue in dict.fromkeys(r.task.venue for r in report.results):
        mine = [r for r in report.results if r.task.venue == venue]
        table.add_row(
            venue,
            str(sum(r.listed for r in mine)),
            str(sum(not r.listed for r in mine)),
            f"{rows.get(venue, 0):,}",
            f"{gaps.get(venue, 0):,}",
            str(sum(r.failed is not None for r in mine)),
        )
    console.print(table)
    for r in report.failures:
        a, b = r.failed  # type: ignore[misc]
        console.print(
            f"[red]missing[/red] {r.task.venue} {r.task.dataset} {r.task.symbol}: {a} .. {b} ({r.error})"
        )
    for task, runs in report.gaps.items():
        shown = ", ".join(f"{a:%Y-%m-%d %H:%M}..{b:%Y-%m-%d %H:%M}" for a, b in runs[:5])
        more = f" (+{len(runs) - 5} more)" if len(runs) > 5 else ""
        console.print(f"gaps {task.venue} {task.dataset} {task.symbol}: {shown}{more}")
