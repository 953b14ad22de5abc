"""The alert policy in the outbox (issue 17): identity with strength, upgrades, and the cooldown's one rule.

An alert whose severity or cascade level is higher than the last one sent for its episode goes out at once;
the cooldown holds only repeats of the same episode at the same or a lower level, and folds them into the
next message of that kind. Real Redis, the real pipeline, a recording channel.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from riskd.alerting.pipeline import AlertPipeline
from riskd.config import AlertSettings
from riskd.contract.alerts import derive_alerts, sources_text
from riskd.contract.models import PROVISIONAL_CODES, STATE_CODES, Alert, DataQuality, Snapshot

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)


class Recorder:
    """A channel that keeps what it was asked to send, with the message each one replied to."""

    name = "console"
    max_per_minute: int | None = None

    def __init__(self) -> None:
        self.destinations = ["desk"]
        self.sent: list[tuple[str, str | None]] = []

    async def send(
        self, dest: str, text: str, *, silent: bool, chart: bytes | None, reply_to: str | None = None
    ) -> str:
        self.sent.append((text, reply_to))
        return str(len(self.sent))


@pytest.fixture
async def pipeline(redis_url: str) -> Any:
    """A pipeline with the default 3 h cooldown on a simulated clock (``pipeline.now`` moves it)."""
    client = Redis.from_url(redis_url)
    clock = {"now": T0}
    p = AlertPipeline(
        client,
        Recorder(),
        alerts=AlertSettings(),
        key_prefix=f"riskd:test:{uuid.uuid4().hex[:10]}",
        clock=lambda: clock["now"].timestamp(),
    )
    p.clock = clock  # type: ignore[attr-defined]
    yield p
    await client.aclose()


async def drain(p: AlertPipeline) -> list[tuple[str, str | None]]:
    """Deliver everything due; the texts sent (with reply targets) in order."""
    while await p.deliver_next():
        pass
    return p.channel.sent  # type: ignore[attr-defined, no-any-return]


def developing(hour: int, level: str, episode: str) -> Alert:
    """A provisional cascade_developing alert for the hour ending T0 + ``hour``."""
    as_of = T0 + timedelta(hours=hour)
    return Alert(
        kind="cascade_developing",
        severity="critical" if level == "severe" else "warning",
        as_of=as_of,
        title=f"Cascade developing (provisional, {level})",
        body=f"Hour ending {as_of:%H:%M}",
        figures={"to": "developing", "level": level},
        episode_id=episode,
    )


def regime(hour: int, src: str, dst: str) -> Alert:
    """The regime_change alert of a ``src`` → ``dst`` step at T0 + ``hour``."""
    prev, cur = snap(hour - 1, src), snap(hour, dst)
    (alert,) = [a for a in derive_alerts(prev, cur, now=cur.as_of) if a.kind == "regime_change"]
    return alert


def snap(hour: int, state: str, **kw: Any) -> Snapshot:
    """A snapshot of the hour ending T0 + ``hour``."""
    as_of = T0 + timedelta(hours=hour)
    base: dict[str, Any] = {
        "as_of": as_of,
        "computed_at": as_of,
        "live": True,
        "state": state,
        "state_code": STATE_CODES[state],
        "risk_multiplier": 0.5,
        "cfi": 1.0,
        "cfi_percentile": 0.8,
        "cascade_level": "none",
        "cascade_level_code": 0,
        "data_quality": DataQuality(status="ok", coverage=1.0),
    }
    return Snapshot(**{**base, **kw})


async def test_a_new_provisional_episode_is_sent_at_once_whatever_the_cooldown(
    pipeline: AlertPipeline,
) -> None:
    """The crash hour's provisional alert is a new episode: it goes out 1 h after the last one (before: held
    by the 3 h cooldown of an earlier, weaker episode — the minute demo's headline alert)."""
    assert await pipeline.submit([developing(2, "developing", "prov-1200")]) == ["queued"]
    pipeline.clock["now"] += timedelta(hours=1)  # type: ignore[attr-defined]
    assert await pipeline.submit([developing(3, "developing", "prov-1300")]) == ["queued"]
    assert len(await drain(pipeline)) == 2


