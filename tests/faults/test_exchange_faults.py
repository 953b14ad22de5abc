"""Exchange faults: a stalled primary with late data, a venue ban, a venue dead from the start, offline."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from faultkit import HOUR, T0, assert_kept, market, rig

pytestmark = pytest.mark.slow

CASCADE = T0 + 10 * HOUR
ON_TIME_S = 10.0
"""Wall seconds within which an hour must be on /regime after its close (a fast clock's cycles take <1 s)."""


def test_stalled_primary_then_late_data_restates_and_raises_the_cascade(
    fault_tmp: Path, record: dict[str, Any]
) -> None:
    """Binance answers 4 h behind across a planted -8 %, 14x-volume BTC candle, then catches up (finding 3):
    the stalled hours are not published ok, are restated once the candles are in, the cascade alert goes
    out marked late, and the stream equals the batch path."""
    with rig(fault_tmp, market(CASCADE, drop=0.08, vol=14.0)) as r:
        r.start_daemon()
        r.drive(T0, CASCADE - 2 * HOUR)
        r.fx.inject("stale", venue="binance", behind_hours=4)
        stalled = list(range(-1, 3))
        r.drive(CASCADE - HOUR, CASCADE + 2 * HOUR)
        r.fx.clear_faults()  # the late candles are served from now on
        r.drive(CASCADE + 3 * HOUR, CASCADE + 8 * HOUR)
        r.wait_alerts_settled()
        v = r.judge(stale_hours=tuple(CASCADE + (k + 1) * HOUR for k in stalled))
        record.update(v.as_dict())
        starts = [s for s in r.delivered() if s.key[0] == "cascade_start"]
        if starts and not all(s.late for s in starts):
            v.add(f"the cascade alert raised from late data is not marked late: {starts[0].text[:200]!r}")
        revised = [b for _, b in r.stream_entries() if b.get("restated")]
        if not revised:
            v.add("no hour was republished with restated: true after the late candles arrived")
        assert_kept(v, r)


@pytest.mark.parametrize("kind", ["ban", "rate_limit"])
def test_venue_ban_is_respected_and_hours_go_out_on_time_degraded(
    fault_tmp: Path, record: dict[str, Any], kind: str
) -> None:
    """Binance answers 418 "banned until" (or 429 Retry-After) for 3 h (finding 4): riskd sends at most a few
    probes into the ban, publishes each hour on time as not-ok, and catches up when the ban lifts."""
    record["scenario"] = f"venue_{kind}"
    with rig(fault_tmp, market(CASCADE)) as r:
        r.start_daemon()
        r.drive(T0, T0 + 2 * HOUR)
        r.fx.inject(kind, venue="binance", retry_after=600)
        before = r.fx.log.count(venue="binance")
        banned = [T0 + h * HOUR for h in (3, 4, 5)]
        late = {h: r.advance(h) for h in banned}
        during = r.fx.log.count(venue="binance") - before
        r.fx.clear_faults()
        r.drive(T0 + 6 * HOUR, T0 + 9 * HOUR)
        r.wait_alerts_settled()
        v = r.judge(stale_hours=tuple(h + HOUR for h in banned))
        record.update(v.as_dict())
        # The requests already in flight when the first 418/429 arrived (at most the venue's concurrency, 8)
        # cannot be recalled; after that, one probe a cycle. Before the fix: 96 requests into the ban.
        bound = 8 + 3
        if during > bound:
            v.add(
                f"{during} requests went to Binance during a 3-hour {kind} (want at most {bound}: the first "
                "in-flight wave, then a probe a cycle)"
            )
        slow = {f"{h:%H:%M}": round(s, 1) for h, s in late.items() if s > ON_TIME_S}
        if slow:
            v.add(f"hours published later than {ON_TIME_S:.0f} s after their close during the {kind}: {slow}")
        assert_kept(v, r)


def test_ban_through_a_multi_asset_cascade_delivers_it_once_at_critical(
    fault_tmp: Path, record: dict[str, Any]
) -> None:
    """Binance bans riskd (418) for 3 h across a planted multi-asset cascade, then lifts it (issue 17,
    finding 2): the banned hours go out unknown, never calm; a cycle that sees only part of the market
    restates them unknown, never ok; once the data is complete the CRITICAL cascade alert is delivered
    once, at CRITICAL, with no weaker one before it; the stream's newest revisions equal the batch path."""
    record["scenario"] = "ban_through_cascade"
    with rig(fault_tmp, market(CASCADE, drop=0.09, vol=12.0)) as r:
        r.start_daemon()
        r.drive(T0, CASCADE - 2 * HOUR)
        r.fx.inject("ban", venue="binance", retry_after=600)
        banned = [CASCADE - HOUR, CASCADE, CASCADE + HOUR]
        for h in banned:
            r.advance(h)
        r.fx.clear_faults()
        r.drive(CASCADE + 2 * HOUR, CASCADE + 7 * HOUR)
        r.wait_alerts_settled()
        v = r.judge(stale_hours=tuple(h + HOUR for h in banned))
        record.update(v.as_dict())
        blind_hours = {h + HOUR for h in banned}
        for entry_id, body in r.stream_entries():
            if pd.Timestamp(body["as_of"]) not in blind_hours:
                continue
            known = body["state"] != "unknown"
            if known and (
                body["data_quality"]["coverage"] < 0.5 or body["data_quality"]["status"] == "stale"
            ):
                v.add(f"entry {entry_id} ({body['as_of']}, rev {body['revision']}) says {body['state']} "
                      f"from coverage {body['data_quality']['coverage']:.0%}")  # fmt: skip
            if body["revision"] == 0 and body["state"] == "calm":
                v.add(f"banned hour {body['as_of']} was first published calm")
        starts = [s for s in r.delivered() if s.key[0] == "cascade_start"]
        if len(starts) != 1 or "CRITICAL" not in starts[0].text.splitlines()[0] + starts[0].text:
            v.add(f"want one CRITICAL cascade_start, the chat got {[s.text.splitlines()[0] for s in starts]}")
        elif starts[0].upgrade:
            v.add("the cascade alert came as an upgrade: a weaker one from partial data went out before it")
        assert_kept(v, r)


def test_venue_dead_from_the_start_keeps_cycles_short(fault_tmp: Path, record: dict[str, Any]) -> None:
    """Bybit's market list never loads (finding 5): one market-list load per cycle, not one per symbol, and
    every hour is out within seconds of its close."""
    with rig(fault_tmp, market(CASCADE)) as r:
        r.fx.inject("server_error", venue="bybit", path="/v5/market/instruments-info")
        r.start_daemon()
        r.advance(T0)
        per_cycle: list[int] = []
        late: dict[str, float] = {}
        for h in pd_hours(T0 + HOUR, T0 + 5 * HOUR):
            before = r.fx.log.count(venue="bybit", path="instruments-info")
            late[f"{h:%H:%M}"] = round(r.advance(h), 1)
            per_cycle.append(r.fx.log.count(venue="bybit", path="instruments-info") - before)
        r.wait_alerts_settled(timeout=10)
        v = r.judge(first_as_of=T0 + 2 * HOUR)
        record.update(v.as_dict())
        attempts = 3  # retry.attempts of the rig: one market-list load may retry, never once per symbol
        # Measured after the fix: [4, 2, 2, 2, 2] requests a cycle (the first cycle's load with its retries
        # and a half-open probe; later cycles one probe and one more request that ccxt's bybit issues; not
        # yet explained). Before the fix: 30 a cycle. The bound keeps "one load a cycle, not one per symbol".
        if max(per_cycle) > attempts + 1:
            v.add(
                f"Bybit market-list requests per cycle {per_cycle} (want at most {attempts + 1}: one load a cycle)"
            )
        slow = {h: s for h, s in late.items() if s > ON_TIME_S}
        if slow:
            v.add(f"hours out later than {ON_TIME_S:.0f} s after their close with Bybit dead: {slow}")
        assert_kept(v, r)


def test_offline_healthz_says_degraded_and_logs_one_line_per_venue(
    fault_tmp: Path, record: dict[str, Any]
) -> None:
    """Every venue unreachable for 3 h (finding 7): /healthz says degraded, each cycle logs one summary
    line per venue instead of a warning per request, and no offline hour reads as ok."""
    with rig(fault_tmp, market(CASCADE), telegram=False) as r:
        d = r.start_daemon()
        r.drive(T0, T0 + HOUR)
        r.fx.inject("server_error")
        offline = [T0 + h * HOUR for h in (2, 3, 4)]
        marks = []
        for h in offline:
            marks.append(len(d.log().splitlines()))
            r.advance(h)
        status, body = d.get("/healthz")
        lines = d.log().splitlines()[marks[-1] :]
        r.fx.clear_faults()
        r.drive(T0 + 5 * HOUR, T0 + 6 * HOUR)
        v = r.judge(stale_hours=tuple(h + HOUR for h in offline), check_alerts=False)
        record.update(v.as_dict())
        if not body or body.get("status") != "degraded":
            v.add(
                f"/healthz while every venue is unreachable answered {status} {body} (want status degraded)"
            )
        for venue in ("binance", "bybit", "hyperliquid"):
            said = [ln for ln in lines if re.search(r" (INFO|WARNING) ", ln) and venue in ln.lower()]
            if len(said) > 1:
                v.add(f"{len(said)} INFO/WARNING lines about {venue} in one offline cycle (want one summary), "
                      f"e.g. {said[0][-140:]!r}")  # fmt: skip
        assert_kept(v, r)


def pd_hours(first: Any, last: Any) -> list[Any]:
    """Open times from ``first`` to ``last`` inclusive."""
    import pandas as pd

    return list(pd.date_range(first, last, freq="h"))
