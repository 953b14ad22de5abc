"""riskd's regime filter for freqtrade: a strategy mixin, added to any ``IStrategy`` with two lines.

    from riskd.integrations.freqtrade import RiskdRegimeMixin

    class MyStrategy(RiskdRegimeMixin, IStrategy):   # the mixin first, so its callbacks wrap IStrategy's
        ...

What it does (docs/integrations.md):

- ``confirm_trade_entry`` refuses new entries while ``trading_state`` is ``halted`` (and while ``reducing``
  with ``refuse_while_reducing``); exits are never touched;
- ``custom_stake_amount`` scales the stake by ``risk_multiplier``;
- ``adjust_trade_position`` (with ``trim_while_reducing`` and the strategy's
  ``position_adjustment_enable = True``) trims an open position to ``stake_amount × risk_multiplier``
  while ``reducing``.

Where the regime comes from: live and dry-run read Redis through :func:`riskd.client.read_regime` (the
freshness verdict every riskd reader shares), cached for the candle; when riskd is stale, unreachable or
the key is missing, the mixin acts on the fail-safe state (``halted`` unless told) and logs it once per
episode. Backtesting and hyperopt read the file ``riskd export regime`` writes (``regime_file``): at each
time t the newest hour published by t (``published_at <= t``), which is exactly what the live bot sees
when it enters at a candle's open; hours the file does not cover are the fail-safe.

Settings: class attributes ``riskd_<name>`` on the strategy, overridden by the freqtrade config's
``"riskd": {"<name>": …}`` section (``redis_url``, ``prefix``, ``regime_file``, ``refuse_while_reducing``,
``trim_while_reducing``, ``fail_safe``, ``fallback_multiplier``, ``max_age_hours``, ``poll_seconds``).
freqtrade itself is not imported: the mixin relies only on the strategy's ``config`` and ``timeframe``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from riskd.client import DEFAULT_PREFIX, read_regime
from riskd.contract.trading import DEFAULT_TABLE, SEVERITY, TradingState

log = logging.getLogger("riskd.integrations.freqtrade")

LIVE_MODES = ("live", "dry_run")
"""freqtrade run modes that trade now (everything else replays history from the export)."""


@dataclass(frozen=True)
class RegimeDecision:
    """What the mixin acts on at one moment."""

    trading_state: TradingState
    risk_multiplier: float
    as_of: datetime | None
    reason: str
    blind: bool = False
    """True when this is the fail-safe (riskd stale, unreachable, key missing, or outside the export)."""


def _utc(t: datetime | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class HistoryRegime:
    """The exported regime (``riskd export regime``) as a function of time, for backtests."""

    def __init__(self, frame: pd.DataFrame, *, fail_safe: TradingState, fallback_multiplier: float,
                 max_age: timedelta) -> None:  # fmt: skip
        self.frame = frame.sort_values("published_at").reset_index(drop=True)
        self._published = self.frame["published_at"].to_numpy(dtype="datetime64[ns]")
        self.fail_safe, self.fallback, self.max_age = fail_safe, fallback_multiplier, max_age

    @classmethod
    def from_file(cls, path: str | Path, **kw: Any) -> HistoryRegime:
        """Load an export (Parquet or CSV)."""
        from riskd.contract.regime_file import read_regime_file

        return cls(read_regime_file(path), **kw)

    def at(self, t: datetime | pd.Timestamp) -> RegimeDecision:
        """The newest hour published by ``t``; the fail-safe before the first or past ``max_age``."""
        ts = _utc(t)
        i = int(self._published.searchsorted(ts.tz_convert(None).to_datetime64(), side="right")) - 1
        if i < 0:
            return RegimeDecision(self.fail_safe, self.fallback, None, "before the exported history", True)
        row = self.frame.iloc[i]
        as_of = pd.Timestamp(row["as_of"])
        if ts - as_of > self.max_age:
            return RegimeDecision(
                self.fail_safe, self.fallback, as_of.to_pydatetime(), "past the export", True
            )
        state: TradingState = row["trading_state"]
        return RegimeDecision(state, float(row["risk_multiplier"]), as_of.to_pydatetime(), str(row["state"]))


class LiveRegime:
    """The current regime from Redis through ``riskd.client``, cached for the candle.

    A read that holds the hour closed at the candle's open is kept for the rest of the candle; until that
    hour is published (riskd writes it ``daemon.grace_s`` after the close) the key is read again at most
    every ``poll_seconds``. Blind episodes are logged once at their start and once at their end."""

    def __init__(self, redis_url: str, *, prefix: str, fail_safe: TradingState, fallback_multiplier: float,
                 max_age: timedelta, poll_seconds: float) -> None:  # fmt: skip
        import redis

        self.client = redis.Redis.from_url(redis_url, socket_connect_timeout=1.0, socket_timeout=1.0)
        self.prefix, self.fail_safe, self.fallback = prefix, fail_safe, fallback_multiplier
        self.max_age, self.poll_seconds = max_age, poll_seconds
        self._cached: tuple[pd.Timestamp, float, RegimeDecision] | None = None
        self._blind: str | None = None

    def at(self, now: datetime | pd.Timestamp, candle_open: pd.Timestamp) -> RegimeDecision:
        """The decision at ``now`` within the candle opened at ``candle_open``."""
        if self._cached is not None:
            candle, read_at, decision = self._cached
            complete = decision.as_of is not None and _utc(decision.as_of) >= candle_open
            if candle == candle_open and (complete or time.monotonic() - read_at < self.poll_seconds):
                return decision
        decision = self.read(now)
        self._cached = (candle_open, time.monotonic(), decision)
        return decision

    def read(self, now: datetime | pd.Timestamp) -> RegimeDecision:
        """Read the key now (no cache), log a blind episode's start or end, and decide."""
        reading = read_regime(self.client, prefix=self.prefix, now=_utc(now).to_pydatetime(),
                              max_age=self.max_age, fallback_multiplier=self.fallback,
                              fail_safe=self.fail_safe)  # fmt: skip
        if reading.snapshot is None:
            if self._blind is None:
                log.warning("riskd: acting on the fail-safe state %s: %s", self.fail_safe, reading.reason)
            self._blind = reading.reason
            return RegimeDecision(self.fail_safe, self.fallback, None, reading.reason, True)
        if self._blind is not None:
            log.warning("riskd: regime readable again (%s, %s) after: %s",
                        reading.snapshot.state, reading.trading_state, self._blind)  # fmt: skip
            self._blind = None
        snap = reading.snapshot
        return RegimeDecision(reading.trading_state, snap.risk_multiplier, snap.as_of, snap.state)


