"""Sections about where riskd publishes: Redis and the HTTP server (metrics, API, status page)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from riskd.config import check
from riskd.config.base import _Section


class RedisSettings(_Section):
    """Where the regime is published. AUTH and TLS come from the URL (``rediss://user:pass@host``)."""

    url: SecretStr | None = Field(
        None,
        description="Redis URL: redis://, rediss:// (TLS), unix://, or redis+sentinel://[:password@]"
        "h1:26379,h2:26379/SERVICE[/db][?sentinel_password=…] for a Sentinel-managed primary. None: use "
        "redis://127.0.0.1:6379/0 if it answers, else start an embedded redis-server on loopback with "
        "persistence in data_dir. Secret: it may carry a password.",
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
