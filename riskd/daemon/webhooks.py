"""The webhook receivers, wired from ``webhook.*``: the snapshot sink and one alert pipeline per receiver
(so a failing receiver holds no other's alerts), and the outbox of riskd before per-receiver outboxes,
still drained. Called by :func:`riskd.daemon.wiring.runtime` only."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from riskd.config import Settings


def webhooks(
    settings: Settings, client: aioredis.Redis, counting: dict[str, Any]
) -> tuple[list[Any], list[Any]]:
    """The webhook snapshot sink and one alert pipeline per receiver, when ``webhook.urls`` is set."""
    hooks = settings.webhook
    if not hooks.urls or hooks.secret is None:
        return [], []
    from riskd.alerting.pipeline import AlertPipeline
    from riskd.sinks.webhook import WebhookChannel, WebhookSink, url_id

    urls = [str(u) for u in hooks.urls]
    secret = hooks.secret.get_secret_value().encode()
    sink = WebhookSink(
        urls,
        secret,
        timeout_s=hooks.timeout_s,
        attempts=hooks.attempts,
        initial_backoff_s=hooks.initial_backoff_s,
    )
    pipelines = [  # one outbox and one worker per receiver: a failing one holds no other's alerts
        AlertPipeline.from_settings(
            client,
            WebhookChannel([url], secret, timeout_s=hooks.timeout_s),
            settings,
            key_prefix=f"{settings.redis.key_prefix}:webhook:{url_id(url)}",
            **counting,
        )
        for url in urls
    ]
    return [sink], pipelines


def legacy_webhook_outbox(settings: Settings, client: aioredis.Redis, counting: dict[str, Any]) -> list[Any]:
    """The one webhook outbox of riskd before per-receiver outboxes (``<prefix>:webhook``): delivered from,
    never submitted to, so alerts queued there before an upgrade still go out once."""
    hooks = settings.webhook
    if not hooks.urls or hooks.secret is None:
        return []
    from riskd.alerting.pipeline import AlertPipeline
    from riskd.sinks.webhook import WebhookChannel

    urls = [str(u) for u in hooks.urls]
    secret = hooks.secret.get_secret_value().encode()
    channel = WebhookChannel(urls, secret, timeout_s=hooks.timeout_s, by_id=False)
    prefix = f"{settings.redis.key_prefix}:webhook"
    return [AlertPipeline.from_settings(client, channel, settings, key_prefix=prefix, **counting)]
