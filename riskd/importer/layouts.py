"""Reading one file into pieces of series, each layout recognised by its content.

A file is opened by its format (feather, parquet, JSON array, CSV with or without header; any of them
gzip-compressed), then recognised by its **columns** (docs/data.md, Layouts): funding in long format,
Binance archive funding, funding with a time and a rate column, open interest, candles. The
timeframe of candles is the most common spacing of their times (a file named ``-5m`` whose rows are
1 h apart is refused), the timezone is the offset the times carry (naive times are UTC unless an
override says otherwise), and a funding file whose 8 h prints do not fall on 00/08/16 is refused as
not UTC. Names add only what the content cannot say: the freqtrade pair and candle type, the venue
(freqtrade's exchange folder), and the symbol when no column holds it.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from riskd.importer.files import CANDLE, data_name, load, modal_step_ms, parse_times
from riskd.importer.model import Piece, SkipFile
from riskd.importer.overrides import Override
from riskd.sources.symbols import base_of, canonical
from riskd.store import CANDLE_TIMEFRAMES, STEPS, candle_dataset

VENUES = ("binance", "bybit", "hyperliquid")
_QUOTES = {"binance": ("USDT",), "bybit": ("USDT",), "hyperliquid": ("USDC", "")}
DATA_SUFFIXES = (".feather", ".parquet", ".csv", ".json", ".zip")
_FREQTRADE = re.compile(
    r"^(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Z]+)(?:_(?P<settle>[A-Z]+))?-(?P<tf>\d+[mhdwMy])"
    r"(?:-(?P<kind>[A-Za-z_]+))?\.(?:feather|parquet|json)$"
)
_FT_KIND = {"futures": "ohlcv", "mark": "mark_ohlcv", "funding_rate": "funding"}
_TF_LABEL = re.compile(r"[-_](\d+[mhd])(?=[-_.])")
_TIME_COLUMNS = ("open_time", "timestamp", "date", "time", "calc_time", "settlement_ts", "fundingtime")
_RATE_COLUMNS = ("funding_rate", "funding rate", "last_funding_rate", "fundingrate", "rate")
_HOUR_MS = 3_600_000
_STEP_LABEL = {int(v / pd.Timedelta(milliseconds=1)): k for k, v in CANDLE_TIMEFRAMES.items()}
GAP_FILL = "gap-fill bars (volume 0, open=high=low=close) in minute files: missing bars, not trades"


def read_file(
    path: Path, renames: dict[str, str], override: Override, dropped: Counter[str] | None = None
) -> list[Piece]:
    """The series in one file, or SkipFile naming why the file is not importable.

    ``dropped`` counts rows left out on purpose, by reason (USDC-margined rows of a long funding
    file, gap-fill bars of minute files).
    """
    name = data_name(path)
    if name is None:
        raise SkipFile("not a data file format (feather, parquet, json, csv, zip; optionally .gz)")
    ctx = _Context(path, name, renames, override, dropped if dropped is not None else Counter())
    df = load(path, name)
    if df.empty:
        raise SkipFile("no rows")
    return ctx.classify(df)


# ---- recognising -------------------------------------------------------------------------------
class _Context:
    """One file being read: its path, name, override and where dropped rows are counted."""

    def __init__(
        self, path: Path, name: str, renames: dict[str, str], override: Override, dropped: Counter[str]
    ) -> None:
        self.path, self.name, self.renames, self.override, self.dropped = (
            path,
            name,
            renames,
            override,
            dropped,
        )
        self.ft = _FREQTRADE.match(name)

    def classify(self, df: pd.DataFrame) -> list[Piece]:
        cols = set(df.columns)
        time_col = next((c for c in _TIME_COLUMNS if c in cols), None)
        rate_col = next((c for c in _RATE_COLUMNS if c in cols), None)
        if {"settlement_ts", "rate_raw", "venue_symbol"} <= cols:
            return self._long_funding(df)
        if {"liquidated_ntl_pos", "liquidated_account_value"} <= cols and time_col:
            return [self._liquidations(df, time_col)]
        if time_col is None:
            raise SkipFile(f"unrecognised columns {sorted(cols)[:8]}: no time column")
        if {"sum_open_interest", "sum_open_interest_value"} <= cols:
            return [self._open_interest(df, time_col)]
        if rate_col is not None:
            hours = df["funding_interval_hours"] if "funding_interval_hours" in cols else None
            return [self._funding(df, time_col, df[rate_col], hours)]
        if set(CANDLE) <= cols:
            if self._is_funding_candles(df):
                return [self._funding(df, time_col, df["open"], None)]
            return [self._candles(df, time_col)]
        raise SkipFile(f"unrecognised columns {sorted(cols)[:8]}")

    # -- names ---------------------------------------------------------------------------------
    def venue(self) -> str:
        """The override's, else freqtrade's exchange folder, else a venue named in the file name."""
        if self.override.venue:
            return self.override.venue
        for part in reversed(self.path.parts[:-1]):
            if part.lower() in VENUES:
                return part.lower()
        tokens = set(re.split(r"[-_.]", self.name.lower()))
        return next((v for v in VENUES if v in tokens), "binance")

    def symbol(self, raw: str, venue: str) -> str:
        """The stored base asset of a raw pair name, checking the quote is the venue's perp quote."""
        raw = raw.strip().replace("-", "_")
        if venue == "hyperliquid" and re.fullmatch(r"k[A-Z0-9]+(_.*)?", raw):
            raw = "1000" + raw[1:]  # per-1000-token contracts, Binance's 1000PEPE
        base = base_of(raw)
        quote = raw.upper()[len(base) :].strip("_").split("_")[0]
        if quote not in _QUOTES[venue]:
            raise SkipFile(
                f"pair {raw!r} is not quoted in {'/'.join(q for q in _QUOTES[venue] if q)} on {venue}"
            )
        base = canonical(base, self.renames)
        if not re.fullmatch(r"[A-Z0-9]+", base):
            raise SkipFile(f"cannot tell the base asset from {raw!r}")
        return base

    def name_symbol(self, df: pd.DataFrame, venue: str) -> str:
        if self.ft:
            return self.symbol(f"{self.ft['base']}_{self.ft['quote']}", venue)
        if "symbol" in df.columns:
            return self.symbol(str(df["symbol"].iloc[0]), venue)
        return self.symbol(re.split(r"[-_.]", self.name, maxsplit=1)[0], venue)

    def label(self) -> str | None:
        """The timeframe the file name claims (``-5m``, ``_1h``), None when it claims none."""
        if self.ft:
            return self.ft["tf"]
        if m := _TF_LABEL.search(self.name):
            return m[1]
        folder = self.path.parent.name
        return folder if folder in CANDLE_TIMEFRAMES else None

    # -- layouts -------------------------------------------------------------------------------
    def _is_funding_candles(self, df: pd.DataFrame) -> bool:
        """freqtrade funding: the rate in ``open`` and zeros elsewhere (the name says so too)."""
        if self.ft and self.ft["kind"] == "funding_rate":
            return True
        rest = df[["high", "low", "close", "volume"]].to_numpy(dtype=float)
        return bool(len(rest)) and not rest.any() and bool(df["open"].abs().max() < 0.1)

    def _market(self) -> str:
        """``ohlcv`` (perp), ``spot_ohlcv`` or ``mark_ohlcv`` of a candle file."""
        if self.override.market:
            return "spot_ohlcv" if self.override.market == "spot" else "ohlcv"
        if self.ft:
            kind, settle = self.ft["kind"], self.ft["settle"]
            if kind is None and settle is None:
                return "spot_ohlcv"
            if kind in ("futures", "mark") or (kind is None and settle):
                return _FT_KIND.get(kind or "futures", "ohlcv")
            raise SkipFile(f"freqtrade candle type {kind} is not stored")
        parts = {p.lower() for p in self.path.parts[:-1]}
        if parts & {"indexpriceklines", "premiumindexklines", "cm"}:
            raise SkipFile("index/premium/coin-margined klines are not stored")
        if "markpriceklines" in parts:
            return "mark_ohlcv"
        return "spot_ohlcv" if "spot" in parts else "ohlcv"

    def _candles(self, df: pd.DataFrame, time_col: str) -> Piece:
        venue = self.venue()
        kind = self._market()
        ts, tz = parse_times(df[time_col], self.override.tz)
        step = modal_step_ms(ts)
        # a single bar has no spacing: its label, else an hourly bar (the common case)
        tf = _STEP_LABEL.get(step) if step is not None else (self.label() or "1h")
        if tf is None:
            raise SkipFile(f"rows are {pd.Timedelta(milliseconds=step or 0)} apart: no stored timeframe")
        if (label := self.label()) and label != tf:
            raise SkipFile(f"named {label} but the rows are {tf} apart")
        if kind == "mark_ohlcv" and tf != "1h":
            raise SkipFile(f"mark-price candles at {tf}: only 1h is stored")
        values = {c: df[c].to_numpy(dtype=float) for c in CANDLE}
        qv = df["quote_volume"].to_numpy(dtype=float) if "quote_volume" in df.columns else np.nan
        frame = _frame(ts, {**values, "quote_volume": qv})
        if CANDLE_TIMEFRAMES[tf] < pd.Timedelta(hours=1):
            fill = (frame["volume"] == 0) & (frame["open"] == frame["high"])
            fill &= (frame["open"] == frame["low"]) & (frame["open"] == frame["close"])
            if n := int(fill.sum()):
                self.dropped[GAP_FILL] += n
                frame = frame[~fill.to_numpy()]
        return self._piece(candle_dataset(kind, tf), venue, self.name_symbol(df, venue), frame, tz=tz)

    def _funding(self, df: pd.DataFrame, time_col: str, rate: pd.Series, hours: pd.Series | None) -> Piece:
        venue = self.venue()
        ts, tz = parse_times(df[time_col], self.override.tz)
        ih = hours.to_numpy(dtype=float) if hours is not None else np.nan
        frame = _frame(ts, {"rate": rate.to_numpy(dtype=float), "interval_hours": ih})
        if not tz and not self.override.tz:
            _check_print_hours(frame.index)
        return self._piece("funding", venue, self.name_symbol(df, venue), frame, tz=tz)

    def _open_interest(self, df: pd.DataFrame, time_col: str) -> Piece:
        venue = self.venue()
        ts, tz = parse_times(df[time_col], self.override.tz)
        values = {
            "open_interest": df["sum_open_interest"].to_numpy(dtype=float),
            "open_interest_value": df["sum_open_interest_value"].to_numpy(dtype=float),
        }
        frame = _frame(ts, values)
        rank = -int((modal_step_ms(frame.index) or _HOUR_MS) // _HOUR_MS)
        return self._piece("open_interest", venue, self.name_symbol(df, venue), frame, rank=rank, tz=tz)

    def _long_funding(self, df: pd.DataFrame) -> list[Piece]:
        """Many symbols in one file (zushen168's normalised parquet): one piece per venue symbol."""
        if "is_predicted" in df.columns and (pred := df["is_predicted"].astype(bool)).any():
            self.dropped["predicted (not settled) funding rows"] += int(pred.sum())
            df = df[~pred.to_numpy()]
        ts, tz = parse_times(df["settlement_ts"], self.override.tz)
        df = df.assign(_ts=ts)
        venues = df["venue"] if "venue" in df.columns else pd.Series(self.venue(), index=df.index)
        out = []
        for (venue, raw), group in df.groupby([venues.str.lower(), "venue_symbol"], sort=True):
            if venue not in VENUES:
                self.dropped[f"funding rows of venue {venue} (not stored)"] += len(group)
                continue
            try:
                symbol = self.symbol(str(raw), str(venue))
            except SkipFile:
                self.dropped[f"{venue} funding rows of non-{'/'.join(_QUOTES[venue][:1])} contracts"] += len(
                    group
                )
                continue
            hours = group["interval_hours"].to_numpy(dtype=float) if "interval_hours" in group else np.nan
            frame = _frame(
                pd.DatetimeIndex(group["_ts"]),
                {"rate": group["rate_raw"].to_numpy(float), "interval_hours": hours},
            )
            out.append(self._piece("funding", str(venue), symbol, frame, tz=tz))
        if not out:
            raise SkipFile("no rows of a stored venue and quote")
        return out

    def _liquidations(self, df: pd.DataFrame, time_col: str) -> Piece:
        """Hyperliquid's liquidation list (no coin): totals per minute, venue-wide symbol ``ALL``."""
        ts, tz = parse_times(df[time_col], self.override.tz)
        minute = ts.floor("min")
        cross = df["leverage_type"].astype(str).str.lower().eq("cross") if "leverage_type" in df else False
        g = (
            pd.DataFrame(
                {
                    "events": 1.0,
                    "notional_usd": df["liquidated_ntl_pos"].to_numpy(float),
                    "account_value_usd": df["liquidated_account_value"].to_numpy(float),
                    "cross_events": np.asarray(cross, dtype=float),
                },
                index=minute,
            )
            .groupby(level=0)
            .sum()
        )
        g.index = pd.DatetimeIndex(g.index, name="ts").as_unit("ms")
        venue = self.override.venue or "hyperliquid"
        return self._piece("liquidations", venue, "ALL", g, tz=tz)

    def _piece(
        self, dataset: str, venue: str, symbol: str, frame: pd.DataFrame, rank: int = 0, tz: str = ""
    ) -> Piece:
        """Check a piece; anything the store would refuse skips the file here instead."""
        if frame.empty:
            raise SkipFile("no rows")
        frame = frame[~frame.index.duplicated(keep="last")].sort_index()
        step = STEPS.get(dataset, pd.Timedelta(hours=1) if dataset == "open_interest" else None)
        if step is not None and (frame.index.asi8 % int(step / pd.Timedelta(milliseconds=1))).any():
            raise SkipFile(f"times are not {dataset} bar open times (multiples of {step})")
        required = ["rate"] if dataset == "funding" else [c for c in CANDLE[:4] if c in frame]
        if frame[required].isna().to_numpy().any():
            raise SkipFile(f"missing values in {required}")
        return Piece(self.path, dataset, venue, symbol, frame, rank, tz)


def _frame(ts: pd.DatetimeIndex, values: dict[str, np.ndarray | float]) -> pd.DataFrame:
    return pd.DataFrame(values, index=pd.DatetimeIndex(ts, name="ts"))


def _check_print_hours(ts: pd.DatetimeIndex) -> None:
    """8-hourly prints off 00/08/16 UTC (all venues settle there) mean times in another zone."""
    if modal_step_ms(ts) != 8 * _HOUR_MS:
        return
    rounded = ts.round("min")
    on_grid = (rounded.hour % 8 == 0) & (rounded.minute == 0)
    if on_grid.mean() < 0.5:
        hour = int(pd.Series(rounded.hour).mode().min())
        raise SkipFile(
            f"8-hourly funding prints at {hour:02d}:00, not on 00/08/16 UTC: the times are not UTC "
            "(give the file's zone as a tz override, docs/data.md)"
        )
