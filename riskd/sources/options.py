"""What an adapter needs of its configuration, as protocols: the adapters never import the settings.

The venue registry is data every layer reads (the settings validate venue names against it, the snapshot
names its gap features), so the venues sit below the configuration; the settings sections
(``riskd.config.VenueSettings``, ``RetrySettings``) satisfy these protocols structurally, and mypy checks it.
"""

from __future__ import annotations

from typing import Protocol


class VenueOptions(Protocol):
    """One venue's connection: base URL override, time-out, concurrency, ccxt's throttle."""

    @property
    def api_url(self) -> str | None: ...
    @property
    def timeout_s(self) -> float: ...
    @property
    def max_concurrency(self) -> int: ...
    @property
    def rate_limit_ms(self) -> int: ...
    @property
    def rate_limit_window_s(self) -> float | None: ...


class RetryOptions(Protocol):
    """Retries of temporary errors, the longest wait a venue may ask for, and the circuit breaker."""

    @property
    def attempts(self) -> int: ...
    @property
    def initial_backoff_s(self) -> float: ...
    @property
    def max_backoff_s(self) -> float: ...
    @property
    def jitter_s(self) -> float: ...
    @property
    def max_wait_s(self) -> float: ...
    @property
    def circuit_failures(self) -> int: ...
    @property
    def circuit_cooldown_s(self) -> float: ...
    @property
    def circuit_max_cooldown_s(self) -> float: ...
