"""What riskd promises readers: the payload models, the Redis names, the one tolerant decoder, the shipped
schemas, the freshness verdict, the snapshot mapping from the core's rows, the alerts an hour raises and
the trading state (docs/redis.md). Writers are strict; every reader decodes through :mod:`.codec`."""
