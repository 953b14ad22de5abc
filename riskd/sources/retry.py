"""The one place where ccxt's errors become riskd's, and where requests are retried.

ccxt raises a wide hierarchy; the orchestrator only needs to know whether waiting helps. Everything
under ccxt's ``OperationFailed`` (network errors, timeouts, 5xx, 429/418, bad replies) and plain
parse errors on a malformed body are *temporary*; ccxt's ``ExchangeError`` family (unknown symbol,
bad request, auth) needs a human. Retries use tenacity with exponential back-off and jitter; every
attempt passes the venue's ``VenueGuard`` (riskd.sources.guard), which holds the venue's Retry-After,
ban and circuit breaker. A venue's wait is never shortened: one longer than the request may take fails
it at once. Back-offs end with the cycle's deadline, and cancellation always goes through.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from riskd.errors import CircuitOpen, RateLimited, SourceError, TemporaryError, VenueBanned
from riskd.sources.guard import VenueGuard, utc_clock
from riskd.sources.options import RetryOptions

log = logging.getLogger("riskd.sources")

T = TypeVar("T")

# outcome of one attempt; also the label of the Prometheus counter riskd_exchange_requests_total{outcome}
OK, RATE_LIMITED, TEMPORARY, FATAL = "ok", "rate_limited", "temporary_error", "error"
OUTCOMES = (OK, RATE_LIMITED, TEMPORARY, FATAL)

RequestHook = Callable[[str, str, str], None]
"""Called as hook(venue, endpoint, outcome) once per attempt."""

_RETRY_AFTER = re.compile(r"retry[- ]after\D{0,5}(\d+(?:\.\d+)?)", re.IGNORECASE)
_BANNED_UNTIL = re.compile(
    r"banned until (\d{12,})", re.IGNORECASE
)  # Binance's 418: "IP(...) banned until <ms>"
_HEADER_ATTR = "riskd_retry_after"  # where capture_retry_after leaves the header on ccxt's exception


def capture_retry_after(exchange: Any) -> None:
    """Make ccxt's 418/429 errors carry the venue's Retry-After header (ccxt keeps only the body).

    ccxt hands the headers to ``handle_errors`` only, so that one method is wrapped on the instance:
    the header rides on the exception it raises, and a 418/429 the venue's own handler let through
    (Hyperliquid's plain-text 429) is raised here as ccxt's HTTP mapping would.
    """
    import ccxt  # ccxt is loaded by the client being wrapped; not at the top (settings import this module)

    original = exchange.handle_errors

    def handle_errors(code: int, reason: str, url: str, method: str, headers: Any, *rest: Any) -> Any:
        if code not in (418, 429):
            return original(code, reason, url, method, headers, *rest)
        after = next((str(v) for k, v in (headers or {}).items() if k.lower() == "retry-after"), None)
        try:
            original(code, reason, url, method, headers, *rest)
        except ccxt.BaseError as err:
            setattr(err, _HEADER_ATTR, after)
            raise
        body = rest[0] if rest else ""
        cls = exchange.httpExceptions.get(str(code), ccxt.RateLimitExceeded)
        limited = cls(f"{exchange.id} {method} {url} {code} {reason} {body}")
        setattr(limited, _HEADER_ATTR, after)
        raise limited

    exchange.handle_errors = handle_errors


def parse_retry_after(value: str) -> tuple[float | None, int | None]:
    """A Retry-After header as (seconds, None) or, for an HTTP-date, (None, ms since the epoch)."""
    value = value.strip()
    with contextlib.suppress(ValueError):
        return max(0.0, float(value)), None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None, None
    return None, int(when.timestamp() * 1000)


def translate(err: BaseException, *, venue: str, endpoint: str) -> SourceError:
    """Map any exception raised by a ccxt call to riskd's temporary vs needs-a-human errors.

    Needs a human: the request itself is wrong (unknown symbol, bad parameter, not supported, auth).
    Everything else from the venue is temporary, including ccxt's generic ``ExchangeError``, which it
    also raises for a body cut off mid-transfer, and replies that do not have the documented shape.
    """
    import ccxt  # loaded by the client that raised; imported here so settings need not load ccxt

    text = f"{venue} {endpoint}: {type(err).__name__}: {str(err)[:300]}"
    if isinstance(err, ccxt.DDoSProtection | ccxt.RateLimitExceeded):  # 418 and 429 (siblings in ccxt)
        header = getattr(err, _HEADER_ATTR, None)
        seconds, until_ms = parse_retry_after(header) if header else (None, None)
        if seconds is None and until_ms is None and (m := _RETRY_AFTER.search(str(err))):
            seconds = float(m.group(1))
        if ban := _BANNED_UNTIL.search(str(err)):
            until_ms = max(until_ms or 0, int(ban.group(1)))
        return RateLimited(text, venue=venue, endpoint=endpoint, retry_after=seconds, until_ms=until_ms)
    if isinstance(
        err, ccxt.BadRequest | ccxt.AuthenticationError | ccxt.NotSupported | ccxt.AccountSuspended
    ):
        return SourceError(text, venue=venue, endpoint=endpoint)
    if isinstance(err, ccxt.BaseError | TimeoutError | ConnectionError):
        return TemporaryError(text, venue=venue, endpoint=endpoint)
    if isinstance(err, json.JSONDecodeError | TypeError | KeyError | IndexError | ValueError):
        return TemporaryError(f"{text} (malformed reply)", venue=venue, endpoint=endpoint)
    return SourceError(text, venue=venue, endpoint=endpoint)


def _retryable(err: BaseException) -> bool:
    """Temporary errors, except those that say no request should go out now."""
    return isinstance(err, TemporaryError) and not isinstance(err, VenueBanned | CircuitOpen)


class _Wait:
    """Exponential back-off with jitter, never shorter than the wait a venue asked for."""

    def __init__(self, policy: RetryOptions, guard: VenueGuard) -> None:
        self._exp = wait_exponential_jitter(
            multiplier=policy.initial_backoff_s, max=policy.max_backoff_s, jitter=policy.jitter_s
        )
        self._guard = guard

    def __call__(self, state: RetryCallState) -> float:
        wait = self._exp(state)
        err = state.outcome.exception() if state.outcome else None
        if isinstance(err, RateLimited):
            wait = max(wait, self._guard.wait_asked(err) or 0.0)
        return wait


class _Pointless(stop_base):
    """Stop when the next attempt could not be used: its back-off would end after the cycle's deadline,
    or the venue's circuit is open (the attempt would be refused)."""

    def __init__(self, guard: VenueGuard) -> None:
        self._guard = guard

    def __call__(self, state: RetryCallState) -> bool:
        return self._guard.is_open or state.upcoming_sleep > self._guard.time_left()


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    *,
    venue: str,
    endpoint: str,
    policy: RetryOptions,
    hook: RequestHook | None = None,
    guard: VenueGuard | None = None,
    slot: contextlib.AbstractAsyncContextManager[Any] | None = None,
) -> T:
    """Run one exchange request, translating errors and retrying the temporary ones.

    Each attempt takes ``slot`` (the venue's concurrency limit), then passes ``guard`` (the venue's
    circuit, ban and pause; a private one when None). Raises ``TemporaryError`` when the retries or the
    cycle's time are used up, ``VenueBanned``/``CircuitOpen`` at once when no request may go out,
    ``SourceError`` at once otherwise; a cancellation propagates as it is, from the request or a back-off.
    """
    guard = guard or VenueGuard(venue, policy, utc_clock)
    tries = 0

    def note(outcome: str) -> None:
        if hook is not None:
            hook(venue, endpoint, outcome)

    async def attempt() -> T:
        nonlocal tries
        async with slot or contextlib.nullcontext():
            probe = await guard.admit(endpoint)
            guard.sent(retry=tries > 0)
            tries += 1
            try:
                result = await fn()
            except Exception as err:  # translated right here, the only such place
                mapped = translate(err, venue=venue, endpoint=endpoint)
                if isinstance(mapped, RateLimited):
                    note(RATE_LIMITED)
                else:
                    note(TEMPORARY if isinstance(mapped, TemporaryError) else FATAL)
                raise guard.failed(mapped, err, probe) from err
            except BaseException:  # cancelled in flight: free the probe slot, then let it through
                guard.abandoned(probe)
                raise
        note(OK)
        guard.succeeded()
        return result

    def before_sleep(state: RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.debug(
            "retry %d/%d of %s %s in %.2fs after: %s",
            state.attempt_number,
            policy.attempts - 1,
            venue,
            endpoint,
            wait,
            err,
        )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts) | _Pointless(guard),
        wait=_Wait(policy, guard),
        retry=retry_if_exception(_retryable),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return await retrying(attempt)
    except SourceError:
        guard.tally.failed += 1
        raise
