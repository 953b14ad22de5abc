"""Building Settings (one line naming the field and its source on any error), where a setting came from,
and the effective settings with every secret redacted."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings.exceptions import SettingsError

from riskd.config import check
from riskd.config.settings import Settings
from riskd.errors import ConfigError


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
    """The URL with any password replaced (a Sentinel URL's ``sentinel_password`` too), for logs and
    `config show`."""
    url = re.sub(r"(sentinel_password=)[^&]*", r"\1**********", url)
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0] if ":" in creds else ""
    return f"{scheme}://{user}:**********@{host}"
