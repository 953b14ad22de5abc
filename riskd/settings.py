"""riskd's configuration: one Settings object, built once in ``cli.py`` and passed down.

Sources, highest priority first: keyword arguments, environment variables (``RISKD_`` prefix,
``__`` between nested sections, e.g. ``RISKD_REDIS__URL``), an optional TOML file
(``--config PATH`` or ``RISKD_CONFIG_FILE``), then the defaults documented on each field.
Nothing else in the package reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings.exceptions import SettingsError

from riskd import config_check as check
from riskd.contract.trading import TradingState, TradingTable
from riskd.core.intrahour import IntrahourParams
from riskd.core.params import FragilityParams, FundingParams
from riskd.errors import ConfigError
from riskd.sources.registry import VENUES as VENUE_SPECS
from riskd.sources.registry import gap_venues

DEFAULT_UNIVERSE: tuple[str, ...] = (
    "BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "ADA", "AVAX", "LINK", "DOT",
    "LTC", "UNI", "ATOM", "NEAR", "FIL", "FTM",
)  # fmt: skip
"""The research's universe (RESEARCH.md, Data): BTC plus liquid alts, as base assets."""

VENUES: tuple[str, ...] = tuple(VENUE_SPECS)
"""Every registered venue (riskd/sources/registry.py), in registration order."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class VenueSettings(_Section):
    """One exchange venue reached through ccxt."""

    enabled: bool = Field(True, description="Fetch from this venue at all.")
    api_url: str | None = Field(
        None,
        description="Override the venue's REST base URL (e.g. http://127.0.0.1:8900 for the fake exchange). "
        "None uses ccxt's production URLs.",
    )
    timeout_s: float = Field(10.0, gt=0, description="Per-request timeout in seconds.")
    max_concurrency: int = Field(
        8, ge=1, le=64, description="Requests in flight at once against this venue (bounded concurrency)."
    )
    rate_limit_ms: int = Field(
        0,
        ge=0,
        description="Milliseconds per unit of request weight in ccxt's throttler; 0 keeps ccxt's own "
        "per-venue calibration.",
    )
    rate_limit_window_s: float | None = Field(
        None,
        ge=0,
        le=3600,
        description="ccxt's rolling-window limiter: at most window / rate limit weight units in any window "
        "of this many seconds, so an hour's requests go out as one burst inside the venue's published "
        "budget. None: the venue's own window (Binance and Hyperliquid 60 s, Bybit 5 s, OKX 2 s); 0: ccxt's "
        "leaky bucket, one request per rate limit, no burst (a 50-symbol hour then spends ~25 s in pacing).",
    )

    check_api_url = field_validator("api_url")(check.http_url)


class _Venues(_Section):
    """One section per registered venue (riskd/sources/registry.py). Binance is the primary (prices,
    volume, funding); venues registered as opt-in (OKX) are off until ``venues.<name>.enabled``."""

    def get(self, venue: str) -> VenueSettings:
        """Settings of one venue by name."""
        return getattr(self, venue)

    def enabled(self) -> list[str]:
        """Names of the enabled venues, in the registry's order."""
        return [v for v in VENUES if self.get(v).enabled]


def _venues_model() -> type[_Venues]:
    """The venues section, built from the registry: a field per venue, default on or off as it says."""
    fields: dict[str, Any] = {
        name: (
            VenueSettings,
            Field(
                default_factory=lambda on=spec.enabled_by_default: VenueSettings(enabled=on),
                description=spec.title,
            ),
        )
        for name, spec in VENUE_SPECS.items()
    }
    return create_model("VenuesSettings", __base__=_Venues, __doc__=_Venues.__doc__, **fields)


if TYPE_CHECKING:
    VenuesSettings = _Venues
else:
    VenuesSettings = _venues_model()


