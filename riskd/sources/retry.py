"""The one place where ccxt's errors become riskd's, and where requests are retried.

ccxt raises a wide hierarchy; the orchestrator only needs to know whether waiting helps. Everything
under ccxt's ``OperationFailed`` (network errors, timeouts, 5xx, 429/418, bad replies) and plain
parse errors on a malformed body are *temporary*; ccxt's ``ExchangeError`` family (unknown symbol,
bad request, auth) needs a human. Retries use tenacity with exponential back-off and jitter, and
honour a venue's Retry-After when it sent one.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

import ccxt
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from riskd.errors import RateLimited, SourceError, TemporaryError
from riskd.settings import RetrySettings

log = logging.getLogger("riskd.sources")

T = TypeVar("T")

# outcome of one attempt; also the label of the Prometheus counter riskd_exchange_requests_total{outcome}
OK, RATE_LIMITED, TEMPORARY, FATAL = "ok", "rate_limited", "temporary_error", "error"
OUTCOMES = (OK, RATE_LIMITED, TEMPORARY, FATAL)

RequestHook = Callable[[str, str, str], None]
"""Called as hook(venue, endpoint, outcome) once per attempt."""

_RETRY_AFTER = re.compile(r"retry[- ]after\D{0,5}(\d+(?:\.\d+)?)", re.IGNORECASE)


def translate(err: BaseException, *, venue: str, endpoint: str) -> SourceError:
    """Map any exception raised by a ccxt call to riskd's temporary vs needs-a-human errors.

    Needs a human: the request itself is wrong (unknown symbol, bad parameter, not supported, auth).
    Everything else from the venue is temporary, including ccxt's generic ``ExchangeError``, which it
    also raises for a body cut off mid-transfer, and replies that do not have the documented shape.
    """
    text = f"{venue} {endpoint}: {type(err).__name__}: {str(err)[:300]}"
    if isinstance(err, ccxt.DDoSProtection | ccxt.RateLimitExceeded):  # 418 and 429 (siblings in ccxt)
        m = _RETRY_AFTER.search(str(err))
        return RateLimited(text, venue=venue, endpoint=endpoint, retry_after=float(m.group(1)) if m else None)
    if isinstance(err, _NEEDS_A_HUMAN):
        return SourceError(text, venue=venue, endpoint=endpoint)
    if isinstance(err, ccxt.BaseError | TimeoutError | ConnectionError):
        return TemporaryError(text, venue=venue, endpoint=endpoint)
    if isinstance(err, json.JSONDecodeError | TypeError | KeyError | IndexError | ValueError):
        return TemporaryError(f"{text} (malformed reply)", venue=venue, endpoint=endpoint)
    return SourceError(text, venue=venue, endpoint=endpoint)


_NEEDS_A_HUMAN = (ccxt.BadRequest, ccxt.AuthenticationError, ccxt.NotSupported, ccxt.AccountSuspended)


class _Wait:
    """Exponential back-off with jitter, but never shorter than a venue's Retry-After."""

    def __init__(self, policy: RetrySettings) -> None:
        self._exp = wait_exponential_jitter(
            multiplier=policy.initial_backoff_s, max=policy.max_backoff_s, jitter=policy.jitter_s
        )
        self._cap = max(policy.max_backoff_s, policy.initial_backoff_s)

    def __call__(self, state: RetryCallState) -> float:
        wait = self._exp(state)
        err = state.outcome.exception() if state.outcome else None
        if isinstance(err, RateLimited) and err.retry_after:
            wait = max(wait, min(err.retry_after, self._cap))
        return wait


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    *,
    venue: str,
    endpoint: str,
    policy: RetrySettings,
    hook: RequestHook | None = None,
) -> T:
    """Run one exchange request, translating errors and retrying the temporary ones.

    Raises ``TemporaryError`` when the retries are used up, ``SourceError`` at once otherwise.
    """

    def note(outcome: str) -> None:
        if hook is not None:
            hook(venue, endpoint, outcome)

    async def attempt() -> T:
        try:
            result = await fn()
        except Exception as err:  # translated right here, the only such place
            mapped = translate(err, venue=venue, endpoint=endpoint)
            if isinstance(mapped, RateLimited):
                note(RATE_LIMITED)
            else:
                note(TEMPORARY if isinstance(mapped, TemporaryError) else FATAL)
            raise mapped from err
        note(OK)
        return result

    def before_sleep(state: RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "retry %d/%d of %s %s in %.2fs after: %s",
            state.attempt_number,
            policy.attempts - 1,
            venue,
            endpoint,
            wait,
            err,
        )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=_Wait(policy),
        retry=retry_if_exception_type(TemporaryError),
        before_sleep=before_sleep,
        reraise=True,
    )
    return await retrying(attempt)
