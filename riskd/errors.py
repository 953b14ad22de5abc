"""riskd's own exception hierarchy.

Library errors (ccxt, redis, telegram) are translated into these at the adapter boundary, so the
orchestrator decides on one question only: retry later, or stop and ask a human.
"""

from __future__ import annotations


class RiskdError(Exception):
    """Base of every error riskd raises on purpose."""


class ConfigError(RiskdError):
    """Bad configuration or arguments: fatal, the message names the field."""


class DataError(RiskdError):
    """Input data that cannot be used as it is (bad file, wrong columns): names what is wrong."""


class SourceError(RiskdError):
    """An exchange request failed in a way that retrying will not fix (needs a human)."""

    def __init__(self, message: str, *, venue: str = "", endpoint: str = "") -> None:
        super().__init__(message)
        self.venue = venue
        self.endpoint = endpoint


class TemporaryError(SourceError):
    """An exchange request failed in a way that a later retry may fix (timeouts, 5xx, bad JSON)."""


class RateLimited(TemporaryError):
    """The venue asked us to slow down (HTTP 429/418); ``retry_after`` in seconds when it said."""

    def __init__(
        self, message: str, *, venue: str = "", endpoint: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message, venue=venue, endpoint=endpoint)
        self.retry_after = retry_after


class SinkError(RiskdError):
    """A publishing sink (Redis, metrics, Telegram) failed; the cycle goes on without it."""
