"""Alert derivation (pure) and the delivery policy against a real Redis, through the console channel."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from riskd.alerting.channel import format_message
from riskd.alerting.pipeline import AlertPipeline
from riskd.config import AlertSettings
from riskd.contract.alerts import derive_alerts, format_late, severity_for_transition
from riskd.contract.models import STATE_CODES, Alert, DataQuality, Snapshot
from riskd.daemon.embedded import RedisServer
from riskd.telegram.channel import ConsoleChannel

H0 = datetime(2021, 5, 19, 13, tzinfo=UTC)


def snap(
    hour: int = 0,
    state: str = "calm",
    *,
    episode: str | None = None,
    dq: str = "ok",
    live: bool = True,
    **kw: Any,
) -> Snapshot:
    """A snapshot ``hour`` hours after H0 with plausible figures."""
    as_of = H0 + timedelta(hours=hour)
    base: dict[str, Any] = {
        "as_of": as_of,
        "computed_at": as_of + timedelta(seconds=20),
        "live": live,
        "state": state,
        "state_code": STATE_CODES[state],
        "risk_multiplier": 0.25 if state == "cascade" else 1.0,
        "reasons": ["cfi above p95", "btc 1h return below -5%"],
        "cfi": 2.41,
        "cfi_percentile": 0.97,
        "cascade_level": "strict" if episode else "none",
        "cascade_level_code": 4 if episode else 0,
        "episode_id": episode,
        "features": {"btc_return_1h": -0.0842, "vol_ratio": 4.2, "funding_z": 2.13},
        "data_quality": DataQuality(
            status=dq,
            coverage=1.0 if dq == "ok" else 0.4,
            stale_sources=["binance:ohlcv"] if dq == "stale" else [],
        ),
    }
    return Snapshot(**{**base, **kw})


def live_now(s: Snapshot) -> datetime:
    """A clock reading shortly after the hour closed (a live cycle)."""
    return s.as_of + timedelta(seconds=25)


@pytest.mark.parametrize(
    ("src", "dst", "severity"),
    [
        ("calm", "elevated", "warning"),
        ("elevated", "fragile", "critical"),
        ("fragile", "cascade", "critical"),
        ("calm", "cascade", "critical"),
        ("cascade", "fragile", "warning"),
        ("cascade", "recovery", "info"),
        ("fragile", "elevated", "info"),
        ("recovery", "calm", "info"),
    ],
)
def test_regime_transition_severity_follows_target_state(src: str, dst: str, severity: str) -> None:
    """A transition raises one regime_change whose severity depends on where it goes."""
    prev, cur = snap(0, src), snap(1, dst)
    alerts = [a for a in derive_alerts(prev, cur, now=live_now(cur)) if a.kind == "regime_change"]
    assert [a.severity for a in alerts] == [severity]
    assert alerts[0].figures["from"] == src
    assert alerts[0].figures["to"] == dst
    assert severity_for_transition(src, dst) == severity


def test_unchanged_state_raises_nothing() -> None:
    """Two calm hours in a row are not news."""
    assert derive_alerts(snap(0), snap(1), now=live_now(snap(1))) == []


def test_first_start_reports_only_danger() -> None:
    """With no previous state, calm is silent but a running cascade is reported."""
    assert derive_alerts(None, snap(0, "calm"), now=live_now(snap(0))) == []
    kinds = {a.kind for a in derive_alerts(None, snap(0, "cascade", episode="E1"), now=live_now(snap(0)))}
    assert kinds == {"regime_change", "cascade_start"}


def test_cascade_episodes_start_and_end_by_episode_id() -> None:
    """An episode id appearing starts a cascade, a new id ends the old one and starts the next."""
    start = derive_alerts(snap(0), snap(1, episode="E1"), now=live_now(snap(1)))
    assert [(a.kind, a.episode_id, a.severity) for a in start] == [("cascade_start", "E1", "critical")]
    switch = derive_alerts(snap(1, episode="E1"), snap(2, episode="E2"), now=live_now(snap(2)))
    assert [(a.kind, a.episode_id) for a in switch] == [("cascade_end", "E1"), ("cascade_start", "E2")]
    end = derive_alerts(snap(2, episode="E2"), snap(3), now=live_now(snap(3)))
    assert [(a.kind, a.severity) for a in end] == [("cascade_end", "info")]


def test_weak_cascade_is_a_warning() -> None:
    """A loose single-asset cascade starts with severity warning, not critical."""
    cur = snap(1, episode="E9", cascade_level="loose", cascade_level_code=2)
    assert [a.severity for a in derive_alerts(snap(0), cur, now=live_now(cur))] == ["warning"]


def test_data_stale_and_recovered() -> None:
    """Primary data going stale warns; coming back is info; staying stale is quiet."""
    stale = derive_alerts(snap(0), snap(1, dq="stale"), now=live_now(snap(1)))
    assert [(a.kind, a.severity) for a in stale] == [("data_stale", "warning")]
    assert "binance:ohlcv" in stale[0].body
    assert derive_alerts(snap(1, dq="stale"), snap(2, dq="stale"), now=live_now(snap(2))) == []
    back = derive_alerts(snap(2, dq="stale"), snap(3), now=live_now(snap(3)))
    assert [(a.kind, a.severity) for a in back] == [("data_recovered", "info")]


def test_alert_text_carries_the_figures_that_fired() -> None:
    """CFI, its percentile, BTC 1h return, vol ratio, funding z and the reasons are in the body."""
    (alert,) = derive_alerts(snap(0, "fragile"), snap(1, "cascade"), now=live_now(snap(1)))
    for part in ("CFI 2.41 (p97)", "BTC 1h -8.4%", "vol ratio 4.2", "funding z +2.1", "cfi above p95"):
        assert part in alert.body
    assert alert.figures["cfi_percentile"] == 0.97


def test_late_alert_says_how_late_and_live_one_does_not() -> None:
    """Catch-up 5 h after the hour is labelled [LATE by 5 h]; a live alert carries no label."""
    prev, cur = snap(0, "calm"), snap(1, "cascade", live=False)
    (late,) = [a for a in derive_alerts(prev, cur, now=cur.as_of + timedelta(hours=5, minutes=3))]
    assert late.title.startswith("[LATE by 5 h]")
    assert "5 h ago" in late.body
    assert late.late_by_seconds == pytest.approx(5 * 3600 + 180)
    (live,) = derive_alerts(prev, snap(1, "cascade"), now=live_now(cur))
    assert "LATE" not in live.title
    assert live.late_by_seconds == pytest.approx(25)


@pytest.mark.parametrize(
    ("seconds", "text"), [(59, "0 min"), (45 * 60, "45 min"), (5 * 3600 + 59, "5 h"), (51 * 3600, "2 d 3 h")]
)
def test_format_late(seconds: float, text: str) -> None:
    """Lateness reads in minutes, hours, then days and hours."""
    assert format_late(seconds) == text


def test_fingerprint_is_deterministic_per_event() -> None:
    """The same step derived twice gives the same fingerprints; another hour gives others."""
    a = derive_alerts(snap(0), snap(1, "cascade", episode="E1"), now=live_now(snap(1)))
    b = derive_alerts(snap(0), snap(1, "cascade", episode="E1"), now=live_now(snap(1)) + timedelta(hours=3))
    c = derive_alerts(snap(1), snap(2, "cascade", episode="E1"), now=live_now(snap(2)))
    assert [x.fingerprint for x in a] == [x.fingerprint for x in b]
    assert not {x.fingerprint for x in a} & {x.fingerprint for x in c}


def test_delivery_long_after_the_hour_is_flagged_delayed() -> None:
    """A live alert that waited 3 h in the outbox says it is delayed instead of posing as live."""
    (alert,) = derive_alerts(snap(0, "fragile"), snap(1, "cascade"), now=live_now(snap(1)))
    assert format_message(alert, now=alert.as_of + timedelta(hours=3)).startswith("[DELAYED: delivered 3 h")
    assert "DELAYED" not in format_message(alert, now=alert.as_of + timedelta(minutes=2))


# -- the policy, against a real Redis -------------------------------------------------------------


def pipeline(redis: Redis, prefix: str, out: io.StringIO | None = None, **settings: Any) -> AlertPipeline:
    """A console pipeline on ``prefix`` with the given alert settings."""
    return AlertPipeline(
        redis,
        ConsoleChannel(out or io.StringIO()),
        alerts=AlertSettings(**settings),
        key_prefix=prefix,
        lease_s=2,
        poll_s=0.05,
    )


def cascade_alerts(hour: int = 1) -> list[Alert]:
    """regime_change (critical) + cascade_start for one hour."""
    return derive_alerts(
        snap(hour - 1, "fragile"), snap(hour, "cascade", episode=f"E{hour}"), now=live_now(snap(hour))
    )


async def drain(p: AlertPipeline) -> int:
    """Deliver until the outbox is empty; returns how many sends happened."""
    n = 0
    while await p.deliver_next():
        n += 1
    return n


async def test_off_mode_suppresses_without_queueing(redis: Redis, prefix: str) -> None:
    """A kind switched off is counted as suppressed{reason=off} and never reaches the outbox."""
    p = pipeline(redis, prefix, regime_change="off")
    assert await p.submit(cascade_alerts()) == ["off", "queued"]
    assert p.stats.suppressed["off"] == 1
    assert await p.outbox_size() == 1


async def test_second_replica_sees_duplicate(redis: Redis, prefix: str) -> None:
    """The same alerts submitted by another pipeline (a replica, or after a restart) are duplicates."""
    first, second = pipeline(redis, prefix), pipeline(redis, prefix)
    assert await first.submit(cascade_alerts()) == ["queued", "queued"]
    assert await second.submit(cascade_alerts()) == ["duplicate", "duplicate"]
    assert second.stats.suppressed["duplicate"] == 2
    assert await second.outbox_size() == 2


async def test_mute_and_unmute(redis: Redis, prefix: str) -> None:
    """A muted kind is suppressed (reason muted), others pass; after unmute it passes again."""
    p = pipeline(redis, prefix)
    await p.mute("regime_change", 3600)
    assert list(await p.mutes()) == ["regime_change"]
    assert await p.submit(cascade_alerts(1)) == ["muted", "queued"]
    assert await p.unmute() == 1
    assert await p.submit(cascade_alerts(2)) == ["queued", "queued"]
    await p.mute("all", 60)
    assert await p.submit(cascade_alerts(3)) == ["muted", "muted"]
    assert p.stats.suppressed["muted"] == 3
    with pytest.raises(ValueError, match="unknown alert type"):
        await p.mute("everything", 60)


async def test_cooldown_holds_back_repeats_but_not_critical(redis: Redis, prefix: str) -> None:
    """Within cooldown_s (by the alerts' hours) a repeat of a kind is suppressed unless critical."""
    p = pipeline(redis, prefix, cooldown_s=3 * 3600)
    (up,) = derive_alerts(snap(0), snap(1, "elevated"), now=live_now(snap(1)))
    (down,) = derive_alerts(snap(1, "elevated"), snap(2, "calm"), now=live_now(snap(2)))
    (crit,) = derive_alerts(snap(2), snap(3, "cascade"), now=live_now(snap(3)))
    (soon,) = derive_alerts(snap(3, "cascade"), snap(5, "recovery"), now=live_now(snap(5)))
    (later,) = derive_alerts(snap(5, "recovery"), snap(6, "calm"), now=live_now(snap(6)))
    outcomes = await p.submit([up, down, crit, soon, later])
    assert outcomes == ["queued", "cooldown", "queued", "cooldown", "queued"]
    assert p.stats.suppressed["cooldown"] == 2


async def test_outbox_delivers_in_order_and_counts(redis: Redis, prefix: str) -> None:
    """Queued alerts come out oldest first, silent ones marked, and are counted by channel and severity."""
    out = io.StringIO()
    p = pipeline(redis, prefix, out)
    alerts = cascade_alerts(1) + derive_alerts(snap(1, episode="E1"), snap(2), now=live_now(snap(2)))
    await p.submit(alerts)
    assert await drain(p) == 3
    text = out.getvalue()
    assert text.index("Regime fragile → cascade") < text.index("Cascade started") < text.index("ended")
    assert text.count("(silent)") == 1  # cascade_end is silent by default
    assert p.stats.sent == {("console", "critical"): 2, ("console", "info"): 1}
    assert await p.outbox_size() == 0
    assert await drain(p) == 0


async def test_redis_outage_raises_and_holds_nothing_in_memory(
    redis_server: RedisServer, prefix: str
) -> None:
    """With Redis down, submit raises (the alert feed keeps its cursor); nothing is buffered to be lost."""
    client = Redis.from_url(redis_server.url, socket_timeout=1)
    p = pipeline(client, prefix)
    redis_server.stop()
    with pytest.raises(RedisError):
        await p.submit(cascade_alerts())
    redis_server.start()
    assert await p.outbox_size() == 0
    await client.aclose()


async def test_hooks_see_what_stats_count(redis: Redis, prefix: str) -> None:
    """on_sent/on_suppressed (the metrics sink's counters) are called once per event."""
    sent: list[tuple[str, str]] = []
    suppressed: list[str] = []
    p = AlertPipeline(
        redis,
        ConsoleChannel(io.StringIO()),
        alerts=AlertSettings(),
        key_prefix=prefix,
        on_sent=lambda ch, sev: sent.append((ch, sev)),
        on_suppressed=suppressed.append,
    )
    await p.submit(cascade_alerts())
    await p.submit(cascade_alerts())
    await drain(p)
    assert sent == [("console", "critical"), ("console", "critical")]
    assert suppressed == ["duplicate", "duplicate"]


@pytest.mark.parametrize(
    ("level", "multi", "expected"),
    [
        ("strict", False, "BTC cascade level strict"),
        ("none", True, "multi-asset detector (4 assets)"),
        ("medium", True, "BTC cascade level medium and multi-asset detector (4 assets)"),
        ("none", False, "hold after the last firing hour"),
    ],
)
def test_cascade_alert_says_what_fired_never_level_none(level: str, multi: bool, expected: str) -> None:
    """The cascade alert names the level, the multi-asset detector, or the hold — never "level none"."""
    cur = snap(
        1,
        "cascade",
        episode="E1",
        cascade_level=level,
        multi_asset_cascade=multi,
        features={"multi_asset_count": 4.0},
    )
    alerts = derive_alerts(snap(0, "fragile"), cur, now=live_now(cur))
    bodies = [a.body for a in alerts if a.kind in ("cascade_start", "regime_change")]
    assert len(bodies) == 2
    assert all(expected in b for b in bodies)
    assert not any("level none" in b for b in bodies)
