"""What other trading bots import: read the current regime from Redis, safely.

    from riskd.client import read_regime
    reading = read_regime(redis.Redis.from_url(url))
    size = base_size * reading.risk_multiplier      # 0.5 (configurable) when unknown or stale
    if reading.ok: ...                              # usable state; reading.snapshot has everything
    if reading.degraded: ...                        # usable, but some sources were stale or missing
    if reading.trading_state == "halted": ...       # active / reducing / halted; the fail-safe when blind

Never an old state as current: a key older than ``max_age`` (or gone, because the daemon died and
its expiry ran out), or one computed from stale data, comes back as ``status="stale"``/``"unknown"``
with ``snapshot=None``. The verdict is ``riskd.contract.freshness.judge``, the same one the HTTP API, the status
page and the Telegram bot use. Fields added by a newer v1 riskd are ignored (``riskd.contract.models.read_snapshot``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from riskd.contract.codec import read_snapshot
from riskd.contract.freshness import DEFAULT_MAX_AGE, Freshness, judge
from riskd.contract.keys import Keys
from riskd.contract.models import SCHEMA_VERSION, Snapshot
from riskd.contract.trading import DEFAULT_TABLE, TradingState

DEFAULT_PREFIX = "riskd:v1"
__all__ = ["DEFAULT_MAX_AGE", "DEFAULT_PREFIX", "RegimeReading", "aread_regime", "interpret", "read_regime"]


@dataclass(frozen=True)
class RegimeReading:
    """The result of one read: the snapshot only when it is fresh and well-formed."""

    status: Literal["ok", "stale", "unknown"]
    snapshot: Snapshot | None
    reason: str
    age_seconds: float | None
    fallback_multiplier: float
    freshness: Freshness = "unknown"
    fail_safe: TradingState = DEFAULT_TABLE.fail_safe

    @property
    def ok(self) -> bool:
        """True when ``snapshot`` is the current regime (possibly degraded: see ``degraded``)."""
        return self.status == "ok"

    @property
    def degraded(self) -> bool:
        """Usable, but computed with some sources stale or missing: lower your trust."""
        return self.freshness == "degraded"

    @property
    def state(self) -> str:
        """The regime state, or ``unknown`` when there is no fresh one."""
        return self.snapshot.state if self.snapshot is not None else "unknown"

    @property
    def risk_multiplier(self) -> float:
        """The snapshot's multiplier when fresh, else the caller's fallback."""
        return self.snapshot.risk_multiplier if self.snapshot is not None else self.fallback_multiplier

    @property
    def trading_state(self) -> TradingState:
        """The snapshot's ``trading_state`` when fresh, else the fail-safe (``halted`` unless told): the
        table's first row (``riskd.contract.trading``) applied at read time, when age is known."""
        return self.snapshot.trading_state if self.snapshot is not None else self.fail_safe


def interpret(
    raw: bytes | str | None,
    *,
    now: datetime | None = None,
    max_age: timedelta = DEFAULT_MAX_AGE,
    fallback_multiplier: float = 0.5,
    fail_safe: TradingState = DEFAULT_TABLE.fail_safe,
) -> RegimeReading:
    """Turn the key's raw value into a reading (pure; both read helpers use it)."""

    def bad(status: Literal["stale", "unknown"], reason: str) -> RegimeReading:
        return RegimeReading(status, None, reason, None, fallback_multiplier, status, fail_safe)

    if raw is None:
        return bad("unknown", "no regime key: riskd is not running or has not published for a while")
    try:
        data = json.loads(raw)
    except ValueError:
        return bad("unknown", "regime key is not JSON")
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != SCHEMA_VERSION:
        return bad("unknown", f"schema_version {version}, this client reads {SCHEMA_VERSION}")
    try:
        snap = read_snapshot(data)
    except ValidationError as err:
        return bad(
            "unknown", f"regime key is not a valid v{SCHEMA_VERSION} snapshot: {err.error_count()} error(s)"
        )
    verdict = judge(snap, now=now or datetime.now(UTC), max_age=max_age)
    if not verdict.usable:
        status: Literal["stale", "unknown"] = "stale" if verdict.status == "stale" else "unknown"
        return RegimeReading(
            status, None, verdict.reason, verdict.age_seconds, fallback_multiplier, verdict.status, fail_safe
        )
    return RegimeReading(
        "ok", snap, verdict.reason, verdict.age_seconds, fallback_multiplier, verdict.status, fail_safe
    )


def read_regime(
    redis_client: Any,
    *,
    prefix: str = DEFAULT_PREFIX,
    now: datetime | None = None,
    max_age: timedelta = DEFAULT_MAX_AGE,
    fallback_multiplier: float = 0.5,
    fail_safe: TradingState = DEFAULT_TABLE.fail_safe,
) -> RegimeReading:
    """Read ``<prefix>:regime`` with a synchronous ``redis.Redis``; never raises for bad content.

    A connection error is reported as ``unknown`` too: a bot must not trade on a regime it cannot see.
    """
    try:
        raw = redis_client.get(Keys(prefix).regime)
    except Exception as err:  # any client error means: we do not know the regime
        return RegimeReading(
            "unknown", None, f"redis error: {err}", None, fallback_multiplier, "unknown", fail_safe
        )
    return interpret(
        raw, now=now, max_age=max_age, fallback_multiplier=fallback_multiplier, fail_safe=fail_safe
    )


async def aread_regime(
    redis_client: Any,
    *,
    prefix: str = DEFAULT_PREFIX,
    now: datetime | None = None,
    max_age: timedelta = DEFAULT_MAX_AGE,
    fallback_multiplier: float = 0.5,
    fail_safe: TradingState = DEFAULT_TABLE.fail_safe,
) -> RegimeReading:
    """The same as ``read_regime`` for ``redis.asyncio.Redis``."""
    try:
        raw = await redis_client.get(Keys(prefix).regime)
    except Exception as err:  # any client error means: we do not know the regime
        return RegimeReading(
            "unknown", None, f"redis error: {err}", None, fallback_multiplier, "unknown", fail_safe
        )
    return interpret(
        raw, now=now, max_age=max_age, fallback_multiplier=fallback_multiplier, fail_safe=fail_safe
    )