class RetrySettings(_Section):
    """Retries of temporary exchange errors (timeouts, 5xx, 429, malformed replies)."""

    attempts: int = Field(6, ge=1, le=50, description="Tries per request, the first included.")
    initial_backoff_s: float = Field(0.5, ge=0, description="First back-off in seconds; doubles each retry.")
    max_backoff_s: float = Field(30.0, ge=0, description="Ceiling of one back-off in seconds.")
    jitter_s: float = Field(0.25, ge=0, description="Random extra seconds added to each back-off.")
    max_wait_s: float = Field(
        120.0,
        ge=0,
        description="Longest wait a venue may ask for (429 Retry-After, Binance's 418 ban) that a request sits "
        "out; a longer one (or one past the cycle's fetch deadline) fails the request at once and no request "
        "goes to that venue until the wait is over. The venue's wait is never shortened.",
    )
    circuit_failures: int = Field(
        5,
        ge=1,
        le=1000,
        description="Consecutive failed requests (timeouts, 5xx, refused connections, bad replies) that open a "
        "venue's circuit: its requests then fail at once until the cool-down ends and one probe is let through.",
    )
    circuit_cooldown_s: float = Field(
        30.0, gt=0, description="Seconds a venue's circuit stays open before the first probe request."
    )
    circuit_max_cooldown_s: float = Field(
        600.0,
        gt=0,
        description="Ceiling of the cool-down, which doubles each time a probe fails (a venue down for hours "
        "is probed every this many seconds).",
    )

    @field_validator("circuit_max_cooldown_s")
    @classmethod
    def _ceiling_above_start(cls, v: float, info: ValidationInfo) -> float:
        start = info.data.get("circuit_cooldown_s")
        if start is not None and v < start:
            raise ValueError(f"must be at least circuit_cooldown_s ({start})")
        return v


class UniverseSettings(_Section):
    """Which symbols riskd follows."""

    symbols: list[str] = Field(
        default_factory=lambda: list(DEFAULT_UNIVERSE),
        description="Base assets followed (BTC first). Venue symbols are derived: BTC -> BTC/USDT:USDT "
        "(Binance, Bybit), BTC/USDC:USDC (Hyperliquid).",
    )
    renames: dict[str, str] = Field(
        default_factory=lambda: {"FTM": "S"},
        description="Old base asset -> new one after a rebrand; history of both is kept under the old name.",
    )

    @field_validator("symbols")
    @classmethod
    def _upper_unique(cls, v: list[str]) -> list[str]:
        out = [check.symbol_name(s) for s in v if s.strip()]
        if not out:
            raise ValueError("must name at least one symbol")
        if len(set(out)) != len(out):
            raise ValueError("contains duplicates")
        return out

    @field_validator("renames")
    @classmethod
    def _rename_names(cls, v: dict[str, str]) -> dict[str, str]:
        return {check.symbol_name(old): check.symbol_name(new) for old, new in v.items()}


BackfillDataset = Literal["ohlcv", "funding", "open_interest"]


class BackfillSettings(_Section):
    """Defaults of ``riskd backfill``."""

    since: datetime = Field(
        datetime(2020, 1, 1, tzinfo=UTC), description="Earliest hour to fetch when --since is not given."
    )
    datasets: list[BackfillDataset] = Field(
        default_factory=lambda: list(get_args(BackfillDataset)),
        description="Datasets fetched by a backfill.",
    )
    chunk_hours: int = Field(
        24 * 30,
        ge=24,
        description="Hours written to the store per chunk; a restart resumes from the last whole chunk.",
    )

    @field_validator("since")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v if v.tzinfo else v.replace(tzinfo=UTC)


class RedisSettings(_Section):
    """Where the regime is published. AUTH and TLS come from the URL (``rediss://user:pass@host``)."""

    url: SecretStr | None = Field(
        None,
        description="Redis URL. None: use redis://127.0.0.1:6379/0 if it answers, else start an embedded "
        "redis-server on loopback with persistence in data_dir. Secret: it may carry a password.",
    )
    key_prefix: str = Field("riskd:v1", description="Prefix of every key riskd writes (versioned schema).")
    key_ttl_cycles: float = Field(
        2.5,
        gt=0,
        description="The regime key expires after this many hourly cycles without a fresh write (keep it "
        "above 1; tests use tiny values to watch the key vanish).",
    )
    history_maxlen: int = Field(
        24 * 365 * 2, ge=100, description="Approximate cap (MAXLEN ~) of the history stream, in entries."
    )
    socket_timeout_s: float = Field(2.0, gt=0, description="Per-command timeout in seconds.")

    @field_validator("url")
    @classmethod
    def _url(cls, v: SecretStr | None) -> SecretStr | None:
        return v if v is None else SecretStr(check.redis_url(v.get_secret_value()))

    check_key_prefix = field_validator("key_prefix")(check.key_prefix)


