"""The wide hours × symbols panel the core computes on, built from the per-(venue, symbol) frames.

Timestamp convention (docs/features.md, Time): row ``ts = T`` is the candle [T, T+1h), known at T+1h.
A funding print (or open-interest reading) stamped P is known from P on, so it may be used at row T
only if P < T+1h, i.e. ``floor_hour(P) <= T``: a print at 08:00:00.002 serves row 08:00 (known 09:00);
a print at exactly 09:00:00 serves row 09:00 onwards, never row 08:00. The rule is one integer
comparison, so the batch and the live path cannot disagree about it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from riskd.core.liquidations import HOUR_FIELDS, hourly_market
from riskd.core.params import PanelParams
from riskd.errors import DataError

HOUR_NS = 3_600_000_000_000


@dataclass(frozen=True)
class Panel:
    """Hourly arrays of shape (hours, symbols), float64, NaN where there is no data.

    ``funding`` maps a venue to its rate per hour in force at each row (venues absent from the map
    are missing). ``open_interest`` is in base units. ``stand_in`` marks cells whose price and volume
    come from spot because the perp had no candle.
    """

    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    close: np.ndarray
    volume: np.ndarray
    quote_volume: np.ndarray
    funding: Mapping[str, np.ndarray] = field(default_factory=dict)
    open_interest: np.ndarray | None = None
    stand_in: np.ndarray | None = None
    quote_volume_1d: np.ndarray | None = None
    """At row T, the quote volume of the 1 d bar of the UTC day BEFORE T's day (known since that day's
    end): the funding universe's ranking where the hourly bars of that day are missing."""
    liquidations: np.ndarray | None = None
    """hours × 3 (:data:`riskd.core.liquidations.HOUR_FIELDS`): riskd's own all-market liquidation
    record, only when ``fragility.liquidations.enabled`` (market-wide, so not laid out per symbol)."""

    def __post_init__(self) -> None:
        shape = (len(self.index), len(self.symbols))
        arrays = {"close": self.close, "volume": self.volume, "quote_volume": self.quote_volume}
        arrays.update({f"funding[{v}]": a for v, a in self.funding.items()})
        if self.open_interest is not None:
            arrays["open_interest"] = self.open_interest
        if self.quote_volume_1d is not None:
            arrays["quote_volume_1d"] = self.quote_volume_1d
        for name, arr in arrays.items():
            if arr.shape != shape:
                raise DataError(f"panel {name} has shape {arr.shape}, expected {shape}")
        if self.liquidations is not None and self.liquidations.shape != (shape[0], len(HOUR_FIELDS)):
            raise DataError(
                f"panel liquidations has shape {self.liquidations.shape}, expected ({shape[0]}, 3)"
            )
        hours = hour_numbers(self.index)
        if len(hours) and (hours * HOUR_NS != self.index.as_unit("ns").asi8).any():
            raise DataError("panel rows must be stamped on whole hours (the candles' open times)")
        if len(hours) > 1 and (np.diff(hours) != 1).any():
            raise DataError("panel rows must be consecutive hours (build_panel makes the grid)")

    @property
    def hours(self) -> np.ndarray:
        """Each row's hour number (hours since the epoch), int64."""
        return hour_numbers(self.index)

    def frame(self, name: str, venue: str = "binance") -> pd.DataFrame:
        """One field as a DataFrame (``ts`` × symbols), for inspection and tests."""
        values = self.funding.get(venue) if name == "funding" else getattr(self, name)
        if values is None:
            values = np.full((len(self.index), len(self.symbols)), np.nan)
        return pd.DataFrame(values, index=self.index, columns=list(self.symbols))

    def rows(self, start: int, stop: int) -> Panel:
        """The panel restricted to rows [start, stop) (views, no copies)."""
        return Panel(
            index=self.index[start:stop],
            symbols=self.symbols,
            close=self.close[start:stop],
            volume=self.volume[start:stop],
            quote_volume=self.quote_volume[start:stop],
            funding={v: a[start:stop] for v, a in self.funding.items()},
            open_interest=None if self.open_interest is None else self.open_interest[start:stop],
            stand_in=None if self.stand_in is None else self.stand_in[start:stop],
            quote_volume_1d=None if self.quote_volume_1d is None else self.quote_volume_1d[start:stop],
            liquidations=None if self.liquidations is None else self.liquidations[start:stop],
        )

    @classmethod
    def from_hour(
        cls,
        ts: pd.Timestamp | str,
        close: Mapping[str, float],
        volume: Mapping[str, float],
        quote_volume: Mapping[str, float] | None = None,
        funding: Mapping[str, Mapping[str, float]] | None = None,
        open_interest: Mapping[str, float] | None = None,
        symbols: Sequence[str] | None = None,
    ) -> Panel:
        """A one-row panel from plain mappings: what the daemon has for the hour that just closed.

        ``ts`` is the candle's OPEN time; ``funding`` maps venue → symbol → rate per hour in force
        (last print known by ts + 1h, or the live predicted rate); ``quote_volume`` falls back to
        volume × close. Missing symbols or venues are NaN.
        """
        names = tuple(symbols) if symbols is not None else tuple(close)
        index = pd.DatetimeIndex([_to_hour(ts)], name="ts")

        def row(values: Mapping[str, float] | None) -> np.ndarray:
            values = values or {}
            return np.array([[float(values.get(s, np.nan)) for s in names]], dtype=np.float64)

        c, v = row(close), row(volume)
        qv = _quote_volume_or_fallback(row(quote_volume), v, c)
        fund = {venue: row(rates) for venue, rates in (funding or {}).items()}
        oi = row(open_interest) if open_interest is not None else None
        return cls(index, names, c, v, qv, fund, oi)


