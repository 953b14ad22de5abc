"""What other trading bots import: read the current regime from Redis, safely.

    from riskd.client import read_regime
    reading = read_regime(redis.Redis.from_url(url))
    size = base_size * reading.risk_multiplier      # 0.5 (configurable) when unknown or stale
    if reading.ok: ...                              # fresh state; reading.snapshot has everything

Never an old state as current: a key older than ``max_age`` (or gone, because the daemon died and
its expiry ran out) comes back as ``status="stale"``/``"unknown"`` with ``snapshot=None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from riskd.models import SCHEMA_VERSION, Snapshot

DEFAULT_PREFIX = "riskd:v1"
DEFAULT_MAX_AGE = timedelta(hours=2)


@dataclass(frozen=True)
class RegimeReading:
    """The result of one read: the snapshot only when it is fresh and well-formed."""

    status: Literal["ok", "stale", "unknown"]
    snapshot: Snapshot | None
    reason: str
    age_seconds: float | None
    fallback_multiplier: float

    @property
    def ok(self) -> bool:
        """True when ``snapshot`` is the current regime."""
        return self.status == "ok"

    @property
    def state(self) -> str:
        """The regime state, or ``unknown`` when there is no fresh one."""
        return self.snapshot.state if self.snapshot is not None else "unknown"

    @property
    def risk_multiplier(self) -> float:
        """The snapshot's multiplier when fresh, else the caller's fallback."""
        return self.snapshot.risk_multiplier if self.snapshot is not None else self.fallback_multiplier


def interpret(
    raw: bytes | str | None,
    *,
    now: datetime | None = None,
    max_age: timedelta = DEFAULT_MAX_AGE,
    fallback_multiplier: float = 0.5,
) -> RegimeReading:
    """Turn the key's raw value into a reading (pure; both read helpers use it)."""

    def bad(status: Literal["stale", "unknown"], reason: str, age: float | None = None) -> RegimeReading:
        return RegimeReading(status, None, reason, age, fallback_multiplier)

    if raw is None:
        return bad("unknown", "no regime key: riskd is not running or has not published for a while")
    try:
        snap = Snapshot.model_validate_json(raw)
    except ValidationError as err:
        return bad(
            "unknown", f"regime key is not a valid v{SCHEMA_VERSION} snapshot: {err.error_count()} error(s)"
        )
    if snap.schema_version != SCHEMA_VERSION:
        return bad("unknown", f"schema_version {snap.schema_version}, this client reads {SCHEMA_VERSION}")
    now = now or datetime.now(UTC)
    age = (now - snap.as_of).total_seconds()
    if age > max_age.total_seconds():
        return bad("stale", f"last state is for {snap.as_of.isoformat()}, {age / 3600:.1f} h old", age)
    if snap.state == "unknown":
        return bad("unknown", "riskd published an unknown state (no data)", age)
    return RegimeReading("ok", snap, "fresh", age, fallback_multiplier)


def read_regime(
    redis_client: Any,
    *,
    prefix: str = DEFAULT_PREFIX,
    now: datetime | None = None,
    max_age: timedelta = DEFAULT_MAX_AGE,
    fallback_multiplier: float = 0.5,
) -> RegimeReading:
    """Read ``<prefix>:regime`` with a synchronous ``redis.Redis``; never raises for bad content.

    A connection error is reported as ``unknown`` too: a bot must not trade on a regime it cannot see.
    """
    try:
        raw = redis_client.get(f"{prefix}:regime")
    except Exception as err:  # any client error means: we do not know the regime
        return RegimeReading("unknown", None, f"redis error: {err}", None, fallback_multiplier)
    return interpret(raw, now=now, max_age=max_age, fallback_multiplier=fallback_multiplier)


async def aread_regime(
    redis_client: Any,
    *,
    prefix: str = DEFAULT_PREFIX,
    now: datetime | None = None,
    max_age: timedelta = DEFAULT_MAX_AGE,
    fallback_multiplier: float = 0.5,
) -> RegimeReading:
    """The same as ``read_regime`` for ``redis.asyncio.Redis``."""
    try:
        raw = await redis_client.get(f"{prefix}:regime")
    except Exception as err:  # any client error means: we do not know the regime
        return RegimeReading("unknown", None, f"redis error: {err}", None, fallback_multiplier)
    return interpret(raw, now=now, max_age=max_age, fallback_multiplier=fallback_multiplier)