async def test_a_repeat_of_the_same_episode_is_held_and_folded_into_the_next_message(
    pipeline: AlertPipeline,
) -> None:
    """A same-or-lower-level repeat within the cooldown is held; the next message of that kind lists it; a
    stronger one of the same episode goes out at once."""
    assert await pipeline.submit([regime(1, "calm", "elevated")]) == ["queued"]
    assert await pipeline.submit([regime(2, "fragile", "elevated")]) == ["cooldown"]  # info, lower: held
    assert await pipeline.submit([regime(3, "calm", "elevated")]) == ["cooldown"]  # warning, same: held
    assert await pipeline.submit([regime(4, "elevated", "fragile")]) == ["queued"]  # critical: at once
    sent = await drain(pipeline)
    assert len(sent) == 2
    folded = sent[1][0]
    assert "Held by the cooldown since the last message:" in folded
    assert "03-02 12:00 UTC · info · Regime fragile → elevated" in folded
    assert "03-02 13:00 UTC · warning · Regime calm → elevated" in folded
    assert folded.index("Regime elevated → fragile") < folded.index("Held by the cooldown")  # headers first


async def test_a_stronger_alert_of_the_same_episode_bypasses_the_cooldown(pipeline: AlertPipeline) -> None:
    """Same provisional episode at a higher level (watch → developing) within the cooldown: sent at once, as
    an upgrade of the weaker one; the same strength again is a duplicate."""
    watch = developing(1, "watch", "prov-1100")
    assert await pipeline.submit([watch]) == ["queued"]
    pipeline.clock["now"] += timedelta(minutes=20)  # type: ignore[attr-defined]
    stronger = developing(1, "developing", "prov-1100")
    assert PROVISIONAL_CODES["developing"] > PROVISIONAL_CODES["watch"]
    assert await pipeline.submit([stronger]) == ["upgrade"]
    assert await pipeline.submit([stronger.model_copy(update={"title": "again"})]) == ["duplicate"]
    sent = await drain(pipeline)
    assert len(sent) == 2
    assert sent[1][1] == "1"  # a reply to the watch-level message


async def test_a_weaker_correction_is_not_sent_and_a_stronger_one_replies_to_the_first(
    pipeline: AlertPipeline,
) -> None:
    """The same event corrected down is dropped ('downgrade'); corrected up it goes out as an upgrade that
    replies to the first message and says what it corrects."""
    strong = regime(1, "elevated", "cascade").model_copy(
        update={"figures": {**regime(1, "elevated", "cascade").figures, "cascade_level": "medium"}}
    )
    weak = strong.model_copy(update={"figures": {**strong.figures, "cascade_level": "volume_only"}})
    assert weak.identity == strong.identity
    assert weak.fingerprint != strong.fingerprint
    assert await pipeline.submit([weak]) == ["queued"]
    assert await pipeline.submit([strong]) == ["upgrade"]
    assert await pipeline.submit([weak]) == ["duplicate"]
    lower = strong.model_copy(update={"figures": {**strong.figures, "cascade_level": "loose"}})
    assert await pipeline.submit([lower]) == ["downgrade"]
    sent = await drain(pipeline)
    assert len(sent) == 2
    text, reply_to = sent[1]
    assert reply_to == "1"
    assert "(upgraded from critical)" in text.splitlines()[0]  # the level rose, the severity did not
    assert pipeline.stats.suppressed["downgrade"] == 1


def test_a_blind_hour_raises_the_data_alert_only_and_names_each_source_once() -> None:
    """A blind hour (unknown, stale sources) raises one data_stale alert listing each source once, and no
    regime or cascade alert; the next seen hour compares with the last seen one, not with the blind one."""
    dq = DataQuality(
        status="stale",
        coverage=0.0,
        stale_sources=["binance:ohlcv"],
        missing_sources=["binance:ohlcv", "bybit:funding"],
    )
    seen = snap(0, "fragile")
    blind = snap(
        1, "unknown", data_quality=dq, cascade_level="volume_only", cascade_level_code=1, episode_id="btc-X"
    )
    (alert,) = derive_alerts(seen, blind, now=blind.as_of)
    assert alert.kind == "data_stale"
    assert sources_text(blind) == "binance:ohlcv, bybit:funding"
    assert alert.body.count("binance:ohlcv") == 1
    back = snap(2, "fragile")
    kinds = [a.kind for a in derive_alerts(blind, back, now=back.as_of, known=seen)]
    assert kinds == ["data_recovered"]  # fragile → (blind) → fragile: no regime news
