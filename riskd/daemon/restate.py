"""Late data restates. When a fetch brings rows for hours already computed (a venue that stalled, a ban, a
candle that came late), the hours from the first affected one are recomputed with the same core from the
state before it, and each hour whose content changed is republished as a revision (``revision`` n,
``restated: true``). So the published stream equals the batch path over the same data once the data is in.
"""

from __future__ import annotations

import logging
from typing import Protocol

import pandas as pd

from riskd.contract.models import Snapshot
from riskd.core import FragilityState
from riskd.daemon.book import StateBook
from riskd.market import HOUR, FetchReport

log = logging.getLogger("riskd.daemon")

Minutes = dict[str, pd.DataFrame] | None
"""riskd's own liquidation minutes over a span, per recording venue (None: the record is off)."""


class Stepper(Protocol):
    """What restating needs of the cycle: its book, one hour's computation, a rebuild from the store."""

    book: StateBook

    def compute(
        self, hour: pd.Timestamp, now: pd.Timestamp, report: FetchReport | None, minutes: Minutes
    ) -> Snapshot:
        """Step the core over one hour from the book's state."""
        ...

    async def rebuild(self, through: pd.Timestamp) -> FragilityState | None:
        """The core state after ``through`` by the batch path over the store."""
        ...

    async def liquidations(self, first: pd.Timestamp, last: pd.Timestamp) -> Minutes:
        """The liquidation minutes of hours ``first`` .. ``last`` (read in a thread)."""
        ...


async def restate(
    stepper: Stepper, first: pd.Timestamp, last_done: pd.Timestamp, now: pd.Timestamp, report: FetchReport
) -> list[Snapshot]:
    """Recompute hours ``first`` .. ``last_done`` from the state before ``first``; return the hours whose
    content changed, as revisions (late, ``restated``). Unchanged hours are not republished.

    Each revision carries the coverage and the fetch outcome (``report``) of the data it was recomputed
    from: a cycle whose fetch was cut short (a circuit half-open after a ban) restates with what it has, as
    ``unknown`` when that is too little, never as ``ok``."""
    book = stepper.book
    base = book.states.get(first - HOUR)
    if base is None:  # restarted since: the batch path over the store gives the same state
        base = await stepper.rebuild(first - HOUR)
        if base is None or base.last_ts != first - HOUR:
            log.warning("late data for %s: the state before it cannot be rebuilt; not restated", first)
            return []
    kept = book.last_ts
    book.rewind(first, base)
    minutes = await stepper.liquidations(first, last_done)
    out = []
    for hour in pd.date_range(first, last_done, freq="h"):
        revised = book.revision_of(stepper.compute(hour, now, report, minutes))
        if revised is not None:
            out.append(revised)
    log.warning("late data: hours %s .. %s recomputed, %d restated (state was through %s)",
                first, last_done, len(out), kept)  # fmt: skip
    return out


def late_hour(report: FetchReport, last_done: pd.Timestamp, floor: pd.Timestamp) -> pd.Timestamp | None:
    """The first already-computed hour that fetched rows belong to (None: nothing late).

    A row stamped t is used from hour ``floor_hour(t)`` on (core.panel's rule), so that is the first
    hour it can change. Hours before ``floor`` (outside the restatement window) are not restated."""
    first: pd.Timestamp | None = None
    for _, _, _, frame in report.fetched:
        if frame.empty:
            continue
        t = frame.index.min().floor("h")
        if t <= last_done and (first is None or t < first):
            first = t
    if first is None or floor > last_done:
        return None
    if first < floor:
        log.warning("late data from %s is older than the restatement window; restating from %s", first, floor)
        first = floor
    return first
