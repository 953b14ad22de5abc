"""Sections about alerts: which are sent and how, Telegram, signed webhooks."""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator

from riskd.config import check
from riskd.config.base import _Section

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
    max_copies: int = Field(
        2,
        ge=1,
        le=10,
        description="Most copies of one alert sent to one chat when no send is confirmed (a timeout after "
        'the request was written): the first, then after retry_interval_s one marked "possibly repeated"; '
        "past it the alert is logged and counted as unconfirmed, never sent again.",
    )


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
    connect_timeout_s: float = Field(5.0, gt=0, le=120, description="Bot API connect time-out, seconds.")
    read_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Bot API read time-out, seconds: a send unanswered this long has an unknown outcome "
        "(see alerts.max_copies).",
    )

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
