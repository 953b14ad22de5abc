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
    """The venue asked us to slow down (HTTP 429/418).

    ``retry_after``: seconds it asked us to wait (Retry-After in seconds); ``until_ms``: the moment it
    named (an HTTP-date Retry-After, Binance's "IP banned until <ms>"), on the venue's clock.
    """

    def __init__(
        self,
        message: str,
        *,
        venue: str = "",
        endpoint: str = "",
        retry_after: float | None = None,
        until_ms: int | None = None,
    ) -> None:
        super().__init__(message, venue=venue, endpoint=endpoint)
        self.retry_after = retry_after
        self.until_ms = until_ms


class VenueBanned(RateLimited):
    """The venue asked for a wait longer than this request may take: it fails now, not retried.

    No request goes to the venue until the wait (``retry_after`` seconds from when it was raised) is
    over, so a ban is never extended by retrying into it.
    """


class CircuitOpen(TemporaryError):
    """The venue failed too often in a row: requests fail at once until its next probe is due.

    No request was sent; ``reason`` is the failure that opened the circuit.
    """

    def __init__(self, message: str, *, venue: str = "", endpoint: str = "", reason: str = "") -> None:
        super().__init__(message, venue=venue, endpoint=endpoint)
        self.reason = reason


class SinkError(RiskdError):
    """A publishing sink (Redis, metrics, Telegram) failed; the cycle goes on without it."""


class Unreachable(RiskdError):
    """A service riskd needs (Redis) did not answer at start: the one-shot commands stop with
    :data:`EXIT_UNREACHABLE`; the daemon runs on degraded and says so."""


EXIT_FAILED = 1
"""The work failed (a backfill range could not be fetched, a validation had no data)."""
EXIT_CONFIG = 2
"""Bad settings or arguments: one line names the field and its source."""
EXIT_BLIND = 3
"""``riskd once`` published a snapshot that is not usable: its state is unknown or its data stale."""
EXIT_UNREACHABLE = 4
"""Redis did not answer at the start of a one-shot command (the line names the URL, password redacted)."""
