"""Sections about reaching the venues: one per registered venue, retries, the universe, backfills."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import Field, ValidationInfo, create_model, field_validator

from riskd.config import check
from riskd.config.base import DEFAULT_UNIVERSE, VENUE_SPECS, VENUES, _Section


class VenueSettings(_Section):
    """One exchange venue reached through ccxt."""

    enabled: bool = Field(True, description="Fetch from this venue at all.")
    api_url: str | None = Field(
        None,
        description="Override the venue's REST base URL (e.g. http://127.0.0.1:8900 for the fake exchange). "
        "None uses ccxt's production URLs.",
    )
    timeout_s: float = Field(10.0, gt=0, description="Per-request timeout in seconds.")
    max_concurrency: int = Field(
        8, ge=1, le=64, description="Requests in flight at once against this venue (bounded concurrency)."
    )
    rate_limit_ms: int = Field(
        0,
        ge=0,
        description="Milliseconds per unit of request weight in ccxt's throttler; 0 keeps ccxt's own "
        "per-venue calibration.",
    )
    rate_limit_window_s: float | None = Field(
        None,
        ge=0,
        le=3600,
        description="ccxt's rolling-window limiter: at most window / rate limit weight units in any window "
        "of this many seconds, so an hour's requests go out as one burst inside the venue's published "
        "budget. None: the venue's own window (Binance and Hyperliquid 60 s, Bybit 5 s, OKX 2 s); 0: ccxt's "
        "leaky bucket, one request per rate limit, no burst (a 50-symbol hour then spends ~25 s in pacing).",
    )

    check_api_url = field_validator("api_url")(check.http_url)


class _Venues(_Section):
    """One section per registered venue (riskd/sources/registry.py). Binance is the primary (prices,
    volume, funding); venues registered as opt-in (OKX) are off until ``venues.<name>.enabled``."""

    def get(self, venue: str) -> VenueSettings:
        """Settings of one venue by name."""
        return getattr(self, venue)

    def enabled(self) -> list[str]:
        """Names of the enabled venues, in the registry's order."""
        return [v for v in VENUES if self.get(v).enabled]


def _venues_model() -> type[_Venues]:
    """The venues section, built from the registry: a field per venue, default on or off as it says."""
    fields: dict[str, Any] = {
        name: (
            VenueSettings,
            Field(
                default_factory=lambda on=spec.enabled_by_default: VenueSettings(enabled=on),
                description=spec.title,
            ),
        )
        for name, spec in VENUE_SPECS.items()
    }
    return create_model("VenuesSettings", __base__=_Venues, __doc__=_Venues.__doc__, **fields)


if TYPE_CHECKING:
    VenuesSettings = _Venues
else:
    VenuesSettings = _venues_model()


class RetrySettings(_Section):
    """Retries of temporary exchange errors (timeouts, 5xx, 429, malformed replies)."""

    attempts: int = Field(6, ge=1, le=50, description="Tries per request, the first included.")
    initial_backoff_s: float = Field(0.5, ge=0, description="First back-off in seconds; doubles each retry.")
    max_backoff_s: float = Field(30.0, ge=0, description="Ceiling of one back-off in seconds.")
    jitter_s: float = Field(0.25, ge=0, description="Random extra seconds added to each back-off.")
    max_wait_s: float = Field(
        120.0,
        ge=0,
        description="Longest wait a venue may ask for (429 Retry-After, Binance's 418 ban) that a request sits "
        "out; a longer one (or one past the cycle's fetch deadline) fails the request at once and no request "
        "goes to that venue until the wait is over. The venue's wait is never shortened.",
    )
    circuit_failures: int = Field(
        5,
        ge=1,
        le=1000,
        description="Consecutive failed requests (timeouts, 5xx, refused connections, bad replies) that open a "
        "venue's circuit: its requests then fail at once until the cool-down ends and one probe is let through.",
    )
    circuit_cooldown_s: float = Field(
        30.0, gt=0, description="Seconds a venue's circuit stays open before the first probe request."
    )
    circuit_max_cooldown_s: float = Field(
        600.0,
        gt=0,
        description="Ceiling of the cool-down, which doubles each time a probe fails (a venue down for hours "
        "is probed every this many seconds).",
    )

    @field_validator("circuit_max_cooldown_s")
    @classmethod
    def _ceiling_above_start(cls, v: float, info: ValidationInfo) -> float:
        start = info.data.get("circuit_cooldown_s")
        if start is not None and v < start:
            raise ValueError(f"must be at least circuit_cooldown_s ({start})")
        return v


class UniverseSettings(_Section):
    """Which symbols riskd follows."""

    symbols: list[str] = Field(
        default_factory=lambda: list(DEFAULT_UNIVERSE),
        description="Base assets followed (BTC first). Venue symbols are derived: BTC -> BTC/USDT:USDT "
        "(Binance, Bybit), BTC/USDC:USDC (Hyperliquid).",
    )
    renames: dict[str, str] = Field(
        default_factory=lambda: {"FTM": "S"},
        description="Old base asset -> new one after a rebrand; history of both is kept under the old name.",
    )

    @field_validator("symbols")
    @classmethod
    def _upper_unique(cls, v: list[str]) -> list[str]:
        out = [check.symbol_name(s) for s in v if s.strip()]
        if not out:
            raise ValueError("must name at least one symbol")
        if len(set(out)) != len(out):
            raise ValueError("contains duplicates")
        return out

    @field_validator("renames")
    @classmethod
    def _rename_names(cls, v: dict[str, str]) -> dict[str, str]:
        return {check.symbol_name(old): check.symbol_name(new) for old, new in v.items()}


BackfillDataset = Literal["ohlcv", "funding", "open_interest"]


class BackfillSettings(_Section):
    """Defaults of ``riskd backfill``."""

    since: datetime = Field(
        datetime(2020, 1, 1, tzinfo=UTC), description="Earliest hour to fetch when --since is not given."
    )
    datasets: list[BackfillDataset] = Field(
        default_factory=lambda: list(get_args(BackfillDataset)),
        description="Datasets fetched by a backfill.",
    )
    chunk_hours: int = Field(
        24 * 30,
        ge=24,
        description="Hours written to the store per chunk; a restart resumes from the last whole chunk.",
    )

    @field_validator("since")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v if v.tzinfo else v.replace(tzinfo=UTC)
