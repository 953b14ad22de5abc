"""riskd's configuration: one Settings object, built once in ``riskd.cli`` and passed down.

Sources, highest priority first: keyword arguments, environment variables (``RISKD_`` prefix, ``__`` between
nested sections, e.g. ``RISKD_REDIS__URL``), an optional TOML file (``--config PATH`` or
``RISKD_CONFIG_FILE``), then the defaults documented on each field. Nothing else in the package reads the
environment. The root is :mod:`.settings`; each group of sections has its module; :mod:`.check` holds the
value checks and where each value came from; :mod:`.load` builds it with one-line errors.
"""

from riskd.config.alerting import AlertMode, AlertSettings, TelegramSettings, WebhookSettings
from riskd.config.base import DEFAULT_UNIVERSE, VENUES
from riskd.config.exchange import (
    BackfillDataset,
    BackfillSettings,
    RetrySettings,
    UniverseSettings,
    VenueSettings,
    VenuesSettings,
)
from riskd.config.load import format_validation_error, load_settings, redact_url, redacted, source_of
from riskd.config.offline import ModelSettings, ValidationSettings
from riskd.config.publishing import MetricsSettings, RedisSettings
from riskd.config.runtime import DaemonSettings, StreamSettings, StreamVenue, TradingSettings
from riskd.config.settings import Settings

__all__ = [
    "DEFAULT_UNIVERSE",
    "VENUES",
    "AlertMode",
    "AlertSettings",
    "BackfillDataset",
    "BackfillSettings",
    "DaemonSettings",
    "MetricsSettings",
    "ModelSettings",
    "RedisSettings",
    "RetrySettings",
    "Settings",
    "StreamSettings",
    "StreamVenue",
    "TelegramSettings",
    "TradingSettings",
    "UniverseSettings",
    "ValidationSettings",
    "VenueSettings",
    "VenuesSettings",
    "WebhookSettings",
    "format_validation_error",
    "load_settings",
    "redact_url",
    "redacted",
    "source_of",
]
