"""The wide hours × symbols panel the core computes on, built from the per-(venue, symbol) frames.

Timestamp convention (docs/features.md, Time): row ``ts = T`` is the candle [T, T+1h), known at T+1h.
A funding print (or open-interest reading) stamped P is known from P on, so it may be used at row T
only if P < T+1h, i.e. ``floor_hour(P) <= T``: a print at 08:00:00.002 serves row 08:00 (known 09:00);
a print at exactly 09:00:00 serves row 09:00 onwards, never row 08:00. The rule is one integer
comparison, so the batch and the live path cannot disagree about it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from riskd.core.params import PanelParams
from riskd.errors import DataError

HOUR_NS = 3_600_000_000_000
VENUES: tuple[str, ...] = ("binance", "bybit", "hyperliquid")


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

    def __post_init__(self) -> None:
        shape = (len(self.index), len(self.symbols))
        arrays = {"close": self.close, "volume": self.volume, "quote_volume": self.quote_volume}
        arrays.update({f"funding[{v}]": a for v, a in self.funding.items()})
        if self.open_interest is not None:
            arrays["open_interest"] = self.open_interest
        for name, arr in arrays.items():
            if arr.shape != shape:
                raise DataError(f"panel {name} has shape {arr.shape}, expected {shape}")
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
    ohlcv: Mapping[str, pd.DataFrame],
    funding: Mapping[str, Mapping[str, pd.DataFrame]] | None = None,
    open_interest: Mapping[str, pd.DataFrame] | None = None,
    spot_ohlcv: Mapping[str, pd.DataFrame] | None = None,
    *,
    symbols: Sequence[str] | None = None,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    params: PanelParams | None = None,
) -> Panel:
    """Align the data contract's frames (docs/data.md) on one hourly grid.

    ``ohlcv``: symbol → Binance perp candles; ``funding``: venue → symbol → prints (``rate_per_hour``);
    ``open_interest``: symbol → readings; ``spot_ohlcv``: symbol → spot candles, the stand-in where a
    perp candle is missing. The grid runs from ``start`` to ``end`` (default: the candles' span).
    A symbol or venue without data gives NaN columns, never an error. Inputs are not modified.
    """
    params = params or PanelParams()
    names = tuple(symbols) if symbols is not None else tuple(ohlcv)
    spot = (spot_ohlcv or {}) if params.spot_stand_in else {}
    index = _grid_for(ohlcv, spot, names, start, end)
    close, volume, qv = (np.full((len(index), len(names)), np.nan) for _ in range(3))
    stand_in = np.zeros((len(index), len(names)), dtype=bool)
    for j, sym in enumerate(names):
        _fill_candles(ohlcv.get(sym), index, close[:, j], volume[:, j], qv[:, j])
        if sym in spot:
            _fill_stand_in(spot[sym], index, close[:, j], volume[:, j], qv[:, j], stand_in[:, j])
    hours = hour_numbers(index)
    rates = {
        venue: _column_of_prints(frames, names, hours, params.funding_max_age_hours, _rate_per_hour)
        for venue, frames in (funding or {}).items()
    }
    oi = None
    if open_interest:
        oi = _column_of_prints(open_interest, names, hours, params.open_interest_max_age_hours, _oi_base)
    return Panel(index, names, close, volume, qv, rates, oi, stand_in if stand_in.any() else None)


def asof_hours(print_ts: pd.DatetimeIndex, values: np.ndarray, hours: np.ndarray, max_age: int) -> np.ndarray:
    """Value in force at each row hour: the last print with ``floor_hour(P) <= hour``, if fresh enough.

    Several prints in one hour: the last one wins. Older than ``max_age`` hours: NaN.
    """
    return _asof_ns(_ns(print_ts), values, hours, max_age)


def _asof_ns(t_ns: np.ndarray, values: np.ndarray, hours: np.ndarray, max_age: int) -> np.ndarray:
    if len(t_ns) == 0:
        return np.full(len(hours), np.nan)
    order = np.argsort(t_ns, kind="stable")
    p_hours = t_ns[order] // HOUR_NS
    vals = np.asarray(values, dtype=np.float64)[order]
    keep = ~np.isnan(vals)
    p_hours, vals = p_hours[keep], vals[keep]
    pos = np.searchsorted(p_hours, hours, side="right") - 1
    found = pos >= 0
    out = np.full(len(hours), np.nan)
    age = hours[found] - p_hours[pos[found]]
    out[found] = np.where(age <= max_age, vals[pos[found]], np.nan)
    return out


def _to_hour(ts: pd.Timestamp | str) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    if t != t.floor("h"):
        raise DataError(f"{t} is not a whole hour (rows are stamped with the candle's open hour)")
    return t.as_unit("ns")


def _utc_index(frame: pd.DataFrame) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(frame.index)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    return idx.as_unit("ns")


def _grid_for(
    ohlcv: Mapping[str, pd.DataFrame],
    spot: Mapping[str, pd.DataFrame],
    names: Iterable[str],
    start: pd.Timestamp | str | None,
    end: pd.Timestamp | str | None,
) -> pd.DatetimeIndex:
    frames = [f for s in names for f in (ohlcv.get(s), spot.get(s)) if f is not None and len(f)]
    if start is None or end is None:
        if not frames:
            raise DataError("no candles and no start/end: the panel's hours are unknown")
        first = min(_utc_index(f).min() for f in frames)
        last = max(_utc_index(f).max() for f in frames)
        start = first.floor("h") if start is None else start
        end = last.floor("h") if end is None else end
    return hourly_grid(pd.Timestamp(start), pd.Timestamp(end))


def _ns(index: pd.DatetimeIndex) -> np.ndarray:
    """Epoch nanoseconds of a (possibly naive = UTC) index, whatever its resolution."""
    idx = index.tz_localize("UTC") if index.tz is None else index
    return idx.as_unit("ns").asi8


def _aligned(frame: pd.DataFrame, index: pd.DatetimeIndex, column: str) -> np.ndarray:
    """``frame[column]`` at exactly the hours of ``index`` (NaN where absent; a duplicated hour takes its
    last row). A sorted search over int64 times: the live path builds a panel every hour, and pandas'
    reindex machinery costs more than the data."""
    out = np.full(len(index), np.nan)
    if column not in frame.columns or not len(frame):
        return out
    t = _ns(pd.DatetimeIndex(frame.index))
    values = frame[column].to_numpy(dtype=np.float64)
    if len(t) > 1 and not (np.diff(t) > 0).all():  # unsorted or duplicated: sort stably, keep the last
        order = np.argsort(t, kind="stable")
        t, values = t[order], values[order]
        last = np.append(t[1:] != t[:-1], True)
        t, values = t[last], values[last]
    g = _ns(index)
    pos = np.searchsorted(t, g)
    hit = pos < len(t)
    hit[hit] = t[pos[hit]] == g[hit]
    out[hit] = values[pos[hit]]
    return out


def _quote_volume_or_fallback(qv: np.ndarray, volume: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Quote volume as reported, else volume × close (freqtrade files carry no quote volume)."""
    return np.where(np.isnan(qv), volume * close, qv)


def _fill_candles(
    frame: pd.DataFrame | None, index: pd.DatetimeIndex, close: np.ndarray, vol: np.ndarray, qv: np.ndarray
) -> None:
    if frame is None or not len(frame):
        return
    close[:] = _aligned(frame, index, "close")
    vol[:] = _aligned(frame, index, "volume")
    qv[:] = _quote_volume_or_fallback(_aligned(frame, index, "quote_volume"), vol, close)


def _fill_stand_in(
    frame: pd.DataFrame,
    index: pd.DatetimeIndex,
    close: np.ndarray,
    vol: np.ndarray,
    qv: np.ndarray,
    mark: np.ndarray,
) -> None:
    s_close = _aligned(frame, index, "close")
    s_vol = _aligned(frame, index, "volume")
    s_qv = _quote_volume_or_fallback(_aligned(frame, index, "quote_volume"), s_vol, s_close)
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
    frames: Mapping[str, pd.DataFrame],
    names: Sequence[str],
    hours: np.ndarray,
    max_age: int,
    values_of: Callable[[pd.DataFrame], np.ndarray],
) -> np.ndarray:
    out = np.full((len(hours), len(names)), np.nan)
    for j, sym in enumerate(names):
        frame = frames.get(sym)
        if frame is not None and len(frame):
            out[:, j] = _asof_ns(_ns(pd.DatetimeIndex(frame.index)), values_of(frame), hours, max_age)
    return out
