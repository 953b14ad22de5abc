"""A Redis that forgot (restored from an older snapshot): the sink publishes the lost hours again from its
local record, and the alert pipeline never sends twice what its local receipts say went out. Against a
real Redis; the rollback is made the way a restore leaves the keys (the newer hours' stream entries,
revisions, queue state and de-duplication keys gone, the key showing an older hour)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis.asyncio import Redis

from riskd.alerting.outbox import Item
from riskd.alerting.pipeline import AlertPipeline
from riskd.alerting.receipts import Receipt, Receipts
from riskd.config import AlertSettings, RedisSettings
from riskd.contract.alerts import derive_alerts
from riskd.contract.keys import Keys
from riskd.contract.models import DataQuality, Snapshot
from riskd.sinks.redis import RedisSink, read_history
from riskd.telegram.channel import ConsoleChannel

T0 = datetime(2021, 5, 19, 12, tzinfo=UTC)


def snap(hour: int, state: str = "calm", episode: str | None = None) -> Snapshot:
    as_of = T0 + timedelta(hours=hour)
    return Snapshot(
        as_of=as_of,
        computed_at=as_of + timedelta(seconds=20),
        live=True,
        state=state,  # type: ignore[arg-type]
        state_code={"calm": 0, "fragile": 2, "cascade": 3}[state],
        risk_multiplier=1.0,
        cfi=0.1 * hour,
        cfi_percentile=0.5,
        cascade_level="none",
        cascade_level_code=0,
        episode_id=episode,
        data_quality=DataQuality(status="ok", coverage=1.0),
    )


def ms(hour: int) -> int:
    return int((T0 + timedelta(hours=hour)).timestamp() * 1000)


async def roll_back(client: Redis, prefix: str, *, to_hour: int, lost: list[int]) -> None:
    """What restoring an older snapshot does to the regime keys: the lost hours are gone, the key is old."""
    keys = Keys(prefix)
    kept = [(i, f) for i, f in await client.xrange(keys.history) if int(i.split(b"-")[0]) < ms(min(lost))]
    await client.delete(keys.history)  # a restored stream's last id is the old one too (XDEL would keep it)
    for entry_id, fields in kept:
        await client.xadd(keys.history, fields, id=entry_id)
    await client.hdel(keys.revisions, *[str(ms(h)) for h in lost])
    await client.set(keys.regime, snap(to_hour).to_json())


async def test_lost_hours_come_back_as_revisions_after_a_restart(
    redis: Redis, prefix: str, tmp_path: Path
) -> None:
    """Hours 3–5 lost: a restarted sink (its record read from disk) publishes them again, unchanged, as
    revision 1 with restate_reason redis_rollback, the key shows hour 5 again, and a second check finds
    nothing to do."""
    record = tmp_path / "redis-published.jsonl"
    sink = RedisSink(redis, RedisSettings(key_prefix=prefix), record=record)
    for h in range(6):
        await sink.publish(snap(h))
    await sink.save_record()  # the daemon saves it with its state, once per cycle
    await roll_back(redis, prefix, to_hour=2, lost=[3, 4, 5])
    assert [s.as_of for s in await read_history(redis, prefix, 10)] == [snap(h).as_of for h in range(3)]

    again = await RedisSink(redis, RedisSettings(key_prefix=prefix), record=record).repair_rollback()
    assert [s.as_of for s in again] == [snap(h).as_of for h in (3, 4, 5)]
    assert {(s.revision, s.restated, s.restate_reason) for s in again} == {(1, True, "redis_rollback")}
    assert [s.content_digest() for s in again] == [snap(h).content_digest() for h in (3, 4, 5)]
    history = await read_history(redis, prefix, 10)
    assert [s.as_of for s in history] == [snap(h).as_of for h in range(6)]
    key = Snapshot.model_validate_json(await redis.get(Keys(prefix).regime))
    assert key.as_of == snap(5).as_of
    assert await sink.repair_rollback() == []  # the first sink sees the repair: nothing lost any more


async def test_a_revision_lost_is_published_again_above_it(redis: Redis, prefix: str, tmp_path: Path) -> None:
    """Redis kept hour 2 at revision 0 but lost its restatement (revision 1): it comes back as revision 2,
    so readers taking the highest revision read the restated content."""
    sink = RedisSink(redis, RedisSettings(key_prefix=prefix), record=tmp_path / "r.json")
    for h in range(3):
        await sink.publish(snap(h))
    restated = snap(2, "fragile").model_copy(
        update={"revision": 1, "restated": True, "restate_reason": "late_data"}
    )
    await sink.publish(restated)
    await redis.hset(Keys(prefix).revisions, str(ms(2)), 0)  # the restore's view: revision 0 only
    (again,) = await sink.repair_rollback()
    assert (again.revision, again.state, again.restate_reason) == (2, "fragile", "redis_rollback")
    assert (await read_history(redis, prefix, 3))[-1].state == "fragile"


async def test_hours_still_queued_are_late_not_lost(redis: Redis, prefix: str, tmp_path: Path) -> None:
    """Without a record nothing is compared; an empty Redis with a record republishes what it held."""
    plain = RedisSink(redis, RedisSettings(key_prefix=prefix))
    await plain.publish(snap(0))
    await redis.delete(Keys(prefix).revisions)
    assert await plain.repair_rollback() == []
    sink = RedisSink(redis, RedisSettings(key_prefix=prefix), record=tmp_path / "r.json")
    await sink.publish(snap(1))
    await redis.delete(Keys(prefix).history, Keys(prefix).revisions, Keys(prefix).regime)
    (again,) = await sink.repair_rollback()
    assert again.as_of == snap(1).as_of


def console(redis: Redis, prefix: str, out: io.StringIO, receipts: Receipts) -> AlertPipeline:
    return AlertPipeline(
        redis,
        ConsoleChannel(out),
        alerts=AlertSettings(),
        key_prefix=prefix,
        lease_s=2,
        poll_s=0.05,
        receipts=receipts,
    )


async def drain(p: AlertPipeline) -> None:
    while await p.deliver_next():
        pass


async def test_alerts_queued_again_by_a_restored_redis_are_not_sent_twice(
    redis: Redis, prefix: str, tmp_path: Path
) -> None:
    """A cascade's alerts delivered; Redis restored to before their submission (their de-duplication keys
    gone), so they are submitted again; a restarted pipeline (receipts read from disk) marks them
    delivered with the recorded receipts and sends nothing; a new alert still goes out."""
    path = tmp_path / "alert-receipts.json"
    out = io.StringIO()
    p = console(redis, prefix, out, Receipts(path, keep_s=86400))
    alerts = derive_alerts(
        snap(0, "fragile"), snap(1, "cascade", "E1"), now=snap(1).as_of + timedelta(seconds=30)
    )
    assert alerts
    assert set(await p.submit(alerts)) == {"queued"}
    await drain(p)
    sent = out.getvalue()
    assert sent
    before = await p.outbox.delivered(alerts[0].fingerprint)

    await redis.delete(*[k async for k in redis.scan_iter(f"{prefix}:alerts:*")])  # the restore
    out2 = io.StringIO()
    p2 = console(redis, prefix, out2, Receipts(path, keep_s=86400))
    assert set(await p2.submit(alerts)) == {"queued"}  # Redis forgot them: they are queued again
    await drain(p2)
    assert out2.getvalue() == ""
    assert p2.stats.suppressed["delivered_before"] == len(alerts)
    assert await p2.outbox.size() == 0
    assert await p2.outbox.delivered(alerts[0].fingerprint) == before  # the receipt is back: edits work

    later = derive_alerts(
        snap(1, "cascade", "E1"), snap(2, "calm"), now=snap(2).as_of + timedelta(seconds=30)
    )
    assert later
    await p2.submit(later)
    await drain(p2)
    assert "Hour ending 2021-05-19 14:00 UTC" in out2.getvalue()  # the new hour went out


async def test_an_unreadable_receipt_file_starts_a_new_record(tmp_path: Path) -> None:
    """A damaged file is logged and replaced, never a crash at start; what is recorded then survives a
    restart."""
    path = tmp_path / "alert-receipts.json"
    path.write_text("{not json")
    (alert, *_) = derive_alerts(snap(0, "fragile"), snap(1, "cascade", "E1"), now=snap(1).as_of)
    item = Item(id="1", alert=alert, dest="chat", silent=False, chart_key="", attempts=0, maybe_sent=False)
    receipts = Receipts(path, keep_s=60)
    assert receipts.get("console", item) is None
    await receipts.record("console", item, "42", delivered_ms=ms(1))
    assert Receipts(path, keep_s=60).get("console", item) == Receipt("42", ms(1))
    assert Receipts(path, keep_s=60).get("telegram", item) is None