class MetricsSettings(_Section):
    """The HTTP server: Prometheus /metrics, the API (/regime, /history, probes, schemas), the status page."""

    enabled: bool = Field(True, description="Serve metrics at all.")
    host: str = Field("127.0.0.1", description="Listen address; 0.0.0.0 to expose beyond loopback.")
    port: int = Field(9464, ge=0, le=65535, description="Listen port (0 picks a free one).")
    external_url: str | None = Field(
        None,
        description="Base URL people and tools reach this server at (runbook links, OpenAPI servers), e.g. "
        "https://riskd.example.com; None: http://<host>:<port> (localhost when host is 0.0.0.0).",
    )
    api_token: SecretStr | None = Field(
        None,
        description="Bearer token required by every route but /healthz, /readyz and /runbooks/, /metrics "
        "included (Prometheus: authorization.credentials_file); None: open. Secret: never logged.",
    )
    max_age_s: float = Field(
        7200.0,
        gt=0,
        description="A snapshot whose hour ended longer ago than this is stale: /regime answers 503 and "
        "/readyz fails (riskd.client's default is the same 2 h).",
    )

    @field_validator("external_url")
    @classmethod
    def _absolute(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s):// URL")
        return v.rstrip("/") if v else v

    def base_url(self) -> str:
        """The externally reachable base URL, without a trailing slash."""
        if self.external_url:
            return self.external_url
        host = "localhost" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    check_host = field_validator("host")(check.listen_host)


AlertMode = Literal["on", "silent", "off"]


class AlertSettings(_Section):
    """Which alerts are sent and how loudly (silent: delivered without a notification sound)."""

    regime_change: AlertMode = Field("on", description="Regime transitions.")
    cascade_start: AlertMode = Field("on", description="A cascade episode begins.")
    cascade_end: AlertMode = Field("silent", description="A cascade episode ends.")
    data_stale: AlertMode = Field("on", description="Primary data went stale or missing.")
    data_recovered: AlertMode = Field("silent", description="Data is fresh again.")
    cascade_developing: AlertMode = Field(
        "on",
        description="The provisional intra-hour detector fired (riskd.streams); the hour close confirms or "
        "retracts it as a reply in the same thread.",
    )
    cooldown_s: float = Field(
        3 * 3600.0,
        ge=0,
        description="Minimum seconds of market time between two alerts of the same kind; later ones are "
        "suppressed (reason cooldown). Critical alerts bypass it.",
    )
    chart_hours: int = Field(72, ge=12, description="Hours of BTC price and CFI drawn on the alert chart.")


class TelegramSettings(_Section):
    """Telegram alerts and commands. With no token, alerts go to the console."""

    token: SecretStr | None = Field(None, description="Bot token from @BotFather. Secret: never logged.")
    chat_ids: list[int] = Field(default_factory=list, description="Chats that receive alerts.")
    allowed_ids: list[int] = Field(
        default_factory=list,
        description="User or chat ids that may read (commands, Refresh); everyone else gets no answer.",
    )
    admin_ids: list[int] = Field(
        default_factory=list,
        description="User ids that may also act: mute, unmute and acknowledge (commands and buttons).",
    )
    routes: dict[Literal["info", "warning", "critical"], list[int]] = Field(
        default_factory=dict,
        description="Severity -> chat ids that receive alerts of it, e.g. {critical = [-100123]}; a severity "
        "not listed goes to chat_ids (the default: every alert to chat_ids).",
    )
    escalate_after: float = Field(
        15.0,
        ge=0,
        le=24 * 60,
        description="Minutes a critical alert may stay unacknowledged before it is re-sent, once, to "
        "escalation_chat_ids. 0: never escalate.",
    )
    escalation_chat_ids: list[int] = Field(
        default_factory=list, description="Chats that receive escalations; none: escalation is off."
    )
    grafana_url: str | None = Field(
        None, description="Grafana dashboard URL linked from alerts; None: no Grafana link."
    )
    api_base_url: str | None = Field(
        None, description="Bot API base URL override (tests point it at a loopback fake). None: Telegram's."
    )
    max_messages_per_minute: int = Field(20, ge=1, description="Outgoing rate limit across all chats.")
    retry_interval_s: float = Field(30.0, gt=0, description="How often the outbox retries unsent alerts.")

    check_api_base_url = field_validator("api_base_url")(check.http_url)
    check_grafana_url = field_validator("grafana_url")(check.http_url)


