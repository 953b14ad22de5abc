"""Seeded synthetic perpetual-futures markets with planted truths, shaped as docs/data.md says.

Tests, benchmarks and the fake exchange need hourly data that looks like the venues' (a BTC factor,
alt betas, fat tails, volume that rises with moves, funding that follows the premium) and whose
truths are known in advance: a cascade in this hour, an 8 h → 4 h funding switch at that one.

Frames are built on each access, per (venue, symbol), from seeded random streams keyed by name:
``synthetic_market`` itself costs milliseconds even for 600 symbols × 6 years, reading one frame
costs a few, nothing big stays in memory, and a symbol's path does not change when others are
added to the universe.
"""

from __future__ import annotations

import functools
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeAlias

import numpy as np
import pandas as pd

from riskd.testing.frames import LazyFrames, cutter

VENUES: tuple[str, ...] = ("binance", "bybit", "hyperliquid")
DEFAULT_FUNDING_HOURS: Mapping[str, int] = {"binance": 8, "bybit": 8, "hyperliquid": 1}
OHLCV_COLUMNS = ("open", "high", "low", "close", "volume", "quote_volume")
FUNDING_COLUMNS = ("rate", "interval_hours", "interval_inferred", "rate_per_hour")
OPEN_INTEREST_COLUMNS = ("open_interest", "open_interest_value")
HOUR = pd.Timedelta(hours=1)

TimeLike: TypeAlias = datetime | pd.Timestamp | str | np.datetime64
Frames = Mapping[str, Mapping[str, pd.DataFrame]]
IntervalSpec = int | Sequence[tuple[TimeLike, int]]

# Start prices of familiar names, so charts look plausible; other assets draw one from their seed.
_KNOWN_PRICES = {"BTC": 40_000.0, "ETH": 2_500.0, "BNB": 300.0, "SOL": 100.0, "XRP": 0.6, "DOGE": 0.08}
_KNOWN_VOLUMES = {"BTC": 8e8, "ETH": 4e8}  # quote units per hour on Binance
_VOLUME_SHARE = {"binance": 1.0, "bybit": 0.55, "hyperliquid": 0.2}
_BASIS_SD = {"binance": 0.0, "bybit": 2e-4, "hyperliquid": 4e-4}  # venue close vs the reference path
_BASE_RATE_PER_HOUR = 0.0001 / 8  # the venues' default 0.01 % per 8 h


def to_utc(t: TimeLike) -> pd.Timestamp:
    """A UTC Timestamp in microseconds (pandas' default unit) from anything pandas can read."""
    ts = pd.Timestamp(t)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.as_unit("us")


@dataclass(frozen=True)
class Cascade:
    """A planted liquidation cascade: in hour ``at`` each asset closes ``drop`` below its open.

    ``volume_multiplier`` scales that hour's volume; ``assets`` None means every symbol. The low
    overshoots the close, funding turns negative afterwards and open interest is flushed.
    """

    at: pd.Timestamp
    drop: float
    volume_multiplier: float = 10.0
    assets: tuple[str, ...] | None = None


@dataclass(frozen=True)
class MarketHistory:
    """Per (venue, symbol) frames of ``ohlcv``, ``funding`` and ``open_interest`` (docs/data.md).

    Index as ``frames[venue][symbol]``. ``end`` is exclusive: one hour past the last candle's open.
    """

    ohlcv: Frames
    funding: Frames
    open_interest: Frames
    start: pd.Timestamp
    end: pd.Timestamp
    cascades: tuple[Cascade, ...] = ()

    @classmethod
    def from_frames(
        cls, ohlcv: Frames, funding: Frames | None = None, open_interest: Frames | None = None
    ) -> MarketHistory:
        """Wrap hand-made frames (recorded data, edge cases) so the fake exchange can serve them."""
        stamps = [df.index for venue in ohlcv.values() for df in venue.values() if len(df)]
        if not stamps:
            raise ValueError("from_frames needs at least one non-empty ohlcv frame")
        start = min(to_utc(ix[0]) for ix in stamps)
        end = max(to_utc(ix[-1]) for ix in stamps) + HOUR
        return cls(ohlcv, funding or {}, open_interest or {}, start, end)

    @property
    def venues(self) -> tuple[str, ...]:
        """Venues with candles, in insertion order."""
        return tuple(self.ohlcv)

    @property
    def symbols(self) -> tuple[str, ...]:
        """Base assets listed on any venue, first seen first."""
        return tuple(dict.fromkeys(s for venue in self.ohlcv.values() for s in venue))

    def slice(self, start: TimeLike | None = None, end: TimeLike | None = None) -> MarketHistory:
        """The same market restricted to ``[start, end)``; frames are cut as they are read."""
        lo = max(self.start, to_utc(start)) if start is not None else self.start
        hi = min(self.end, to_utc(end)) if end is not None else self.end

        def cut(frames: Frames) -> Frames:
            return {v: LazyFrames(list(m), cutter(m, lo, hi)) for v, m in frames.items()}

        kept = tuple(c for c in self.cascades if lo <= c.at < hi)
        return replace(
            self,
            ohlcv=cut(self.ohlcv),
            funding=cut(self.funding),
            open_interest=cut(self.open_interest),
            start=lo,
            end=hi,
            cascades=kept,
        )

    def wide(self, column: str = "close", venue: str = "binance", dataset: str = "ohlcv") -> pd.DataFrame:
        """One column of every symbol side by side (index ``ts``, one column per symbol)."""
        frames: Mapping[str, pd.DataFrame] = getattr(self, dataset)[venue]
        columns = {s: frames[s][column] for s in frames}
        first = next(iter(columns.values()), None)
        if first is not None and all(c.index.equals(first.index) for c in columns.values()):
            out = pd.DataFrame({s: c.to_numpy() for s, c in columns.items()}, index=first.index)
        else:  # funding prints fall at different times per symbol: align on the union
            out = pd.concat(columns, axis=1)
        out.index.name = "ts"
        return out


