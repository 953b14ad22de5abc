"""The fake exchange's read side: a MarketHistory as millisecond arrays, seen through the clock.

Venue handlers ask "which rows may a client see now" and render them; this module answers in
numpy (binary search on sorted timestamps) so a 6-year history serves pages in microseconds.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import pandas as pd
from aiohttp import web

from riskd.sources.symbols import raw_id
from riskd.testing.synthetic import OHLCV_COLUMNS, MarketHistory

HOUR_MS = 3_600_000
Row = TypeVar("Row", bound=tuple)


@dataclass(frozen=True)
class VenueLimits:
    """The venues' page sizes and retention; shrink them in tests to reach the edges quickly."""

    binance_klines: int = 1500
    binance_funding: int = 1000
    binance_open_interest: int = 500
    binance_open_interest_days: int = 30
    bybit_kline: int = 1000
    bybit_funding: int = 200
    bybit_instruments: int = 1000
    bybit_open_interest: int = 200
    hyperliquid_candles_per_call: int = 5000
    hyperliquid_candle_retention: int = 5000
    hyperliquid_funding_per_call: int = 500
    okx_funding: int = 400
    okx_open_interest: int = 100


class VenueError(Exception):
    """A request the venue refuses; ``response`` is the venue's own error answer."""

    def __init__(self, message: str, response: web.Response) -> None:
        super().__init__(message)
        self.response = response


@dataclass(frozen=True)
class Series:
    """One dataset of one (venue, symbol): ascending ``ts`` in ms and a (rows, columns) array."""

    ts: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    def upto(self, now_ms: int) -> int:
        """How many rows are stamped at or before ``now_ms`` (what a client may see)."""
        return int(np.searchsorted(self.ts, now_ms, side="right"))

    def window(self, start_ms: int | None, end_ms: int | None, now_ms: int) -> tuple[int, int]:
        """Row range [lo, hi) stamped within [start, end] and not after now."""
        hi = self.upto(now_ms)
        if end_ms is not None:
            hi = min(hi, int(np.searchsorted(self.ts, end_ms, side="right")))
        lo = 0 if start_ms is None else int(np.searchsorted(self.ts, start_ms, side="left"))
        return lo, max(lo, hi)

    def candle_rows(self, lo: int, hi: int, now_ms: int) -> list[tuple[float, ...]]:
        """Rows [lo, hi) as (ts, open, high, low, close, volume, quote_volume), the open hour partial."""
        rows = [(t, *v) for t, v in zip(self.ts[lo:hi].tolist(), self.values[lo:hi].tolist(), strict=True)]
        if rows and rows[-1][0] + HOUR_MS > now_ms:
            rows[-1] = (rows[-1][0], *partial_candle(rows[-1][1:], rows[-1][0], now_ms))
        return rows

    def next_after(self, now_ms: int) -> int | None:
        """Index of the first row stamped after now, or None."""
        i = self.upto(now_ms)
        return i if i < len(self.ts) else None


@dataclass
class RequestContext:
    """What one request sees: the (possibly stale) clock and the row faults to apply."""

    now_ms: int
    drop_hours: frozenset[int] = frozenset()
    duplicate_hours: frozenset[int] | None = None
    duplicate_edges: bool = False
    faults: list[str] = field(default_factory=list)

    def mangle(self, rows: list[Row]) -> list[Row]:
        """Apply the missing/duplicate faults to rendered rows whose first item is a ms timestamp."""
        if self.drop_hours:
            rows = [r for r in rows if int(r[0]) - int(r[0]) % HOUR_MS not in self.drop_hours]
        if self.duplicate_hours:
            out: list[Row] = []
            for r in rows:
                out.append(r)
                if int(r[0]) - int(r[0]) % HOUR_MS in self.duplicate_hours:
                    out.append(r)
            rows = out
        if self.duplicate_edges and rows:
            rows = [rows[0], *rows, rows[-1]] if len(rows) > 1 else [rows[0], rows[0]]
        return rows


CONTEXT = web.RequestKey("fx", RequestContext)
"""Where the middleware leaves the RequestContext for the venue handlers."""


def num(x: float) -> str:
    """A float as venues print numbers: plain decimal, no exponent, round-tripping exactly."""
    s = repr(float(x))
    if "e" in s or "E" in s:
        s = np.format_float_positional(float(x), trim="-")
    return s[:-2] if s.endswith(".0") else s


def _decimals(x: float) -> int:
    s = num(x)
    return len(s) - s.index(".") - 1 if "." in s else 0


def partial_candle(row: Sequence[float], open_ms: int, now_ms: int) -> tuple[float, ...]:
    """The still-open candle as a venue shows it at ``now``: a fraction of the way to its close.

    Prices and sizes keep the decimals of the finished candle, as a venue's tick and lot do.
    """
    frac = (now_ms - open_ms) / HOUR_MS
    o, h, lo, c, v, qv = (float(x) for x in row)
    if frac >= 1.0:
        return o, h, lo, c, v, qv
    d = max(_decimals(o), _decimals(h), _decimals(lo), _decimals(c))
    cp = round(o + (c - o) * frac, d)
    hp = round(max(o, cp) + (h - max(o, c)) * frac, d)
    lp = round(min(o, cp) - (min(o, c) - lo) * frac, d)
    return (
        o,
        max(hp, o, cp),
        min(lp, o, cp),
        cp,
        round(v * frac, _decimals(v)),
        round(qv * frac, _decimals(qv)),
    )


