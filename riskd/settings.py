"""riskd's configuration: one Settings object, built once in ``cli.py`` and passed down.

Sources, highest priority first: keyword arguments, environment variables (``RISKD_`` prefix,
``__`` between nested sections, e.g. ``RISKD_REDIS__URL``), an optional TOML file
(``--config PATH`` or ``RISKD_CONFIG_FILE``), then the defaults documented on each field.
Nothing else in the package reads the environment.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from riskd.core.params import FragilityParams
from riskd.errors import ConfigError

DEFAULT_UNIVERSE: tuple[str, ...] = (
    "BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "ADA", "AVAX", "LINK", "DOT",
    "LTC", "UNI", "ATOM", "NEAR", "FIL", "FTM",
)  # fmt: skip
"""The research's universe (RESEARCH.md, Data): BTC plus liquid alts, as base assets."""

Venue = Literal["binance", "bybit", "hyperliquid"]
VENUES: tuple[Venue, ...] = ("binance", "bybit", "hyperliquid")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


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
        "budget. None: the venue's own window (Binance and Hyperliquid 60 s, Bybit 5 s); 0: ccxt's leaky "
        "bucket, one request per rate limit, no burst (a 50-symbol hour then spends ~25 s in pacing).",
    )


class VenuesSettings(_Section):
    """The three venues riskd reads. Binance is the primary (prices, volume, funding)."""

    binance: VenueSettings = Field(default_factory=VenueSettings, description="Binance USDT-M perpetuals.")
    bybit: VenueSettings = Field(default_factory=VenueSettings, description="Bybit linear perpetuals.")
    hyperliquid: VenueSettings = Field(
        default_factory=VenueSettings, description="Hyperliquid perpetuals (USDC-margined)."
    )

    def get(self, venue: str) -> VenueSettings:
        """Settings of one venue by name."""
        return getattr(self, venue)

    def enabled(self) -> list[str]:
        """Names of the enabled venues, in a fixed order."""
        return [v for v in VENUES if self.get(v).enabled]


class RetrySettings(_Section):
    """Retries of temporary exchange errors (timeouts, 5xx, 429, malformed replies)."""

    attempts: int = Field(6, ge=1, le=50, description="Tries per request, the first included.")
    initial_backoff_s: float = Field(0.5, ge=0, description="First back-off in seconds; doubles each retry.")
    max_backoff_s: float = Field(30.0, ge=0, description="Ceiling of one back-off in seconds.")
    jitter_s: float = Field(0.25, ge=0, description="Random extra seconds added to each back-off.")


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
        out = [s.strip().upper() for s in v if s.strip()]
        if not out:
            raise ValueError("must name at least one symbol")
        if len(set(out)) != len(out):
            raise ValueError("contains duplicates")
        return out


class BackfillSettings(_Section):
    """Defaults of ``riskd backfill``."""

    since: datetime = Field(
        datetime(2020, 1, 1, tzinfo=UTC), description="Earliest hour to fetch when --since is not given."
    )
    datasets: list[Literal["ohlcv", "funding", "open_interest"]] = Field(
        default_factory=lambda: ["ohlcv", "funding", "open_interest"],
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


class MetricsSettings(_Section):
    """The Prometheus endpoint (also serves /healthz and /regime)."""

    enabled: bool = Field(True, description="Serve metrics at all.")
    host: str = Field("127.0.0.1", description="Listen address; 0.0.0.0 to expose beyond loopback.")
    port: int = Field(9464, ge=0, le=65535, description="Listen port (0 picks a free one).")


AlertMode = Literal["on", "silent", "off"]


class AlertSettings(_Section):
    """Which alerts are sent and how loudly (silent: delivered without a notification sound)."""

    regime_change: AlertMode = Field("on", description="Regime transitions.")
    cascade_start: AlertMode = Field("on", description="A cascade episode begins.")
    cascade_end: AlertMode = Field("silent", description="A cascade episode ends.")
    data_stale: AlertMode = Field("on", description="Primary data went stale or missing.")
    data_recovered: AlertMode = Field("silent", description="Data is fresh again.")
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
        description="User or chat ids whose commands are honoured; everyone else gets no answer.",
    )
    api_base_url: str | None = Field(
        None, description="Bot API base URL override (tests point it at a loopback fake). None: Telegram's."
    )
    max_messages_per_minute: int = Field(20, ge=1, description="Outgoing rate limit across all chats.")
    retry_interval_s: float = Field(30.0, gt=0, description="How often the outbox retries unsent alerts.")


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
    lease_ttl_s: float = Field(
        30.0, gt=1, description="Leader lease in Redis; a standby replica takes over after it lapses."
    )
    instance_id: str | None = Field(None, description="Replica name in the lease; None: host:pid.")
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
        "return",
        description=(
            "CFI tail risk's crash: BTC's return to the horizon below the threshold (return), its lowest "
            "hourly close within it below the threshold (drawdown), or a cascade event within it (cascade)."
        ),
    )
    crash_horizon_h: int = Field(
        24, ge=1, le=720, description="Hours after the CFI reading a crash may come in."
    )
    crash_threshold: float = Field(
        -0.05, gt=-1, lt=0, description="BTC move that counts as a crash (fraction)."
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
    seed: int = Field(0, ge=0, description="Random seed of every bootstrap (same seed, same report).")


class Settings(BaseSettings):
    """All of riskd's settings. ``riskd config show`` prints the effective values."""

    model_config = SettingsConfigDict(
        env_prefix="RISKD_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
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
    daemon: DaemonSettings = Field(default_factory=DaemonSettings, description="The hourly cycle.")
    validation: ValidationSettings = Field(
        default_factory=ValidationSettings, description="riskd validate (the offline report)."
    )
    fragility: FragilityParams = Field(
        default_factory=FragilityParams,
        description="The fragility core: features, CFI weights, cascade levels, regime (docs/features.md).",
    )

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


def _env_name(loc: tuple[Any, ...]) -> str:
    return "RISKD_" + "__".join(str(p).upper() for p in loc)


def format_validation_error(err: ValidationError) -> str:
    """One line naming every bad field, its environment variable and what is wrong."""
    parts = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not isinstance(p, int)) or ("<root>",)
        field = ".".join(str(p) for p in loc)
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown setting"
        parts.append(f"{field} ({_env_name(loc)}): {msg}")
    return "invalid setting " + "; ".join(parts)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the Settings or raise ConfigError with a one-line message naming the field."""
    path = config_file or os.environ.get("RISKD_CONFIG_FILE")
    cls: type[Settings] = Settings
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"invalid setting config_file (RISKD_CONFIG_FILE): no such file: {p}")
        cls = type("Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": p}})
    try:
        return cls(**overrides)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None
    except ValueError as err:  # e.g. TOML that does not parse
        raise ConfigError(f"invalid setting config_file ({path}): {err}") from None


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