def synthetic_market(
    symbols: Sequence[str],
    start: TimeLike,
    hours: int,
    seed: int = 0,
    *,
    venues: Sequence[str] = VENUES,
    funding_intervals: Mapping[str, IntervalSpec] | None = None,
    cascades: Sequence[Cascade | tuple[TimeLike, float, float, Sequence[str] | None]] = (),
    open_interest_venues: Sequence[str] = ("binance",),
    print_jitter: bool = True,
    annual_vol: float = 0.6,
) -> MarketHistory:
    """A seeded synthetic market of ``hours`` hourly candles from ``start`` (floored to the hour).

    ``funding_intervals`` overrides the 8 h schedule of Binance and Bybit per symbol (Hyperliquid
    always prints hourly): ``{"DOGE": 4}`` or ``{"XRP": [(start, 8), (switch, 4)]}`` — switch at a
    print time, as the venues do. ``cascades`` are ``Cascade`` or ``(hour, drop, volume_multiplier,
    assets)`` tuples. ``print_jitter`` adds the few milliseconds Binance (sometimes) and Hyperliquid
    (always) add to funding times. ``annual_vol`` is BTC's volatility; alts get beta and their own.
    """
    if hours < 1:
        raise ValueError("hours must be at least 1")
    first = to_utc(start).floor("h")
    index = pd.date_range(first, periods=hours, freq="h", name="ts").as_unit("us")
    model = _Model(
        index=index,
        seed=seed,
        symbols=[s.upper() for s in symbols],
        intervals={k.upper(): v for k, v in (funding_intervals or {}).items()},
        cascades=[_as_cascade(c) for c in cascades],
        print_jitter=print_jitter,
        annual_vol=annual_vol,
    )
    names = model.symbols

    def frames(dataset: Callable[[str, str], pd.DataFrame], only: Sequence[str]) -> Frames:
        return {v: LazyFrames(names, functools.partial(dataset, v)) for v in venues if v in only}

    return MarketHistory(
        ohlcv=frames(model.ohlcv, venues),
        funding=frames(model.funding, venues),
        open_interest=frames(model.open_interest, open_interest_venues),
        start=index[0],
        end=index[-1] + HOUR,
        cascades=tuple(model.cascades),
    )


def _as_cascade(c: Cascade | tuple[TimeLike, float, float, Sequence[str] | None]) -> Cascade:
    at, drop, mult, assets = (c.at, c.drop, c.volume_multiplier, c.assets) if isinstance(c, Cascade) else c
    return Cascade(to_utc(at), float(drop), float(mult), tuple(a.upper() for a in assets) if assets else None)


def _rng(seed: int, *names: str) -> np.random.Generator:
    """A generator keyed by names, so each (dataset, venue, symbol) stream is stable on its own."""
    return np.random.default_rng([seed, *(zlib.crc32(n.encode()) for n in names)])