def hour_numbers(index: pd.DatetimeIndex) -> np.ndarray:
    """Hours since the Unix epoch of each (whole-hour) timestamp."""
    return np.asarray(index.as_unit("ns").asi8 // HOUR_NS, dtype=np.int64)


def hourly_grid(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """Every whole hour from ``start`` to ``end`` inclusive, UTC, named ``ts``."""
    return pd.date_range(_to_hour(start), _to_hour(end), freq="h", name="ts").as_unit("ns")


def build_panel(
    ohlcv: Mapping[str, pd.DataFrame | Candles],
    funding: Mapping[str, Mapping[str, pd.DataFrame | Prints]] | None = None,
    open_interest: Mapping[str, pd.DataFrame | Prints] | None = None,
    spot_ohlcv: Mapping[str, pd.DataFrame | Candles] | None = None,
    *,
    ohlcv_1d: Mapping[str, pd.DataFrame | Candles] | None = None,
    liquidations: Mapping[str, pd.DataFrame] | None = None,
    symbols: Sequence[str] | None = None,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    params: PanelParams | None = None,
) -> Panel:
    """Align the data contract's frames (docs/data.md) on one hourly grid.

    ``ohlcv``: symbol → Binance perp candles; ``funding``: venue → symbol → prints (``rate_per_hour``);
    ``open_interest``: symbol → readings; ``spot_ohlcv``: symbol → spot candles, the stand-in where a
    perp candle is missing; ``ohlcv_1d`` (optional): symbol → daily perp bars stamped at the day's
    open, whose quote volume ranks the funding universe on days without hourly bars; ``liquidations``
    (optional): venue → riskd's all-market minute record, summed per hour (``hourly_market``). The grid runs
    from ``start`` to ``end`` (default: the candles' span). A symbol or venue without data gives NaN columns, never an error. Inputs are not modified.

    Any frame may be given already prepared (``Candles.of`` / ``Prints.of``): the live daemon keeps
    its recent data prepared so that its one-row panel costs array look-ups, not pandas conversions;
    the alignment below is the same code either way.
    """
    params = params or PanelParams()
    names = tuple(symbols) if symbols is not None else tuple(ohlcv)
    candles = {s: Candles.of(ohlcv[s]) for s in names if ohlcv.get(s) is not None}
    spot_in = (spot_ohlcv or {}) if params.spot_stand_in else {}
    spot = {s: Candles.of(spot_in[s]) for s in names if spot_in.get(s) is not None}
    index = _grid_for([*candles.values(), *spot.values()], start, end)
    close, volume, qv = (np.full((len(index), len(names)), np.nan) for _ in range(3))
    stand_in = np.zeros((len(index), len(names)), dtype=bool)
    grid = _ns(index)
    for j, sym in enumerate(names):
        if sym in candles:
            close[:, j], volume[:, j], qv[:, j] = candles[sym].at(grid)
        if sym in spot:
            _fill_stand_in(spot[sym], grid, close[:, j], volume[:, j], qv[:, j], stand_in[:, j])
    hours = grid // HOUR_NS
    rates = {
        venue: _column_of_prints(frames, names, hours, params.funding_max_age_hours, _rate_per_hour)
        for venue, frames in (funding or {}).items()
    }
    oi = None
    if open_interest:
        oi = _column_of_prints(open_interest, names, hours, params.open_interest_max_age_hours, _oi_base)
    daily = _previous_day_quote_volume(ohlcv_1d, names, grid) if ohlcv_1d else None
    liq = hourly_market(liquidations, index) if liquidations is not None else None
    return Panel(index, names, close, volume, qv, rates, oi, stand_in if stand_in.any() else None, daily, liq)


def _previous_day_quote_volume(
    bars: Mapping[str, pd.DataFrame | Candles], names: Sequence[str], grid_ns: np.ndarray
) -> np.ndarray:
    """Per row, the quote volume of the 1 d bar opened one day before the row's UTC day began."""
    day_ns = 24 * HOUR_NS
    yesterday = grid_ns - grid_ns % day_ns - day_ns
    out = np.full((len(grid_ns), len(names)), np.nan)
    for j, sym in enumerate(names):
        if bars.get(sym) is not None:
            out[:, j] = Candles.of(bars[sym]).at(yesterday)[2]
    return out


@dataclass(frozen=True)
class Candles:
    """One symbol's candles as sorted int64 times and float64 columns, duplicates resolved (the later
    row for the same time wins) and quote volume filled in where the source had none."""

    t_ns: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote_volume: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame | Candles) -> Candles:
        """Prepare a candle frame (idempotent on prepared candles)."""
        if isinstance(frame, Candles):
            return frame
        t = _ns(pd.DatetimeIndex(frame.index))
        close, volume, qv = (_column(frame, c) for c in ("close", "volume", "quote_volume"))
        if len(t) > 1 and not (np.diff(t) > 0).all():  # unsorted or duplicated: sort stably, keep the last
            order = np.argsort(t, kind="stable")
            t, close, volume, qv = t[order], close[order], volume[order], qv[order]
            last = np.append(t[1:] != t[:-1], True)
            t, close, volume, qv = t[last], close[last], volume[last], qv[last]
        return cls(t, close, volume, _quote_volume_or_fallback(qv, volume, close))

    @property
    def first_ns(self) -> int | None:
        return int(self.t_ns[0]) if len(self.t_ns) else None

    @property
    def last_ns(self) -> int | None:
        return int(self.t_ns[-1]) if len(self.t_ns) else None

    def at(self, grid_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Close, volume and quote volume at exactly the grid's times (NaN where there is no candle).
        A sorted search over int64 times: pandas' reindex machinery costs more than the data."""
        out = tuple(np.full(len(grid_ns), np.nan) for _ in range(3))
        if not len(self.t_ns):
            return out  # type: ignore[return-value]
        pos = np.searchsorted(self.t_ns, grid_ns)
        hit = pos < len(self.t_ns)
        hit[hit] = self.t_ns[pos[hit]] == grid_ns[hit]
        for dst, src in zip(out, (self.close, self.volume, self.quote_volume), strict=True):
            dst[hit] = src[pos[hit]]
        return out  # type: ignore[return-value]


@dataclass(frozen=True)
class Prints:
    """One symbol's funding prints or open-interest readings, as the hour each becomes usable in
    (``floor_hour(P)``, the module's timestamp rule) and its value: sorted stably by time, NaN values
    dropped so a missing value never hides the last good one."""

    hours: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame | Prints, values_of: Callable[[pd.DataFrame], np.ndarray]) -> Prints:
        """Prepare a frame of prints, ``values_of`` reading its value column (idempotent on prepared)."""
        if isinstance(frame, Prints):
            return frame
        return cls.from_arrays(_ns(pd.DatetimeIndex(frame.index)), values_of(frame))

    @classmethod
    def from_arrays(cls, t_ns: np.ndarray, values: np.ndarray) -> Prints:
        order = np.argsort(t_ns, kind="stable")
        hours = np.asarray(t_ns, dtype=np.int64)[order] // HOUR_NS
        vals = np.asarray(values, dtype=np.float64)[order]
        keep = ~np.isnan(vals)
        return cls(hours[keep], vals[keep])

    def asof(self, hours: np.ndarray, max_age: int) -> np.ndarray:
        """Value in force at each row hour: the last print with ``floor_hour(P) <= hour``, if at most
        ``max_age`` hours old; several prints in one hour: the last one wins."""
        out = np.full(len(hours), np.nan)
        if not len(self.hours):
            return out
        pos = np.searchsorted(self.hours, hours, side="right") - 1
        found = pos >= 0
        age = hours[found] - self.hours[pos[found]]
        out[found] = np.where(age <= max_age, self.values[pos[found]], np.nan)
        return out


def prepare(dataset: str, frame: pd.DataFrame) -> Candles | Prints:
    """A frame of the data contract's ``dataset`` (docs/data.md) prepared for ``build_panel``."""
    if dataset in ("ohlcv", "spot_ohlcv", "ohlcv_1d"):
        return Candles.of(frame)
    if dataset == "funding":
        return Prints.of(frame, _rate_per_hour)
    if dataset == "open_interest":
        return Prints.of(frame, _oi_base)
    raise DataError(
        f"unknown dataset {dataset!r}: expected ohlcv, spot_ohlcv, ohlcv_1d, funding or open_interest"
    )


def asof_hours(print_ts: pd.DatetimeIndex, values: np.ndarray, hours: np.ndarray, max_age: int) -> np.ndarray:
    """Value in force at each row hour: the last print with ``floor_hour(P) <= hour``, if fresh enough.

    Several prints in one hour: the last one wins. Older than ``max_age`` hours: NaN.
    """
    return Prints.from_arrays(_ns(print_ts), values).asof(hours, max_age)


def _to_hour(ts: pd.Timestamp | str) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    if t != t.floor("h"):
        raise DataError(f"{t} is not a whole hour (rows are stamped with the candle's open hour)")
    return t.as_unit("ns")


def _grid_for(
    candles: Sequence[Candles], start: pd.Timestamp | str | None, end: pd.Timestamp | str | None
) -> pd.DatetimeIndex:
    if start is None or end is None:
        firsts = [c.first_ns for c in candles if c.first_ns is not None]
        lasts = [c.last_ns for c in candles if c.last_ns is not None]
        if not firsts:
            raise DataError("no candles and no start/end: the panel's hours are unknown")
        hour = pd.Timedelta(hours=1)
        start = pd.Timestamp(min(firsts), tz="UTC").floor(hour) if start is None else start
        end = pd.Timestamp(max(lasts), tz="UTC").floor(hour) if end is None else end
    return hourly_grid(pd.Timestamp(start), pd.Timestamp(end))


def _ns(index: pd.DatetimeIndex) -> np.ndarray:
    """Epoch nanoseconds of a (possibly naive = UTC) index, whatever its resolution."""
    idx = index.tz_localize("UTC") if index.tz is None else index
    return idx.as_unit("ns").asi8


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """``frame[name]`` as float64, all NaN when the frame has no such column."""
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return frame[name].to_numpy(dtype=np.float64)


def _quote_volume_or_fallback(qv: np.ndarray, volume: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Quote volume as reported, else volume × close (freqtrade files carry no quote volume)."""
    return np.where(np.isnan(qv), volume * close, qv)


def _fill_stand_in(
    spot: Candles,
    grid_ns: np.ndarray,
    close: np.ndarray,
    vol: np.ndarray,
    qv: np.ndarray,
    mark: np.ndarray,
) -> None:
    s_close, s_vol, s_qv = spot.at(grid_ns)
    use = np.isnan(close) & ~np.isnan(s_close)
    close[use], vol[use], qv[use] = s_close[use], s_vol[use], s_qv[use]
    mark[use] = True


def _rate_per_hour(frame: pd.DataFrame) -> np.ndarray:
    """Funding on the per-hour basis: ``rate_per_hour``, else ``rate / interval_hours``."""
    if "rate_per_hour" in frame.columns:
        return frame["rate_per_hour"].to_numpy(dtype=np.float64)
    if {"rate", "interval_hours"} <= set(frame.columns):
        return (frame["rate"] / frame["interval_hours"]).to_numpy(dtype=np.float64)
    raise DataError(
        f"funding frame needs rate_per_hour (or rate and interval_hours), has {list(frame.columns)}"
    )


def _oi_base(frame: pd.DataFrame) -> np.ndarray:
    """Open interest in base units (contracts): its changes are not moved by the price."""
    if "open_interest" in frame.columns:
        return frame["open_interest"].to_numpy(dtype=np.float64)
    raise DataError(f"open-interest frame needs open_interest, has {list(frame.columns)}")


def _column_of_prints(
    frames: Mapping[str, pd.DataFrame | Prints],
    names: Sequence[str],
    hours: np.ndarray,
    max_age: int,
    values_of: Callable[[pd.DataFrame], np.ndarray],
) -> np.ndarray:
    out = np.full((len(hours), len(names)), np.nan)
    for j, sym in enumerate(names):
        frame = frames.get(sym)
        if frame is None or (isinstance(frame, pd.DataFrame) and frame.empty):
            continue
        out[:, j] = Prints.of(frame, values_of).asof(hours, max_age)
    return out