class WebhookSettings(_Section):
    """Signed webhooks: snapshots and alerts POSTed as JSON (Slack/Teams/Discord relays, in-house bots)."""

    urls: list[AnyHttpUrl] = Field(default_factory=list, description="Receivers; none: webhooks are off.")
    secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key for the X-Riskd-Signature header. Secret: never logged."
    )
    timeout_s: float = Field(5.0, gt=0, le=60, description="Per-request time-out.")
    attempts: int = Field(
        5, ge=1, le=50, description="Tries per snapshot per receiver (alerts retry until sent)."
    )
    initial_backoff_s: float = Field(1.0, gt=0, le=600, description="First retry wait; doubles per try.")

    @model_validator(mode="after")
    def _secret_with_urls(self) -> WebhookSettings:
        if self.urls and self.secret is None:
            raise ValueError("webhook.urls is set but webhook.secret is not: receivers could not verify")
        return self


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
    shutdown_deadline_s: float = Field(
        15.0,
        gt=0,
        le=600,
        description=(
            "After SIGTERM/SIGINT, a riskd still running this long prints every thread's stack "
            "to stderr and exits with status 1."
        ),
    )


class ValidationSettings(_Section):
    """``riskd validate``: the offline report's choices. Defaults are the research's (RESEARCH.md)."""

    cost_bps: float = Field(
        30.0, ge=0, le=1000, description="Round-trip trading cost per leg, bps (research: ~30 in a cascade)."
    )
    crash_kind: Literal["return", "drawdown", "cascade"] = Field(
        "drawdown",
        description=(
            "riskd's one crash definition (every part of the report, and what crash_prob_24h predicts): "
            "BTC's lowest hourly close within the horizon at or below the threshold (drawdown), its return "
            "to the horizon at or below it (return), or a cascade event within it (cascade)."
        ),
    )
    crash_horizon_h: int = Field(24, ge=1, le=720, description="Hours after the reading a crash may come in.")
    crash_threshold: float = Field(
        -0.05, gt=-1, lt=0, description="BTC move that counts as a crash, at or below (fraction)."
    )
    event_level: Literal["strict", "medium", "loose", "volume_only"] = Field(
        "volume_only", description="Cascade level of the event study and the fixed-rule strategies."
    )
    hold_h: int = Field(
        48, ge=1, le=720, description="Holding period of the contagion and spread strategies, hours."
    )
    bootstrap_reps: int = Field(
        1000, ge=10, le=100_000, description="Bootstrap resamples for confidence intervals."
    )
    block_h: int = Field(
        168, ge=1, le=24 * 90, description="Mean block length of the stationary bootstrap, hours."
    )
    long_block_h: int = Field(
        720, ge=1, le=24 * 365, description="The second, longer mean block of every paired comparison, hours."
    )
    exposure_cost_bps: float = Field(
        10.0, ge=0, le=1000, description="The filter's cost per unit of exposure change, bps of notional."
    )
    seed: int = Field(0, ge=0, description="Random seed of every bootstrap (same seed, same report).")


