"""Clock skew (issue 19, item 4): the real daemon on the shared clock plus or minus 90 s, the venues on it.

Before the fix a leader whose clock ran 90 s fast cycled before the venue's hour close, rightly dropped the
still-open candle and so published every hour ``stale`` first, restating it an hour later: its CRITICAL
alerts arrived about an hour late. Now each cycle reads the venue's server time and waits for the venue's
own close; a slow clock simply cycles late.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from faultkit import GRACE, HOUR, NO_TIME, T0, assert_kept, market, rig

pytestmark = pytest.mark.slow

CASCADE = T0 + 4 * HOUR
EARLY = pd.Timedelta(seconds=60)
"""How far before the venue's close + grace the fast daemon is first tempted: its own clock (+90 s) then
reads close + grace + 30 s, past due, while the venue's candle is still open for another 40 s."""
TEMPT_S = 1.5
"""Real seconds the daemon gets at that moment: an unfixed one cycles then (under a second) and publishes
the hour stale."""


def _wait_alerts_derived(r: Any, timeout: float = 10.0) -> None:
    """Until the leader's alert cursor has reached the newest history stream entry."""
    client = r.redis_client()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            newest = client.xrevrange(f"{r.prefix}:regime:history", count=1)
            cursor = client.get(f"{r.prefix}:alerts:cursor")
            if not newest or (cursor is not None and cursor.decode() == newest[0][0].decode()):
                return
            time.sleep(0.02)
    finally:
        client.close()


@pytest.mark.parametrize("offset_s", [90.0, -90.0], ids=["fast", "slow"])
def test_skewed_clock_publishes_every_hour_ok_first_and_raises_the_cascade_on_time(
    fault_tmp: Path, record: dict[str, Any], offset_s: float
) -> None:
    """A leader 90 s fast (or slow) through a planted cascade: every hour's first publication is ``ok``
    (never ``stale`` then restated), no hour or alert is lost or doubled, the stream equals the batch path,
    and the log says the skew once."""
    record["scenario"] = f"clock_{'fast' if offset_s > 0 else 'slow'}_90s"
    fast = offset_s > 0
    with rig(fault_tmp, market(CASCADE, drop=0.08, vol=12.0)) as r:
        a = r.start_daemon("a", clock_offset_s=offset_s)
        for hour in pd.date_range(T0, CASCADE + 3 * HOUR, freq="h"):
            if fast:  # the daemon's clock says due, the venue's candle is still open
                r.clock.set(hour + HOUR + GRACE - EARLY)
                time.sleep(TEMPT_S)
            # the venue's close + grace; a slow daemon's clock reaches its own 90 s later
            r.advance(hour, past=NO_TIME if fast else pd.Timedelta(seconds=-offset_s))
            _wait_alerts_derived(r)  # before the clock moves on: an alert derived later is stamped late
        r.wait_alerts_settled()
        log = a.log()
        v = r.judge()
        record.update(v.as_dict())
        firsts = r.first_revisions()
        for as_of in sorted(set(r.published_hours)):
            body = firsts.get(as_of)
            status = None if body is None else body["data_quality"]["status"]
            if status != "ok":
                v.add(f"hour {as_of:%m-%d %H:%M} was first published {status!r}, want 'ok'")
        said = [ln for ln in log.splitlines() if "clock skew:" in ln]
        if len(said) != 1 or f"local clock {offset_s:+.1f}s off " not in said[0]:
            v.add(f"the log should say the skew once, it said: {said}")
        starts = [s for s in r.delivered() if s.key[0] == "cascade_start"]
        if not starts:
            v.add("no cascade alert: the scenario's market did not exercise the alerts")
        elif any(s.late for s in starts):
            v.add(f"the cascade alert went out marked late: {starts[0].text[:200]!r}")
        assert_kept(v, r)