def _sma(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` points (fewer at the start), O(n) via a cumulative sum."""
    cs = np.concatenate([[0.0], np.cumsum(x)])
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - window, 0)
    return (cs[idx] - cs[lo]) / (idx - lo)


def _smooth_noise(rng: np.random.Generator, n: int, window: int, sd: float) -> np.ndarray:
    """Persistent noise of standard deviation ~``sd``: white noise averaged over ``window`` hours."""
    return _sma(rng.standard_normal(n), window) * sd * np.sqrt(window)


def _vol_regime(
    rng: np.random.Generator, n: int, sd: float = 0.35, half_life_h: float = 24 * 7
) -> np.ndarray:
    """A multiplicative volatility regime: exp of an AR(1) with a week's half-life, mean ~1."""
    phi = 0.5 ** (1 / half_life_h)
    kernel = phi ** np.arange(min(n, int(half_life_h * 6)))
    x = np.convolve(rng.standard_normal(n), kernel)[:n] * sd * np.sqrt(1 - phi**2)
    return np.exp(x - sd**2 / 2)


@dataclass(frozen=True)
class _Path:
    """The venue-independent truth of one asset; venues add basis, wicks and their own volume."""

    ret: np.ndarray
    log_close: np.ndarray
    quote_volume: np.ndarray
    drop: np.ndarray
    p0: float
    level: float
    decimals: int
    lot_decimals: int
    wick_sd: np.ndarray


@dataclass
class _Model:
    index: pd.DatetimeIndex
    seed: int
    symbols: list[str]
    intervals: dict[str, IntervalSpec]
    cascades: list[Cascade]
    print_jitter: bool
    annual_vol: float
    sigma: float = field(init=False)  # BTC's hourly volatility
    regime: np.ndarray = field(init=False)  # shared volatility multiplier per hour
    factor: np.ndarray = field(init=False)  # the market (BTC) return per hour
    hour_of_day: np.ndarray = field(init=False)
    hits: dict[str, list[tuple[int, float, float]]] = field(init=False)  # symbol -> (hour, drop, volume x)
    _paths: OrderedDict[str, _Path] = field(init=False, default_factory=OrderedDict)
    _lock: threading.Lock = field(
        init=False, default_factory=threading.Lock
    )  # the fake exchange reads from a thread

    def __post_init__(self) -> None:
        n = len(self.index)
        self.sigma = self.annual_vol / np.sqrt(24 * 365)
        self.regime = _vol_regime(_rng(self.seed, "regime"), n)
        self.factor = self.sigma * self.regime * _rng(self.seed, "factor").standard_normal(n)
        self.hour_of_day = np.asarray(self.index.hour)
        self.hits = {}
        for c in self.cascades:
            k = (c.at - self.index[0]) / HOUR
            if k != int(k) or not 0 <= k < n:
                raise ValueError(f"cascade at {c.at} is not an hour inside the history")
            if not 0 < c.drop < 1:
                raise ValueError(f"cascade drop must be a fraction in (0, 1), got {c.drop}")
            unknown = set(c.assets or ()) - set(self.symbols)
            if unknown:
                raise ValueError(f"cascade at {c.at} names symbols not in the market: {sorted(unknown)}")
            for s in c.assets or self.symbols:
                self.hits.setdefault(s, []).append((int(k), c.drop, c.volume_multiplier))

    def path(self, symbol: str) -> _Path:
        """The asset's reference path, cached for the few symbols most recently read."""
        with self._lock:
            path = self._paths.get(symbol)
        if path is None:
            path = self._make_path(symbol)
            with self._lock:
                self._paths[symbol] = path
                if len(self._paths) > 16:
                    self._paths.popitem(last=False)
        return path

    def _make_path(self, symbol: str) -> _Path:
        n, rng = len(self.index), _rng(self.seed, "symbol", symbol)
        is_btc = symbol == "BTC"
        beta = 1.0 if is_btc else rng.uniform(0.8, 1.5)
        idio = 0.0 if is_btc else rng.uniform(0.3, 0.9)
        p0 = _KNOWN_PRICES.get(symbol) or 10 ** rng.uniform(-1.3, 2.5)
        level = _KNOWN_VOLUMES.get(symbol) or 10 ** rng.uniform(6.0, 7.8)
        sd = self.sigma * self.regime
        ret = beta * self.factor + idio * sd * rng.standard_normal(n)
        ret += (rng.random(n) < 0.001) * rng.standard_normal(n) * 5 * sd  # rare jumps: fat tails
        # measured before cascades overwrite returns, so a cascade's volume multiplier stays exact
        moves = np.minimum(np.abs(ret) / (sd * np.hypot(beta, idio)), 10.0)
        drop, mult = np.zeros(n), np.ones(n)
        for k, d, m in self.hits.get(symbol, []):
            ret[k], drop[k], mult[k] = np.log1p(-d), d, m
        log_close = np.log(p0) + np.cumsum(ret)
        season = 1 + 0.25 * np.sin(2 * np.pi * (self.hour_of_day - 9) / 24)
        quote_volume = level * season * np.exp(0.35 * rng.standard_normal(n) - 0.06) * (0.6 + 0.4 * moves)
        decimals = int(np.clip(6 - np.floor(np.log10(p0)), 1, 10))
        lot_decimals = int(np.clip(np.floor(np.log10(p0)) - 1, 0, 3))
        return _Path(
            ret=ret,
            log_close=log_close,
            quote_volume=quote_volume * mult,
            drop=drop,
            p0=p0,
            level=level,
            decimals=decimals,
            lot_decimals=lot_decimals,
            wick_sd=0.35 * sd * np.hypot(beta, idio),
        )

    def ohlcv(self, venue: str, symbol: str) -> pd.DataFrame:
        p, n, rng = self.path(symbol), len(self.index), _rng(self.seed, "ohlcv", venue, symbol)
        d = p.decimals
        basis = rng.normal(0.0, _BASIS_SD[venue], n) if _BASIS_SD.get(venue) else 0.0
        close = np.round(np.exp(p.log_close + basis), d)
        first_open = np.round(np.exp(p.log_close[0] - p.ret[0]), d)
        open_ = np.concatenate([[first_open], close[:-1]])
        up, down = np.abs(rng.standard_normal((2, n))) * p.wick_sd
        high = np.round(np.maximum(open_, close) * np.exp(up), d)
        low = np.round(np.minimum(open_, close) * np.exp(-down) * (1 - 0.3 * p.drop), d)
        share = _VOLUME_SHARE.get(venue, 0.3)
        quote_volume = np.round(p.quote_volume * share * np.exp(rng.normal(-0.01, 0.15, n)), 4)
        volume = np.round(quote_volume / ((high + low + close) / 3), p.lot_decimals)
        cols = (open_, high, low, close, volume, quote_volume)
        return pd.DataFrame(dict(zip(OHLCV_COLUMNS, cols, strict=True)), index=self.index.copy())

    def funding(self, venue: str, symbol: str) -> pd.DataFrame:
        p, n, rng = self.path(symbol), len(self.index), _rng(self.seed, "funding", venue, symbol)
        premium = p.log_close - _sma(p.log_close, 24)  # price above its day's mean: longs pay more
        common = _smooth_noise(_rng(self.seed, "premium", symbol), n, 48, 4e-6)
        rph = _BASE_RATE_PER_HOUR + 0.002 * premium + common
        rph = np.clip(rph + (_smooth_noise(rng, n, 24, 2e-6) if venue != "binance" else 0.0), -0.003, 0.003)
        in_force = self._interval_hours(venue, symbol)
        governing = np.concatenate([in_force[:1], in_force[:-1]])  # the interval of the hour ending at T
        k = np.flatnonzero(self.hour_of_day % governing == 0)
        h = governing[k]
        cs = np.concatenate([[0.0], np.cumsum(rph)])
        lo = np.maximum(k - h, 0)
        mean = np.where(k > lo, (cs[k] - cs[lo]) / np.maximum(k - lo, 1), rph[0])
        rate = np.round(mean * h, 8)
        ts = self.index[k]
        if self.print_jitter and venue in ("binance", "hyperliquid"):
            late = rng.random(len(k)) < (0.1 if venue == "binance" else 1.0)
            ms = np.where(late, rng.integers(1, 10 if venue == "binance" else 120, len(k)), 0)
            ts = ts + pd.to_timedelta(ms, unit="ms")
        frame = {"rate": rate, "interval_hours": h.astype("float64"), "interval_inferred": False}
        out = pd.DataFrame(frame, index=pd.DatetimeIndex(ts, name="ts").as_unit("us"))
        out["rate_per_hour"] = out["rate"] / out["interval_hours"]
        return out

    def _interval_hours(self, venue: str, symbol: str) -> np.ndarray:
        default = DEFAULT_FUNDING_HOURS.get(venue, 8)
        out = np.full(len(self.index), default, dtype=np.int64)
        spec = self.intervals.get(symbol) if default != 1 else None
        if spec is None:
            return out
        segments = [(self.index[0], spec)] if isinstance(spec, int) else [(to_utc(t), h) for t, h in spec]
        for since, hours in sorted(segments, key=lambda seg: seg[0]):
            if hours < 1 or 24 % hours:
                raise ValueError(f"funding interval of {symbol} must divide 24 hours, got {hours}")
            out[np.asarray(self.index >= since)] = hours
        return out

    def open_interest(self, venue: str, symbol: str) -> pd.DataFrame:
        p, n, rng = self.path(symbol), len(self.index), _rng(self.seed, "oi", venue, symbol)
        flushed = np.cumprod(1 - np.minimum(0.9, 1.5 * p.drop))  # liquidations close positions for good
        trend = np.exp(_smooth_noise(_rng(self.seed, "positioning", symbol), n, 72, 0.15))
        base = p.level * 30 / p.p0 * trend * flushed * _VOLUME_SHARE.get(venue, 0.3)
        oi = np.round(base * np.exp(rng.normal(0.0, 0.005, n)), p.lot_decimals)
        value = np.round(oi * np.exp(p.log_close), 4)
        return pd.DataFrame({"open_interest": oi, "open_interest_value": value}, index=self.index.copy())