def _candle_open(t: datetime | pd.Timestamp, timeframe: str) -> pd.Timestamp:
    try:
        step = pd.Timedelta(timeframe)
    except ValueError:  # months and other calendar frames: cache per hour
        step = pd.Timedelta(hours=1)
    return _utc(t).floor(step)


class RiskdRegimeMixin:
    """Put before ``IStrategy`` in the bases. Your own callbacks of the same names should call ``super()``."""

    config: dict[str, Any]
    timeframe: str

    riskd_redis_url: str = "redis://127.0.0.1:6379/0"
    riskd_prefix: str = DEFAULT_PREFIX
    riskd_regime_file: str | None = None
    riskd_refuse_while_reducing: bool = False
    riskd_trim_while_reducing: bool = False
    riskd_fail_safe: TradingState = DEFAULT_TABLE.fail_safe
    riskd_fallback_multiplier: float = 0.5
    riskd_max_age_hours: float = 2.0
    riskd_poll_seconds: float = 30.0

    def riskd_setting(self, name: str) -> Any:
        """``config["riskd"][name]`` when set, else the class attribute ``riskd_<name>``."""
        section = (getattr(self, "config", None) or {}).get("riskd") or {}
        return section.get(name, getattr(self, f"riskd_{name}"))

    def riskd_source(self) -> HistoryRegime | LiveRegime:
        """The regime source of this run mode, built on first use."""
        source = self.__dict__.get("_riskd_source")
        if source is not None:
            return source
        mode = getattr(self.config.get("runmode"), "value", self.config.get("runmode"))
        fail_safe = self.riskd_setting("fail_safe")
        if SEVERITY.get(fail_safe, 0) == 0:
            raise ValueError(f"riskd.fail_safe: {fail_safe!r}; use halted or reducing")
        common = {"fail_safe": fail_safe, "fallback_multiplier": float(self.riskd_setting("fallback_multiplier")),
                  "max_age": timedelta(hours=float(self.riskd_setting("max_age_hours")))}  # fmt: skip
        if mode in LIVE_MODES:
            source = LiveRegime(self.riskd_setting("redis_url"), prefix=self.riskd_setting("prefix"),
                                poll_seconds=float(self.riskd_setting("poll_seconds")), **common)  # fmt: skip
        else:
            path = self.riskd_setting("regime_file")
            if not path:
                raise ValueError(
                    "riskd.regime_file is not set: backtests read the regime `riskd export regime --out FILE` "
                    'writes (config "riskd": {"regime_file": FILE})'
                )
            source = HistoryRegime.from_file(path, **common)
        self.__dict__["_riskd_source"] = source
        return source

    def riskd_regime(self, current_time: datetime) -> RegimeDecision:
        """The regime the mixin acts on at ``current_time``."""
        source = self.riskd_source()
        if isinstance(source, HistoryRegime):
            return source.at(current_time)
        return source.at(datetime.now(UTC), _candle_open(current_time, self.timeframe))

    def riskd_refuses(self, pair: str, current_time: datetime) -> bool:
        """Whether riskd refuses an entry now: halted, or reducing with ``refuse_while_reducing``. A refusal
        is logged once per pair and candle (freqtrade asks again every few seconds while it wants in)."""
        d = self.riskd_regime(current_time)
        refuse = d.trading_state == "halted" or (
            d.trading_state == "reducing" and bool(self.riskd_setting("refuse_while_reducing"))
        )
        if refuse:
            said = self.__dict__.setdefault("_riskd_refusals", set())
            key = (pair, _candle_open(current_time, self.timeframe))
            if key not in said:
                said.add(key)
                log.info("riskd: entry refused for %s at %s: trading_state %s (%s)", pair, current_time,
                         d.trading_state, d.reason)  # fmt: skip
        return refuse

    def confirm_trade_entry(self, pair: str, order_type: str, amount: float, rate: float, time_in_force: str,
                            current_time: datetime, entry_tag: str | None, side: str, **kwargs: Any) -> bool:  # fmt: skip
        """Refuse new entries while halted (and while reducing with ``refuse_while_reducing``)."""
        if self.riskd_refuses(pair, current_time):
            return False
        confirm = getattr(super(), "confirm_trade_entry", None)
        if confirm is None:
            return True
        return bool(
            confirm(pair, order_type, amount, rate, time_in_force, current_time, entry_tag, side, **kwargs)
        )

    def custom_stake_amount(self, pair: str, current_time: datetime, current_rate: float, proposed_stake: float,
                            min_stake: float | None, max_stake: float, leverage: float, entry_tag: str | None,
                            side: str, **kwargs: Any) -> float:  # fmt: skip
        """The stake the strategy would use, times ``risk_multiplier`` (capped at ``max_stake``); 0 when riskd
        refuses the entry (freqtrade then skips it before ``confirm_trade_entry``)."""
        if self.riskd_refuses(pair, current_time):
            return 0.0
        stake = proposed_stake
        parent = getattr(super(), "custom_stake_amount", None)
        if parent is not None:
            stake = parent(pair, current_time, current_rate, proposed_stake, min_stake, max_stake, leverage,
                           entry_tag, side, **kwargs)  # fmt: skip
        return min(max_stake, stake * self.riskd_regime(current_time).risk_multiplier)

    def adjust_trade_position(self, trade: Any, current_time: datetime, current_rate: float,
                              current_profit: float, min_stake: float | None, max_stake: float,
                              current_entry_rate: float, current_exit_rate: float, current_entry_profit: float,
                              current_exit_profit: float, **kwargs: Any) -> float | None:  # fmt: skip
        """With ``trim_while_reducing``: while reducing, sell down to ``stake_amount × risk_multiplier``."""
        base = self.config.get("stake_amount")
        if not self.riskd_setting("trim_while_reducing") or not isinstance(base, int | float):
            return None
        d = self.riskd_regime(current_time)
        if d.trading_state != "reducing":
            return None
        excess = float(trade.stake_amount) - float(base) * d.risk_multiplier
        if excess <= max(min_stake or 0.0, 0.01 * float(base)):
            return None
        log.info(
            "riskd: trimming %s by %.2f (reducing, multiplier %.2f)", trade.pair, excess, d.risk_multiplier
        )
        return -excess
