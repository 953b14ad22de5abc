"""Redis faults against the running daemon: killed and restarted, full (noeviction); and the control run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
