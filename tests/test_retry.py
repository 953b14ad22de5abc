"""ccxt errors become riskd's own in one place; temporary ones are retried with back-off."""

from __future__ import annotations

import logging

import ccxt
import pytest

from riskd.config import RetrySettings
from riskd.errors import RateLimited, SourceError, TemporaryError
from riskd.sources.retry import call_with_retry, parse_retry_after, translate

FAST = RetrySettings(attempts=4, initial_backoff_s=0.001, max_backoff_s=0.01, jitter_s=0.0)


@pytest.mark.parametrize(
    ("err", "kind"),
    [
        (ccxt.RateLimitExceeded("429 Too Many Requests Retry-After: 3"), RateLimited),
        (ccxt.DDoSProtection("418 I'm a teapot"), RateLimited),
        (ccxt.RequestTimeout("timed out"), TemporaryError),
        (ccxt.ExchangeNotAvailable("503"), TemporaryError),
        (ccxt.BadResponse("not json"), TemporaryError),
        (TypeError("string indices must be integers"), TemporaryError),
        (ccxt.BadSymbol("unknown symbol"), SourceError),
        (ccxt.AuthenticationError("bad key"), SourceError),
    ],
)
def test_translation_separates_temporary_from_fatal(err: Exception, kind: type) -> None:
    """Each ccxt error maps to exactly the riskd class that says whether waiting helps."""
    mapped = translate(err, venue="binance", endpoint="klines")
    assert type(mapped) is kind
    assert "binance klines" in str(mapped)


def test_retry_after_is_read_from_the_message() -> None:
    """A 429 that names Retry-After carries it, so the back-off can honour it."""
    mapped = translate(ccxt.RateLimitExceeded("Retry-After: 3"), venue="bybit", endpoint="kline")
    assert isinstance(mapped, RateLimited)
    assert mapped.retry_after == 3.0


@pytest.mark.parametrize(
    ("header", "seconds", "until_ms"),
    [
        ("7", 7.0, None),
        ("0.5", 0.5, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None, 1_445_412_480_000),
        ("soon", None, None),
    ],
)
def test_retry_after_header_is_seconds_or_an_http_date(
    header: str, seconds: float | None, until_ms: int | None
) -> None:
    """Retry-After is either delay-seconds or an HTTP-date (RFC 9110); anything else is ignored."""
    assert parse_retry_after(header) == (seconds, until_ms)


def test_binance_ban_body_names_the_end_of_the_ban() -> None:
    """Binance's 418 "IP banned until <ms>" becomes the moment the ban ends, whatever the header says."""
    err = ccxt.DDoSProtection(
        'binanceusdm 418 I\'m a teapot {"code":-1003,"msg":"Way too many requests; IP(1.2.3.4) banned until '
        '1700000000000. Please use the websocket for live updates to avoid bans."}'
    )
    mapped = translate(err, venue="binance", endpoint="klines")
    assert isinstance(mapped, RateLimited)
    assert (mapped.until_ms, mapped.retry_after) == (1_700_000_000_000, None)


async def test_temporary_errors_are_retried_until_success(caplog: pytest.LogCaptureFixture) -> None:
    """Two timeouts then a reply: the call succeeds, each retry is logged at DEBUG (the venue's summary
    line is the cycle's only INFO) and counted by the hook."""
    calls: list[str] = []
    seen: list[str] = []

    async def flaky() -> str:
        calls.append("x")
        if len(calls) < 3:
            raise ccxt.RequestTimeout("slow")
        return "ok"

    with caplog.at_level(logging.DEBUG, logger="riskd.sources"):
        out = await call_with_retry(
            flaky, venue="binance", endpoint="klines", policy=FAST, hook=lambda v, e, o: seen.append(o)
        )
    assert out == "ok"
    assert len(calls) == 3
    assert seen == ["temporary_error", "temporary_error", "ok"]
    retries = [r for r in caplog.records if "retry" in r.message]
    assert len(retries) == 2
    assert {r.levelno for r in retries} == {logging.DEBUG}


async def test_fatal_errors_are_not_retried() -> None:
    """An unknown symbol fails at once: retrying cannot fix it."""
    calls: list[int] = []

    async def bad() -> None:
        calls.append(1)
        raise ccxt.BadSymbol("nope")

    with pytest.raises(SourceError) as info:
        await call_with_retry(bad, venue="bybit", endpoint="kline", policy=FAST)
    assert not isinstance(info.value, TemporaryError)
    assert calls == [1]


async def test_retries_give_up_after_the_configured_attempts() -> None:
    """A venue that never recovers raises TemporaryError after exactly `attempts` tries."""
    calls: list[int] = []

    async def down() -> None:
        calls.append(1)
        raise ccxt.ExchangeNotAvailable("502")

    with pytest.raises(TemporaryError):
        await call_with_retry(down, venue="hyperliquid", endpoint="info", policy=FAST)
    assert len(calls) == FAST.attempts


@pytest.mark.parametrize(
    ("venue", "window_s", "max_weight"), [("binance", 60, 1200), ("bybit", 5, 250), ("hyperliquid", 60, 1200)]
)
def test_each_venue_bursts_within_its_own_rate_limit_window(
    monkeypatch: pytest.MonkeyPatch, venue: str, window_s: float, max_weight: float
) -> None:
    """ccxt's rolling-window limiter over the venue's own window, at ccxt's per-venue calibration: an
    hour's requests go out as one burst inside the published budget instead of one per rate limit
    (with the leaky bucket a 50-symbol hour waits ~25 s on Hyperliquid alone: the daemon benchmark).
    Overriding another field of the venue keeps its window; 0 brings the leaky bucket back."""
    from riskd.config import load_settings
    from riskd.market.sources import make_source

    monkeypatch.setenv(f"RISKD_VENUES__{venue.upper()}__TIMEOUT_S", "5")
    throttle = make_source(venue, load_settings()).exchange.throttler.config
    assert (throttle["algorithm"], throttle["windowSize"], throttle["maxWeight"]) == (
        "rollingWindow",
        window_s * 1000,
        max_weight,
    )
    leaky = make_source(venue, load_settings(venues={venue: {"rate_limit_window_s": 0}})).exchange.throttler
    assert leaky.config["algorithm"] == "leakyBucket"


async def test_requests_pass_through_the_rolling_window() -> None:
    """Real requests to the fake exchange are counted in the limiter's window, weighted by ccxt's costs."""
    import pandas as pd

    from riskd.config import load_settings
    from riskd.market.sources import make_source
    from riskd.testing.fake_exchange import FakeExchange
    from riskd.testing.synthetic import synthetic_market

    start = pd.Timestamp("2024-03-01", tz="UTC")
    history = synthetic_market(["BTC", "ETH"], start, hours=48, seed=1)
    now = start + pd.Timedelta(hours=47)
    async with FakeExchange(history, now=lambda: now) as fx:
        settings = load_settings(venues={"hyperliquid": {"api_url": fx.base_url}})
        async with make_source("hyperliquid", settings, clock=lambda: now) as source:
            await source.fetch_funding("BTC", start, now)
            await source.fetch_funding("ETH", start, now)
            spent = sum(t["cost"] for t in source.exchange.throttler.timestamps)
    assert spent >= 3 * 10  # markets and two funding pages, ccxt's "info" costs 10 each
    assert spent <= source.exchange.throttler.config["maxWeight"]
