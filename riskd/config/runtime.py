"""Sections about the running daemon: its hourly cycle, the minute streams, the trading-state table."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field

from riskd.config.base import _Section
from riskd.contract.trading import TradingState, TradingTable
from riskd.core.intrahour import IntrahourParams


class DaemonSettings(_Section):
    """The hourly cycle of ``riskd run``."""

    grace_s: float = Field(
        20.0,
        ge=0,
        le=1800,
        description="Seconds after the hour close before fetching (venues finalise late).",
    )
    warmup_hours: int = Field(
        24 * 14, ge=48, description="Hours of history loaded at start to warm up rolling statistics."
    )
    max_catchup_hours: int = Field(
        24 * 7, ge=1, description="After downtime, at most this many missed hours are computed into history."
    )
    restate_hours: int = Field(
        48,
        ge=0,
        le=24 * 30,
        description="Late data for an hour at most this old recomputes it and the hours after it, republished "
        "as revisions (restated: true); older late data is stored but not restated. 0: never restate.",
    )
    lease_ttl_s: float = Field(
        30.0, gt=1, description="Leader lease in Redis; a standby replica takes over after it lapses."
    )
    instance_id: str | None = Field(None, description="Replica name in the lease; None: host:pid.")
    fetch_deadline_s: float = Field(
        45.0,
        gt=0,
        le=1800,
        description="Every venue request of one cycle must finish within this many seconds of the fetch's "
        "start; what has not is cancelled and recorded as failed (deadline), and the hour is published on "
        "time, degraded, rather than late.",
    )
    max_clock_skew_s: float = Field(
        5.0,
        gt=0,
        le=600,
        description="Each cycle reads the primary venue's server time; a local clock further off than this "
        "many seconds is logged (once when it begins, once when it ends), exported as "
        "riskd_clock_skew_seconds and shown by /healthz as degraded. Cycles wait for the venue's hour "
        "close whatever the skew (up to 10 minutes), so a fast clock never publishes an hour stale.",
    )
    shutdown_deadline_s: float = Field(
        15.0,
        gt=0,
        le=600,
        description=(
            "After SIGTERM/SIGINT, a riskd still running this long prints every thread's stack "
            "to stderr and exits with status 1."
        ),
    )


StreamVenue = Literal["binance", "bybit"]


class StreamSettings(_Section):
    """The minute side (``riskd.streams``): websocket liquidations and 1-minute candles, the provisional
    intra-hour detector and ``<prefix>:regime:live``."""

    enabled: bool = Field(
        False, description="Run the websocket streams and the provisional detector next to the hourly cycle."
    )
    venues: list[StreamVenue] = Field(
        default_factory=lambda: list(get_args(StreamVenue)),
        description="Venues whose liquidation streams are recorded (Binance: all-market !forceOrder@arr; "
        "Bybit: allLiquidation per universe symbol). OKX, an opt-in hourly venue (venues.okx), has no "
        "liquidation stream in riskd.",
    )
    candle_venue: StreamVenue = Field("binance", description="Venue of the 1-minute candles.")
    candle_symbols: list[str] | None = Field(
        None, description="Base assets with 1-minute candles (BTC first); None: the universe."
    )
    ws_urls: dict[str, str] = Field(
        default_factory=dict,
        description="Websocket base per venue (binance: …/ws, bybit: …/v5/public/linear). Empty: derived "
        "from venues.<venue>.api_url when that is set (the fake exchange), else ccxt's production URLs.",
    )
    stall_timeout_s: float = Field(
        120.0,
        gt=0,
        description="A liquidation stream silent this long is treated as stalled: reconnected, and the "
        "silence recorded as a gap (never as 'no liquidations').",
    )
    candle_stall_timeout_s: float = Field(
        90.0, gt=0, description="The same for the 1-minute candle stream (it updates every few seconds)."
    )
    backoff_initial_s: float = Field(1.0, gt=0, description="First reconnect delay; doubles per failure.")
    backoff_max_s: float = Field(60.0, gt=0, description="Ceiling of the reconnect delay (full jitter).")
    tick_s: float = Field(1.0, gt=0, description="How often minutes are closed and stalls checked.")
    close_grace_s: float = Field(
        2.0, ge=0, description="Seconds after a minute ends before it is closed without its final candle."
    )
    confirm_wait_s: float = Field(
        1800.0,
        gt=0,
        description="After the hour close, how long to wait for the hourly snapshot that confirms or "
        "retracts a provisional alert; after that the alert is retracted as unconfirmed.",
    )
    history_minutes: int = Field(
        1600, ge=120, description="1-minute bars kept in memory for the detector's baselines."
    )
    detector: IntrahourParams = Field(
        default_factory=IntrahourParams, description="Thresholds of the provisional detector."
    )


class TradingSettings(_Section):
    """The trading-state table (``riskd.contract.trading``, docs/redis.md): how a regime, its multiplier and
    its freshness become ``trading_state`` active / reducing / halted in every snapshot."""

    calm: TradingState = Field("active", description="trading_state of the calm regime.")
    elevated: TradingState = Field("active", description="…of elevated (risk_multiplier still sizes it).")
    recovery: TradingState = Field("reducing", description="…of recovery.")
    fragile: TradingState = Field("reducing", description="…of fragile.")
    cascade: TradingState = Field("halted", description="…of cascade.")
    halt_at_or_below: float = Field(
        0.0, ge=0, le=1, description="A risk_multiplier at or below this halts, whatever the state."
    )
    reduce_below: float = Field(
        0.75, ge=0, le=1, description="A risk_multiplier below this is at least reducing."
    )
    fail_safe: Literal["reducing", "halted"] = Field(
        "halted",
        description="trading_state when riskd cannot vouch for the regime (state unknown, stale data, no "
        "or old snapshot); never active.",
    )

    def table(self) -> TradingTable:
        """The table these settings make."""
        states: dict[str, TradingState] = {
            name: getattr(self, name) for name in ("calm", "elevated", "recovery", "fragile", "cascade")
        }
        return TradingTable(states, self.halt_at_or_below, self.reduce_below, self.fail_safe)