class MarketData:
    """Arrays of a MarketHistory per (dataset, venue, symbol), built on first use and cached."""

    def __init__(
        self, history: MarketHistory, aliases: Mapping[str, str] | None = None, cache_size: int = 256
    ) -> None:
        self.history = history
        self._aliases = {k.upper(): v.upper() for k, v in (aliases or {}).items()}
        self._ids: dict[str, dict[str, str]] = {}
        for venue, frames in history.ohlcv.items():
            self._ids[venue] = {raw_id(self._aliases.get(b, b), venue): b for b in frames}
        self._names = {v: {b: i for i, b in ids.items()} for v, ids in self._ids.items()}
        self._cache: OrderedDict[tuple[str, str, str], Series | None] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def listed(self, venue: str) -> dict[str, str]:
        """Venue id -> base asset of every market the venue lists, in history order."""
        return self._ids.get(venue, {})

    def base_of(self, venue: str, market_id: str | None) -> str | None:
        """The base asset behind a venue id, or None when the venue does not list it."""
        return self._ids.get(venue, {}).get(market_id or "")

    def venue_id(self, venue: str, base: str) -> str:
        """The venue's id for a base asset (``BTCUSDT``; ``S`` for FTM when aliased)."""
        return self._names[venue][base]

    def candles(self, venue: str, base: str) -> Series:
        """Hourly candles: columns open, high, low, close, volume, quote_volume."""
        series = self._get("ohlcv", venue, base, _with_quote_volume)
        assert series is not None, "every listed market has candles"
        return series

    def funding(self, venue: str, base: str) -> Series | None:
        """Funding prints: columns rate, interval_hours."""
        return self._get("funding", venue, base, lambda df: df[["rate", "interval_hours"]])

    def open_interest(self, venue: str, base: str) -> Series | None:
        """Hourly open interest: columns open_interest, open_interest_value."""
        return self._get(
            "open_interest", venue, base, lambda df: df[["open_interest", "open_interest_value"]]
        )

    def _get(
        self, dataset: str, venue: str, base: str, pick: Callable[[pd.DataFrame], pd.DataFrame]
    ) -> Series | None:
        key = (dataset, venue, base)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        frames = getattr(self.history, dataset).get(venue, {})
        series = None
        if base in frames:
            df = frames[base]
            ts = pd.DatetimeIndex(df.index).as_unit("ms").asi8.astype(np.int64)
            series = Series(ts=ts, values=pick(df).to_numpy(dtype=np.float64))
        with self._lock:
            self._cache[key] = series
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return series

    def mark_price(self, venue: str, base: str, now_ms: int) -> tuple[float, int] | None:
        """The live price (the open candle's close so far) and that candle's index, if listed by now."""
        c = self.candles(venue, base)
        i = c.upto(now_ms) - 1
        if i < 0:
            return None
        return partial_candle(c.values[i], int(c.ts[i]), now_ms)[3], i

    def next_funding(self, venue: str, base: str, now_ms: int) -> tuple[int, float, int] | None:
        """(next print time on the hour, predicted rate, interval hours) as the venue shows at now.

        The predicted rate moves from the last print's rate to the coming print's as the interval
        elapses, as the venues' running estimates do; exact at the print.
        """
        f = self.funding(venue, base)
        if f is None or len(f) == 0:
            return None
        j = f.next_after(now_ms)
        last = f.upto(now_ms) - 1
        if j is None:  # the history ends: extrapolate the schedule, keep the last rate
            hours = int(f.values[-1, 1])
            t = int(f.ts[-1]) - int(f.ts[-1]) % HOUR_MS + hours * HOUR_MS
            while t <= now_ms:
                t += hours * HOUR_MS
            return t, float(f.values[-1, 0]), hours
        t = int(f.ts[j]) - int(f.ts[j]) % HOUR_MS
        hours = int(f.values[j, 1])
        coming = float(f.values[j, 0])
        if last < 0:
            return t, coming, hours
        elapsed = 1.0 - (t - now_ms) / (hours * HOUR_MS)
        elapsed = min(max(elapsed, 0.0), 1.0)
        return t, float(f.values[last, 0]) * (1 - elapsed) + coming * elapsed, hours

    def day_stats(self, venue: str, base: str, now_ms: int) -> dict[str, float] | None:
        """Rolling 24 h ticker numbers (open price, high, low, base and quote volume) at now."""
        c = self.candles(venue, base)
        hi = c.upto(now_ms)
        if hi == 0:
            return None
        lo = max(0, hi - 24)
        arr = np.asarray(c.candle_rows(lo, hi, now_ms))[:, 1:]
        return {
            "open": float(arr[0, 0]),
            "prev_1h": float(arr[-1, 0]),
            "high": float(arr[:, 1].max()),
            "low": float(arr[:, 2].min()),
            "volume": float(arr[:, 4].sum()),
            "quote_volume": float(arr[:, 5].sum()),
            "last": float(arr[-1, 3]),
        }


def parse_int(value: str | int | None) -> int | None:
    """An integer query/body parameter, None when absent; ValueError when not an integer."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("not an integer")
    return int(value)


def _with_quote_volume(frame: pd.DataFrame) -> pd.DataFrame:
    """The candle columns; a recorded history without quote volume (freqtrade files) gets volume × close,
    since a venue always reports one."""
    out = frame[list(OHLCV_COLUMNS)]
    missing = out["quote_volume"].isna()
    if missing.any():
        out = out.copy()
        out.loc[missing, "quote_volume"] = (out["volume"] * out["close"]).round(4)[missing]
    return out
