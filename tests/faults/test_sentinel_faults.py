"""Redis Sentinel (issue 19, item 6): riskd configured with a ``redis+sentinel://`` URL rides a graceful
``SENTINEL FAILOVER`` and then a kill -9 of the primary, through a planted cascade. Real redis-server
processes: the rig's primary, a replica and three sentinels."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis
from faultkit import HOUR, T0, assert_kept, market, rig
from sentinel_group import SentinelGroup, replicated, role

pytestmark = pytest.mark.slow

CASCADE = T0 + 10 * HOUR


def _hours_on(port: int, prefix: str) -> set[pd.Timestamp]:
    """The as_of of every history entry the server on ``port`` holds."""
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    try:
        raw = client.xrange(f"{prefix}:regime:history", "-", "+")
    finally:
        client.close()
    return {pd.Timestamp(json.loads(fields[b"json"])["as_of"]) for _, fields in raw}


def _until(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@pytest.mark.timeout(600)
def test_a_sentinel_failover_and_a_killed_primary_lose_no_hour_and_no_alert(
    fault_tmp: Path, record: dict[str, Any]
) -> None:
    """Fail-over before the cascade (the replica promoted, the old primary demoted), then kill -9 of the new
    primary right after the cascade's alerts (the old one promoted back): every hour in the stream, equal to
    the batch path; every alert delivered once."""
    with rig(fault_tmp, market(CASCADE)) as r:
        group = SentinelGroup(r.redis.port, fault_tmp / "sentinel").start()
        try:
            first, second = r.redis.port, group.replica.port
            r.start_daemon(redis={"url": group.url})
            r.drive(T0, CASCADE - 2 * HOUR)
            group.failover()
            group.wait_master(second)
            _until(lambda: role(first) == ("slave", "up"), 30, "the old primary to follow the new one")
            r.drive(CASCADE - HOUR, CASCADE + HOUR)
            r.wait_alerts_settled(timeout=60)
            _until(lambda: replicated(second, first), 30, "the replica to hold every write")
            held = _hours_on(second, r.prefix)
            group.replica.kill9()  # the primary now
            group.wait_master(first, timeout=60)
            r.drive(CASCADE + 2 * HOUR, CASCADE + 8 * HOUR)
            r.wait_alerts_settled(timeout=60)
            log = r.daemons[0].log()
            v = r.judge()
            record.update(v.as_dict())
            if CASCADE + HOUR not in held:
                v.add(
                    "the promoted replica never received the cascade hour: riskd did not follow the fail-over"
                )
            if "Traceback" in log:
                v.add("a traceback in the daemon's log")
            assert_kept(v, r)
        finally:
            group.stop()
