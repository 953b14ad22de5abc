"""Redis faults against the running daemon: killed and restarted, full (noeviction); and the control run."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from faultkit import HOUR, T0, assert_kept, market, rig

pytestmark = pytest.mark.slow

CASCADE = T0 + 10 * HOUR


def test_control_run_without_a_fault_keeps_every_promise(fault_tmp: Path, record: dict[str, Any]) -> None:
    """With no fault the rig's oracle holds: every hour, every alert once, stream = batch (the harness is sound)."""
    with rig(fault_tmp, market(CASCADE)) as r:
        r.start_daemon()
        r.drive(T0, T0 + 16 * HOUR)
        r.wait_alerts_settled()
        v = r.judge()
        record.update(v.as_dict())
        assert r.expected_alerts, "the planted cascade raises alerts in the window (else this proves nothing)"
        assert_kept(v, r)


def test_redis_killed_and_restarted_loses_no_alert(fault_tmp: Path, record: dict[str, Any]) -> None:
    """Redis down across the cascade hours (finding 1): after its restart every hour and every alert arrive."""
    with rig(fault_tmp, market(CASCADE)) as r:
        d = r.start_daemon()
        r.drive(T0, CASCADE - 2 * HOUR)
        r.redis.stop()
        r.drive(CASCADE - HOUR, CASCADE + 3 * HOUR)  # the alerts are raised while Redis is away
        r.redis.start()
        r.drive(CASCADE + 4 * HOUR, CASCADE + 6 * HOUR)
        r.wait_alerts_settled()
        assert d.alive, f"the daemon died during the Redis outage:\n{d.tail()}"
        v = r.judge()
        record.update(v.as_dict())
        assert_kept(v, r)


def test_redis_full_with_noeviction_loses_no_alert(fault_tmp: Path, record: dict[str, Any]) -> None:
    """Redis at maxmemory with noeviction across the cascade (finding 1): once memory is freed, no alert lost."""
    with rig(fault_tmp, market(CASCADE)) as r:
        d = r.start_daemon()
        r.drive(T0, CASCADE - 2 * HOUR)
        client = r.redis_client()
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", str(used + 4096))  # full: every write beyond a few bytes is refused
        r.drive(CASCADE - HOUR, CASCADE + 3 * HOUR)
        client.config_set("maxmemory", "0")  # memory freed
        client.close()
        r.drive(CASCADE + 4 * HOUR, CASCADE + 6 * HOUR)
        r.wait_alerts_settled()
        assert d.alive, f"the daemon died while Redis was full:\n{d.tail()}"
        v = r.judge()
        record.update(v.as_dict())
        assert_kept(v, r)


@pytest.mark.parametrize("taken", ["before_cascade", "alerts_queued"])
def test_redis_restored_from_an_older_snapshot_loses_no_hour_and_repeats_no_alert(
    fault_tmp: Path, record: dict[str, Any], taken: str
) -> None:
    """Redis restored from an older RDB after the cascade's alerts were delivered (issue 19 case 2): the RDB
    was taken before the cascade, or while its alerts waited in the outbox (Telegram down). The lost hours
    come back as revisions (restate_reason redis_rollback) within a lease tick, the key shows the newest
    hour again, and the alerts the restored outbox holds again are marked delivered from the daemon's
    local receipts, never sent a second time (before the fix: the hours were gone for good and the
    queued alerts went out twice)."""
    with rig(fault_tmp, market(CASCADE)) as r:
        assert r.gate is not None
        d = r.start_daemon()
        r.drive(T0, CASCADE - 2 * HOUR)
        if taken == "alerts_queued":
            r.gate.close()
            r.drive(CASCADE - HOUR, CASCADE + HOUR)
        snapshot = _save_rdb(r, fault_tmp)
        if taken == "alerts_queued":
            r.gate.open()
        r.drive(CASCADE + (2 if taken == "alerts_queued" else -1) * HOUR, CASCADE + 3 * HOUR)
        r.wait_alerts_settled()
        sent_before = len(r.delivered())
        assert sent_before, "the cascade raised alerts before the restore (else this proves nothing)"
        newest = CASCADE + 4 * HOUR  # as_of of the last hour driven (as_of is the hour's close)

        _restore_rdb(r, snapshot)
        client = r.redis_client()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _key_as_of(client, r.prefix) != newest:
            time.sleep(0.2)
        assert _key_as_of(client, r.prefix) == newest, f"the key was not repaired:\n{d.tail()}"
        client.close()
        r.wait_alerts_settled()
        assert len(r.delivered()) == sent_before, f"alerts sent again after the restore:\n{d.tail()}"

        r.drive(CASCADE + 4 * HOUR, CASCADE + 6 * HOUR)
        r.wait_alerts_settled()
        assert d.alive, f"the daemon died after the restore:\n{d.tail()}"
        again = sorted(
            pd.Timestamp(body["as_of"])
            for _, body in r.stream_entries()
            if body.get("restate_reason") == "redis_rollback"
        )
        first_lost = CASCADE + (3 if taken == "alerts_queued" else 0) * HOUR  # the first hour after the RDB
        assert again == list(pd.date_range(first_lost, newest, freq="h")), again
        assert d.log().count("redis rollback:") == 1, d.tail()
        if taken == "alerts_queued":
            assert "not sent again" in d.log(), "the restored outbox items met the local receipts"
        v = r.judge()
        record.update(v.as_dict())
        assert v.repeated_resends == 0, "no alert re-sent, not even marked possibly repeated"
        assert_kept(v, r)


def _save_rdb(r: Any, tmp: Path) -> Path:
    """An RDB of Redis as it is now, kept aside (what an operator restores later)."""
    client = r.redis_client()
    client.save()
    client.close()
    kept = tmp / "older.rdb"
    shutil.copy(r.redis.data_dir / "dump.rdb", kept)
    return kept


def _restore_rdb(r: Any, snapshot: Path) -> None:
    """Restore it: Redis stopped, its append-only file gone, the old RDB back, Redis started from it."""
    r.redis.stop()
    shutil.rmtree(r.redis.data_dir / "appendonlydir", ignore_errors=True)
    shutil.copy(snapshot, r.redis.data_dir / "dump.rdb")
    r.redis.persist = False
    r.redis.start()


def _key_as_of(client: Any, prefix: str) -> pd.Timestamp | None:
    raw = client.get(f"{prefix}:regime")
    return pd.Timestamp(json.loads(raw)["as_of"]) if raw else None