class ModelSettings(_Section):
    """The crash-probability model: where the daemon reads it, what ``riskd calibrate`` fits (the crash
    itself is riskd's one definition, the ``validation.crash_*`` settings)."""

    crash_prob_path: Path | None = Field(
        None,
        description="Model file (JSON) of crash_prob_24h. None: <data_dir>/models/crash_prob_24h.json. "
        "No file: the daemon publishes crash_prob_24h as null.",
    )
    crash_features: tuple[str, ...] = Field(
        ("btc_rv_24h", "btc_rv_7d", "btc_rv_30d", "btc_drawdown_7d", "btc_ret_24h", "btc_downside_rv_24h"),
        min_length=1,
        description="Columns of the core's output the logistic model uses (default, v2: BTC realised "
        "volatility over 1, 7 and 30 days, the drawdown from the 7-day high, the 24 h return, the 24 h "
        "downside volatility). The crash it predicts is validation.crash_*.",
    )
    refit: Literal["MS", "QS", "YS"] = Field(
        "MS", description="Walk-forward refit dates: month, quarter or year starts (expanding window)."
    )
    min_train_hours: int = Field(
        24 * 365, ge=24, description="Fewest labelled hours before the walk-forward's first fit."
    )
    min_train_crashes: int = Field(50, ge=5, description="Fewest crash hours before the first fit.")


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


def _registered(name: str) -> str:
    if name not in VENUE_SPECS:
        raise ValueError(f"unknown venue {name!r}; expected one of {', '.join(VENUES)}")
    return name


class _RegisteredFunding(FundingParams):
    __doc__ = FundingParams.__doc__  # the core's params; the venue names checked against the registry here

    @field_validator("primary_venue")
    @classmethod
    def _primary_registered(cls, v: str) -> str:
        return _registered(v)

    @field_validator("gap_venues")
    @classmethod
    def _gap_registered(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_registered(n) for n in v)


class _Fragility(FragilityParams):
    __doc__ = FragilityParams.__doc__  # the core cannot import the registry: Settings checks its venue names

    funding: _RegisteredFunding = Field(
        default_factory=_RegisteredFunding, description=FragilityParams.model_fields["funding"].description
    )


class Settings(BaseSettings):
    """All of riskd's settings. ``riskd config show`` prints the effective values."""

    model_config = SettingsConfigDict(
        env_prefix="RISKD_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
        allow_inf_nan=False,
    )

    data_dir: Path = Field(
        Path("data"), description="Where the Parquet history store and riskd's own state live."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log verbosity.")
    universe: UniverseSettings = Field(default_factory=UniverseSettings, description="Symbols followed.")
    venues: VenuesSettings = Field(default_factory=VenuesSettings, description="Exchange venues.")
    retry: RetrySettings = Field(default_factory=RetrySettings, description="Retry policy for exchanges.")
    backfill: BackfillSettings = Field(default_factory=BackfillSettings, description="Backfill defaults.")
    redis: RedisSettings = Field(default_factory=RedisSettings, description="Redis publishing.")
    metrics: MetricsSettings = Field(default_factory=MetricsSettings, description="Prometheus endpoint.")
    alerts: AlertSettings = Field(default_factory=AlertSettings, description="Alert rules and modes.")
    telegram: TelegramSettings = Field(default_factory=TelegramSettings, description="Telegram bot.")
    webhook: WebhookSettings = Field(default_factory=WebhookSettings, description="Signed webhooks.")
    daemon: DaemonSettings = Field(default_factory=DaemonSettings, description="The hourly cycle.")
    validation: ValidationSettings = Field(
        default_factory=ValidationSettings, description="riskd validate (the offline report)."
    )
    model: ModelSettings = Field(
        default_factory=ModelSettings, description="Crash-probability model (riskd calibrate)."
    )
    streams: StreamSettings = Field(
        default_factory=StreamSettings, description="Minute streams and the provisional detector."
    )
    trading: TradingSettings = Field(
        default_factory=TradingSettings, description="The trading-state table (active/reducing/halted)."
    )
    fragility: _Fragility = Field(
        default_factory=_Fragility,
        description="The fragility core: features, CFI weights, cascade levels, regime (docs/features.md).",
    )

    @field_validator("fragility", mode="before")
    @classmethod
    def _checked_params(cls, v: Any) -> Any:
        """A plain FragilityParams given in code is checked like one read from the environment."""
        return v.model_dump() if isinstance(v, FragilityParams) and not isinstance(v, _Fragility) else v

    @model_validator(mode="wrap")
    @classmethod
    def _gap_from_registry(cls, data: Any, handler: Any) -> Settings:
        """Unless set explicitly, the gap venues are the registry's: every default gap venue plus the
        opt-in ones that are enabled (``venues.okx.enabled`` alone puts OKX into the gap)."""
        settings: Settings = handler(data)
        if _gap_venues_given(data):
            return settings
        gap = gap_venues(set(settings.venues.enabled()))
        funding = settings.fragility.funding
        if funding.gap_venues != gap:
            fragility = settings.fragility.model_copy(
                update={"funding": funding.model_copy(update={"gap_venues": gap})}
            )
            settings.fragility = fragility
        return settings

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, v: Path) -> Path:
        return check.writable_dir(v)

    @property
    def store_dir(self) -> Path:
        """Root of the Parquet history store."""
        return self.data_dir / "store"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = settings_cls.model_config.get("toml_file")
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


