"""Alert delivery: the policy and the durable Redis outbox (pipeline, outbox), the feed that derives alerts
from the published stream, escalation of unacknowledged critical alerts, and the alert chart. Channels
(Telegram, the console, webhooks) implement :class:`riskd.alerting.pipeline.Channel`."""
