"""riskd's own liquidation history: stream events to minute rows, gaps to coverage, minutes to the store.

Every liquidation ccxt parses is added to its minute (by trade time) and symbol, once: a duplicate
frame (same venue, symbol, time, side, price and size) is dropped, and an event arriving out of order
still lands in its own minute as long as that minute's hour has not been written. A venue's minute row
carries ``coverage``, the share of the minute its stream was up; minutes with no coverage have no row,
so ``riskd data audit`` reports them as missing, and the hourly figures of an hour with gaps are
partial (coverage < 1), never zeros.

Closed minutes go to an append-only journal (``data_dir/state/liquidations.jsonl``) at once and to the
history store (``liquidations`` dataset, one partition per venue and symbol plus ``ALL``, the venue
total) when their hour is written; a restart replays the journal first, so a kill loses no closed
minute. Symbols outside the universe count in ``ALL`` only.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from riskd.core.liquidations import MINUTE_COLUMNS
from riskd.sources.symbols import base_of
from riskd.store import HistoryStore, write_atomic

log = logging.getLogger("riskd.streams")

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
ALL = "ALL"
_SUMS = ("events", "notional_usd", "long_usd", "short_usd")
DEDUP_MINUTES = 2
"""How many minutes back a duplicate liquidation is still recognised."""


class LiquidationRecorder:
    """Minute accumulators, gaps and the journal of the liquidation streams of ``venues``."""

    def __init__(self, venues: Iterable[str], symbols: Iterable[str], store: HistoryStore | None,
                 journal: Path) -> None:  # fmt: skip
        self.venues = tuple(venues)
        self.symbols = frozenset(symbols)
        self.store = store
        self.journal = Path(journal)
        self._acc: dict[tuple[str, int], dict[str, list[float]]] = defaultdict(dict)
        self._seen: dict[int, set[tuple[Any, ...]]] = defaultdict(set)
        self._gaps: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.closed: dict[tuple[str, int], dict[str, dict[str, float]]] = {}
        self.duplicates = 0
        self.malformed = 0
        self.late = 0
        self.events = 0
        self.usd_by_side: dict[tuple[str, str], float] = defaultdict(float)
        self._written_through = -1  # minute ms below which rows are in the store

    # ---- input -----------------------------------------------------------------------------------
    def add(self, venue: str, liq: dict[str, Any]) -> bool:
        """One parsed ccxt liquidation; False when dropped (duplicate, unreadable, or its hour written)."""
        try:
            ts = int(liq["timestamp"])
            price, contracts = float(liq["price"]), float(liq["contracts"])
            size = float(liq.get("contractSize") or 1.0)
            side = str(liq["side"]).lower()
            base = base_of(str(liq["symbol"]))
        except (KeyError, TypeError, ValueError):
            self.malformed += 1
            return False
        usd = price * contracts * size
        if side not in ("buy", "sell") or not math.isfinite(usd) or usd <= 0:
            self.malformed += 1
            return False
        minute = ts - ts % MINUTE_MS
        if minute < self._written_through:
            self.late += 1
            return False
        key = (venue, base, ts, side, price, contracts)
        if key in self._seen[minute]:
            self.duplicates += 1
            return False
        self._seen[minute].add(key)
        long_usd, short_usd = (usd, 0.0) if side == "sell" else (0.0, usd)
        closed = self.closed.get((venue, minute))
        for sym in {ALL, base} if base in self.symbols else {ALL}:
            if closed is not None and sym in closed:  # late but its hour is not written: still counted
                r = closed[sym]
                r["events"] += 1
                r["notional_usd"] += usd
                r["long_usd"] += long_usd
                r["short_usd"] += short_usd
                r["max_usd"] = max(r["max_usd"], usd)
                continue
            acc = self._acc[(venue, minute)].setdefault(sym, [0.0, 0.0, 0.0, 0.0, 0.0])
            acc[0] += 1
            acc[1] += usd
            acc[2] += long_usd
            acc[3] += short_usd
            acc[4] = max(acc[4], usd)
        if closed is not None:
            self.late += 1
            self._journal([(venue, minute, closed)])
        self.events += 1
        self.usd_by_side[(venue, side)] += usd
        return True

    def gap(self, venue: str, start: pd.Timestamp, end: pd.Timestamp) -> None:
        """A closed period the venue's stream was down."""
        self._gaps[venue].append((_ms(start), _ms(end)))

    # ---- minutes ---------------------------------------------------------------------------------
    def coverage(self, venue: str, minute: int, open_gap: pd.Timestamp | None, now: pd.Timestamp) -> float:
        """Share of ``[minute, minute + 1 min)`` the venue was up (an open gap runs until ``now``)."""
        gaps = list(self._gaps[venue])
        if open_gap is not None:
            gaps.append((_ms(open_gap), max(_ms(now), minute + MINUTE_MS)))
        lo, hi = minute, minute + MINUTE_MS
        spans = sorted((max(a, lo), min(b, hi)) for a, b in gaps if a < hi and b > lo)
        down, cursor = 0, lo
        for a, b in spans:
            a = max(a, cursor)
            if b > a:
                down += b - a
                cursor = b
        return 1.0 - down / MINUTE_MS

    def close_minute(self, minute: int, coverage: dict[str, float]) -> dict[str, dict[str, dict[str, float]]]:
        """Freeze ``minute``: rows per venue and symbol (``MINUTE_COLUMNS``), journalled. A venue with
        no coverage gets no row; a covered symbol with no liquidation gets zeros."""
        for old in [m for m in self._seen if m < minute - DEDUP_MINUTES * MINUTE_MS]:
            del self._seen[old]  # duplicates come within seconds; the keys of a busy hour would pile up
        out: dict[str, dict[str, dict[str, float]]] = {}
        lines: list[tuple[str, int, dict[str, dict[str, float]]]] = []
        for venue in self.venues:
            cov = coverage.get(venue, 0.0)
            if cov <= 0:
                continue
            acc = self._acc.pop((venue, minute), {})
            rows = {}
            for sym in sorted({ALL, *self.symbols}):
                e, n, lg, sh, mx = acc.get(sym, [0.0] * 5)
                rows[sym] = {"events": e, "notional_usd": n, "long_usd": lg, "short_usd": sh, "max_usd": mx,
                             "coverage": cov}  # fmt: skip
            out[venue] = rows
            self.closed[(venue, minute)] = rows
            lines.append((venue, minute, rows))
        self._journal(lines)
        return out

    def _journal(self, entries: list[tuple[str, int, dict[str, dict[str, float]]]]) -> None:
        """Append minute rows to the journal (a later line for the same minute supersedes earlier ones)."""
        if not entries:
            return
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        with self.journal.open("a") as fh:
            fh.write("".join(json.dumps({"venue": v, "minute": m, "rows": r}, separators=(",", ":")) + "\n"
                             for v, m, r in entries))  # fmt: skip

    def market_total(self, minute: int) -> float:
        """All venues' liquidation notional of a closed minute; NaN unless every venue covered it fully."""
        total = 0.0
        for venue in self.venues:
            rows = self.closed.get((venue, minute))
            if rows is None or rows[ALL]["coverage"] < 0.999:
                return math.nan
            total += rows[ALL]["notional_usd"]
        return total

    def hour_so_far(self, hour_start: int, minutes_closed: int) -> dict[str, dict[str, float | bool]]:
        """Per venue, the hour's figures over its closed minutes; ``partial`` when any was not fully
        covered (``coverage`` counts a minute without a row as 0)."""
        out: dict[str, dict[str, float | bool]] = {}
        for venue in self.venues:
            figs = dict.fromkeys(_SUMS, 0.0) | {"max_usd": 0.0}
            cov = 0.0
            for m in range(hour_start, hour_start + minutes_closed * MINUTE_MS, MINUTE_MS):
                row = self.closed.get((venue, m), {}).get(ALL)
                if row is None:
                    continue
                cov += row["coverage"]
                for c in _SUMS:
                    figs[c] += row[c]
                figs["max_usd"] = max(figs["max_usd"], row["max_usd"])
            share = cov / minutes_closed if minutes_closed else 0.0
            out[venue] = {**figs, "coverage": round(share, 6), "partial": share < 0.999}
        return out

    # ---- the store -------------------------------------------------------------------------------
    def write_through(self, before: int) -> int:
        """Write every closed minute before ``before`` (ms) to the store and forget it; returns rows."""
        rows: dict[tuple[str, str], list[tuple[int, dict[str, float]]]] = defaultdict(list)
        for (venue, minute), syms in list(self.closed.items()):
            if minute < before:
                for sym, row in syms.items():
                    rows[(venue, sym)].append((minute, row))
        written = self._append(rows)
        for key in [k for k in self.closed if k[1] < before]:
            del self.closed[key]
        for minute in [m for m in self._seen if m < before]:
            del self._seen[minute]
        self._written_through = max(self._written_through, before)
        self._rewrite_journal(before)
        for venue in self.venues:
            self._gaps[venue] = [(a, b) for a, b in self._gaps[venue] if b >= before - HOUR_MS]
        return written

    def recover(self) -> int:
        """After a restart: put the journal's minutes back (the hour in progress resumes from them)."""
        if not self.journal.exists():
            return 0
        count = 0
        for line in self.journal.read_text().splitlines():
            try:
                entry = json.loads(line)
                self.closed[(entry["venue"], int(entry["minute"]))] = entry["rows"]
                count += 1
            except (ValueError, KeyError, TypeError):
                log.warning("liquidation journal: unreadable line skipped")  # a torn last line after a kill
        return count

    def _append(self, rows: dict[tuple[str, str], list[tuple[int, dict[str, float]]]]) -> int:
        if self.store is None:
            return 0
        n = 0
        for (venue, sym), items in rows.items():
            idx = pd.DatetimeIndex(pd.to_datetime([m for m, _ in items], unit="ms", utc=True), name="ts")
            frame = pd.DataFrame([r for _, r in items], index=idx)[list(MINUTE_COLUMNS)]
            n += self.store.append("liquidations", venue, sym, frame)
        return n

    def _rewrite_journal(self, before: int) -> None:
        keep = [json.dumps({"venue": v, "minute": m, "rows": r}, separators=(",", ":"))
                for (v, m), r in sorted(self.closed.items(), key=lambda kv: kv[0][1]) if m >= before]  # fmt: skip
        write_atomic(self.journal, "".join(line + "\n" for line in keep))  # fsynced, like every riskd file


def _ms(ts: pd.Timestamp) -> int:
    return int(pd.Timestamp(ts).value // 1_000_000)