def _gap_venues_given(data: Any) -> bool:
    """Whether the raw input names ``fragility.funding.gap_venues`` (environment, TOML or a given model)."""
    fragility = data.get("fragility") if isinstance(data, Mapping) else getattr(data, "fragility", None)
    if isinstance(fragility, FragilityParams):
        return fragility.funding.gap_venues != FundingParams().gap_venues
    funding = fragility.get("funding") if isinstance(fragility, Mapping) else None
    if isinstance(funding, FundingParams):
        return funding.gap_venues != FundingParams().gap_venues
    return isinstance(funding, Mapping) and "gap_venues" in funding


def format_validation_error(err: ValidationError, provenance: check.Provenance | None = None) -> str:
    """One line naming every bad field, where its value came from and what is wrong."""
    prov = provenance or check.Provenance(environ={})
    parts = []
    for e in err.errors():
        loc = tuple(str(p) for p in e["loc"] if not isinstance(p, int)) or ("<root>",)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown setting"
        source = prov.source(loc) if provenance else check.ENV_PREFIX + "__".join(p.upper() for p in loc)
        parts.append(f"{'.'.join(loc)} ({source}): {msg}")
    return "invalid setting " + "; ".join(parts)


def load_settings(
    config_file: str | Path | None = None, *, flags: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Build the Settings or raise ConfigError with a one-line message naming the field and its source.

    ``flags`` maps a dotted setting that an override came from to its command-line flag
    (``{"log_level": "--log-level"}``), so an error names the flag rather than the environment.
    """
    prov = check.Provenance.gather(os.environ, config_file, flags, overrides)
    prov.check_env_json(Settings)
    cls: type[Settings] = Settings
    if prov.config_file is not None:
        cls = type(
            "Settings",
            (Settings,),
            {"model_config": {**Settings.model_config, "toml_file": prov.config_file}},
        )
    try:
        return cls(**overrides)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, prov)) from None
    except SettingsError as err:  # a value pydantic-settings could not decode (check_env_json missed it)
        raise ConfigError(f"invalid setting: {err}") from None


def source_of(settings: Settings, *loc: str) -> str:
    """Where a loaded setting came from (environment variable, TOML file and key, or default)."""
    toml_file = type(settings).model_config.get("toml_file")
    prov = check.Provenance.gather(
        os.environ, toml_file if isinstance(toml_file, str | Path) else None, None, {}
    )
    return prov.source(loc)


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, with every secret replaced by '**********'."""

    def walk(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return "**********" if value.get_secret_value() else ""
        if isinstance(value, BaseModel):
            return {k: walk(getattr(value, k)) for k in type(value).model_fields}
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, str) and "://" in value and "@" in value:
            return redact_url(value)
        return value

    return walk(settings)


def redact_url(url: str) -> str:
    """The URL with any password replaced, for logs and `config show`."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0] if ":" in creds else ""
    return f"{scheme}://{user}:**********@{host}"
