"""riskd's configuration: one Settings object, built once in ``cli.py`` and passed down.

Sources, highest priority first: keyword arguments, environment variables (``RISKD_`` prefix,
``__`` between nested sections, e.g. ``RISKD_REDIS__URL``), an optional TOML file
(``--config PATH`` or ``RISKD_CONFIG_FILE``), then the defaults documented on each field.
Nothing else in the package reads the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from riskd.config import check
from riskd.config.alerting import AlertSettings, TelegramSettings, WebhookSettings
from riskd.config.exchange import BackfillSettings, RetrySettings, UniverseSettings, VenuesSettings
from riskd.config.fragility import _Fragility
from riskd.config.offline import ModelSettings, ValidationSettings
from riskd.config.publishing import MetricsSettings, RedisSettings
from riskd.config.runtime import DaemonSettings, StreamSettings, TradingSettings
from riskd.core.params import FragilityParams, FundingParams
from riskd.sources.registry import gap_venues


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
