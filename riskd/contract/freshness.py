"""One verdict on how far a published regime can be trusted, shared by every reader.

``riskd.client`` (bots), the HTTP API (``/regime``, ``/readyz``, ``/healthz``), the status page and the
Telegram ``/status`` all call :func:`judge` and :func:`probe`, so they cannot disagree. Pure: the time
and what the daemon knows come in as arguments.

Freshness is judged by **data quality**, not only by when the snapshot was written: a snapshot computed
from stale data is never fresh, however recent; degraded data is served but flagged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from riskd.contract.models import Snapshot, rfc3339

DEFAULT_MAX_AGE = timedelta(hours=2)
"""An hour that ended longer ago than this is not the current regime (one cycle missed, plus grace)."""

Freshness = Literal["fresh", "degraded", "stale", "unknown"]


@dataclass(frozen=True)
class Verdict:
    """How a snapshot may be used: ``usable`` means "act on it as the current regime"."""

    status: Freshness
    reason: str
    age_seconds: float | None

    @property
    def usable(self) -> bool:
        """Fresh, or degraded (served but flagged); never stale or unknown."""
        return self.status in ("fresh", "degraded")


def judge(snapshot: Snapshot | None, *, now: datetime, max_age: timedelta = DEFAULT_MAX_AGE) -> Verdict:
    """The verdict on ``snapshot`` at ``now``: its age first, then its own data quality."""
    if snapshot is None:
        return Verdict(
            "unknown", "no regime published: riskd is not running or has not published lately", None
        )
    age = (now - snapshot.as_of).total_seconds()
    if age > max_age.total_seconds():
        hours = age / 3600
        return Verdict("stale", f"last state is for {rfc3339(snapshot.as_of)}, {hours:.1f} h old", age)
    dq = snapshot.data_quality
    if dq.status == "stale":
        sources = ", ".join(dq.sources()) or "primary candles"
        return Verdict("stale", f"computed from stale data ({sources})", age)
    if snapshot.state == "unknown":
        sources = ", ".join(dq.sources())
        why = f"too little data: coverage {dq.coverage:.0%}" + (
            f"; {sources} stale or missing" if sources else ""
        )
        return Verdict("unknown", f"riskd could not see this hour ({why})", age)
    if dq.status == "degraded":
        sources = ", ".join(dq.sources()) or "some sources"
        return Verdict("degraded", f"degraded data: {sources} stale or missing", age)
    return Verdict("fresh", "fresh", age)


@dataclass(frozen=True)
class Probe:
    """The process's health (liveness) and readiness, with what explains them."""

    live: bool
    ready: bool
    health: Literal["starting", "ok", "degraded", "failing"]
    verdict: Verdict
    venues_down: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


COMPENSATED = frozenset({"clock"})
"""Faults that make health ``degraded`` but leave readiness alone: riskd works around them, so what it
serves is right (``clock``: the host's clock off the venues'; each cycle waits for the venue's own close)."""


def probe(
    snapshot: Snapshot | None,
    *,
    now: datetime,
    cycle_age_s: float,
    venue_health: Mapping[str, str] | None = None,
    max_age: timedelta = DEFAULT_MAX_AGE,
    max_silence_s: float = 2.5 * 3600,
    services_down: Mapping[str, str] | None = None,
    started: bool = True,
) -> Probe:
    """Liveness: cycles are completing (``cycle_age_s`` since the last one, or since start). Health is
    ``starting`` before the first cycle completed (``started`` False, nothing published yet), ``degraded``
    (still live) when a venue or a service (``services_down``: Redis) is unreachable, or the data is stale
    or blind. Readiness: live, no venue or service down (but those riskd compensates for, ``COMPENSATED``),
    and a usable snapshot — what a load balancer or a k8s readiness probe should route on."""
    verdict = judge(snapshot, now=now, max_age=max_age)
    down = sorted(v for v, h in (venue_health or {}).items() if h == "down")
    live = cycle_age_s <= max_silence_s
    reasons = []
    if not live:
        reasons.append(f"no cycle completed for {cycle_age_s / 3600:.1f} h")
    if down:
        reasons.append("venues unreachable: " + ", ".join(down))
    reasons += [why for _, why in sorted((services_down or {}).items())]
    if not verdict.usable:
        reasons.append(verdict.reason)
    degraded = bool(down) or bool(services_down) or verdict.status in ("stale", "unknown")
    health: Literal["starting", "ok", "degraded", "failing"]
    if not live:
        health = "failing"
    elif not started and snapshot is None:
        health = "starting"
        reasons.insert(0, "starting: no cycle completed yet")
    else:
        health = "degraded" if degraded else "ok"
    blocking = set(services_down or {}) - COMPENSATED
    ready = live and not down and not blocking and verdict.usable
    return Probe(live, ready, health, verdict, down, reasons)
