"""Process faults: kill -9 mid-cycle and mid-send, a two-replica fail-over, SIGTERM while retrying or offline."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from faultkit import GRACE, HOUR, T0, TcpGate, assert_kept, market, rig

from riskd.daemon.embedded import free_port

pytestmark = pytest.mark.slow

CASCADE = T0 + 10 * HOUR


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def test_kill9_mid_cycle_then_restart_with_a_new_id_raises_every_alert(
    fault_tmp: Path, record: dict[str, Any]
) -> None:
    """kill -9 while the cascade hour is being fetched, down 3 h, restart as a new instance (finding 2):
    the catch-up runs while the dead process still holds the lease, and its alerts must still go out."""
    with rig(fault_tmp, market(CASCADE)) as r:
        lease = {"daemon": {"lease_ttl_s": 30.0}}  # longer than a restart takes, as in production
        a = r.start_daemon("a", **lease)
        r.drive(T0, CASCADE - HOUR)
        r.fx.inject("latency", venue="binance", latency_ms=400)  # a slow cycle, so we kill it mid-way
        before = r.fx.log.count(venue="binance")
        r.clock.set(CASCADE + HOUR + GRACE)
        _wait(lambda: r.fx.log.count(venue="binance") > before, 20, "the cascade hour's fetch to start")
        a.kill9()
        r.fx.clear_faults()
        r.published_hours.append(CASCADE + HOUR)
        r.clock.set(CASCADE + 3 * HOUR + GRACE)  # down while two more hours close
        r.published_hours += [CASCADE + 2 * HOUR, CASCADE + 3 * HOUR]
        b = r.start_daemon("b", **lease)  # host:pid differs: a follower until a's lease runs out
        r.drive(CASCADE + 3 * HOUR, CASCADE + 4 * HOUR)  # the catch-up and one more hour, as a follower
        client = r.redis_client()
        holder = client.get(f"{r.prefix}:leader")
        assert holder == a.settings["daemon"]["instance_id"].encode(), (
            f"scenario void: the dead process's lease was gone ({holder!r}) before the catch-up ran"
        )
        b_id = b.settings["daemon"]["instance_id"].encode()
        _wait(lambda: client.get(f"{r.prefix}:leader") == b_id, 45, "the restarted daemon to take the lease")
        client.close()
        r.drive(CASCADE + 5 * HOUR, CASCADE + 7 * HOUR)
        r.wait_alerts_settled()
        v = r.judge()
        record.update(v.as_dict())
        assert_kept(v, r)


def test_two_replicas_fail_over_without_losing_or_doubling_an_alert(
    fault_tmp: Path, record: dict[str, Any]
) -> None:
    """Two replicas on one Redis; the leader is killed just before the cascade (finding 2): the standby takes
    over within its lease and every alert arrives exactly once."""
    with rig(fault_tmp, market(CASCADE)) as r:
        a = r.start_daemon("a", data_dir=str(fault_tmp / "data-a"))
        b = r.start_daemon("b", data_dir=str(fault_tmp / "data-b"))
        r.oracle_data_dir = fault_tmp / "data-b"
        r.drive(T0, CASCADE - HOUR)
        a.kill9()
        r.drive(CASCADE, CASCADE + 7 * HOUR)
        r.wait_alerts_settled()
        assert b.alive, f"the standby died:\n{b.tail()}"
        v = r.judge()
        record.update(v.as_dict())
        assert_kept(v, r)


def test_kill9_mid_send_allows_one_possibly_repeated_resend(fault_tmp: Path, record: dict[str, Any]) -> None:
    """kill -9 between Telegram's accept and riskd's record of it: after a restart the alert is re-sent once
    headed "possibly repeated", every other alert once."""
    with rig(fault_tmp, market(CASCADE)) as r:
        a = r.start_daemon("a")
        r.drive(T0, CASCADE - HOUR)
        r.tg.hang_next(record=True)  # the next alert is delivered, and the answer never comes
        r.advance(CASCADE)
        _wait(lambda: r.tg.hanging >= 1, 30, "an alert send to hang")
        a.kill9()
        r.start_daemon("b")
        r.drive(CASCADE + HOUR, CASCADE + 7 * HOUR)
        r.wait_alerts_settled()
        v = r.judge()
        record.update(v.as_dict())
        repeated = [s for s in r.delivered() if s.repeated]
        if not repeated:
            v.add("the interrupted alert was not re-sent with the 'possibly repeated' header")
        assert_kept(v, r)


@pytest.mark.parametrize("state", ["retrying", "offline"])
def test_sigterm_while_retrying_or_offline_exits_0_within_seconds(
    fault_tmp: Path, record: dict[str, Any], state: str
) -> None:
    """SIGTERM during a cycle stuck in venue retries, or offline (finding 6): exit status 0 within 5 s."""
    record["scenario"] = f"sigterm_{state}"
    with rig(fault_tmp, market(CASCADE), telegram=False) as r:
        slow_retries = {"attempts": 6, "initial_backoff_s": 0.5, "max_backoff_s": 2.0, "jitter_s": 0.0}
        if state == "offline":
            dead = f"http://127.0.0.1:{free_port()}"
            venues = {v: {"api_url": dead} for v in ("binance", "bybit", "hyperliquid")}
            d = r.start_daemon(venues=venues, retry=slow_retries)
            time.sleep(2.0)  # the first cycle is retrying against nothing
        else:
            d = r.start_daemon(retry=slow_retries)
            r.drive(T0, T0 + HOUR)
            r.fx.inject("server_error", venue="binance")
            before = r.fx.log.count(venue="binance", status=503)
            r.clock.set(T0 + 3 * HOUR + GRACE)
            _wait(lambda: r.fx.log.count(venue="binance", status=503) > before + 3, 20, "retries to start")
        code, took = d.terminate(timeout=20)
        record.update({"hours_lost": 0, "alerts_lost": 0, "duplicates": 0, "stale_as_fresh": 0})
        log = d.log()
        assert code == 0, f"SIGTERM {state}: exit {code} (want 0)\n" + "\n".join(log.splitlines()[-25:])
        assert took < 5.0, (
            f"SIGTERM {state}: exit {code} after {took:.1f}s (want 0 within 5 s)\n"
            + "\n".join(log.splitlines()[-25:])
        )
        assert "Traceback" not in log, f"a traceback at shutdown:\n{log[-3000:]}"


def _leader(r: Any) -> str:
    client = r.redis_client()
    try:
        raw = client.get(f"{r.prefix}:leader")
    finally:
        client.close()
    return raw.decode() if raw else ""


def _shared(r: Any) -> tuple[str | None, str | None]:
    """(the funding table's as_of, the alert cursor) as Redis holds them."""
    client = r.redis_client()
    try:
        funding, cursor = client.get(f"{r.prefix}:funding"), client.get(f"{r.prefix}:alerts:cursor")
    finally:
        client.close()
    as_of = json.loads(funding)["as_of"] if funding else None
    return as_of, cursor.decode() if cursor else None


def _mark_funding(r: Any) -> None:
    """Add a field to the funding table Redis holds (readers ignore added fields), keeping its expiry."""
    client = r.redis_client()
    try:
        key = f"{r.prefix}:funding"
        table = json.loads(client.get(key) or b"{}")
        client.set(key, json.dumps({**table, "zombie_probe": True}), keepttl=True)
    finally:
        client.close()


def _funding_marked(r: Any) -> bool:
    """The mark is still there: nobody wrote the funding table since :func:`_mark_funding`."""
    client = r.redis_client()
    try:
        return bool(json.loads(client.get(f"{r.prefix}:funding") or b"{}").get("zombie_probe"))
    finally:
        client.close()


def _stream_id(entry: str | None) -> tuple[int, int]:
    ms, _, seq = (entry or "0-0").partition("-")
    return int(ms), int(seq or 0)


def test_a_zombie_leader_resumed_mid_publish_writes_nothing(fault_tmp: Path, record: dict[str, Any]) -> None:
    """Issue 19, case 1: the leader is SIGSTOPped in the middle of publishing an hour (its own link to Redis
    answers 0.3 s late for that cycle and the stop lands while it waits, every run), past its lease; the
    standby takes over and publishes the cascade; then the old leader is SIGCONTinued and its cycle goes on
    where it stopped: the funding table, the alert cursor, the alerts. Before fencing it overwrote the
    standby's newer funding table with its older one; now Redis refuses its writes and it steps down."""
    with rig(fault_tmp, market(CASCADE)) as r:
        link = TcpGate(r.redis.port)  # a's own path to Redis, so only a's replies are slowed
        try:
            a = r.start_daemon(
                "a", data_dir=str(fault_tmp / "data-a"), redis={"url": f"redis://127.0.0.1:{link.port}/0"}
            )
            b = r.start_daemon("b", data_dir=str(fault_tmp / "data-b"))
            r.oracle_data_dir = fault_tmp / "data-b"
            r.drive(T0, CASCADE - 2 * HOUR)
            _wait(lambda: _leader(r).startswith("a-"), 10, "a to lead")
            link.watch = b'"type":"regime"'  # the publish script's event: a is writing the hour
            link.reply_delay_s = 0.3
            r.clock.set(CASCADE + GRACE)  # the hour before the cascade closes
            r.published_hours.append(CASCADE)
            assert link.seen.wait(20), f"a never published the hour:\n{a.tail()}"
            os.kill(a.proc.pid, signal.SIGSTOP)  # while it waits for the reply
            link.reply_delay_s = 0.0
            try:
                _wait(lambda: _leader(r).startswith("b-"), 20, "b to take the lease")
                _wait(lambda: (b.computed_through() or T0) >= CASCADE, 30, "b to publish the paused hour")
                r.drive(CASCADE, CASCADE + 2 * HOUR, daemons=[b])
                r.wait_alerts_settled()
                funding, cursor = _shared(r)
                _mark_funding(r)  # only a writer can remove the mark before the clock moves again
            finally:
                os.kill(a.proc.pid, signal.SIGCONT)
            _wait(
                lambda: (a.computed_through() or T0) >= CASCADE + 3 * HOUR, 60, "a to catch up after SIGCONT"
            )
            time.sleep(2.0)
            funding_after, cursor_after = _shared(r)
            zombie_wrote_funding = not _funding_marked(r)
            r.drive(CASCADE + 3 * HOUR, CASCADE + 7 * HOUR)
            r.wait_alerts_settled()
            assert a.alive, f"the resumed replica died:\n{a.tail()}"
            log_a = a.log()
            v = r.judge()
            record.update(v.as_dict())
            if funding and funding_after and pd.Timestamp(funding_after) < pd.Timestamp(funding):
                v.add(
                    f"the resumed zombie overwrote the funding table with an older one ({funding_after} < {funding})"
                )
            if zombie_wrote_funding:
                v.add("the resumed zombie wrote the funding table over the standby's")
            if _stream_id(cursor_after) < _stream_id(cursor):
                v.add(f"the alert cursor moved back ({cursor} -> {cursor_after})")
            if "no longer the leader" not in log_a:
                v.add("the resumed zombie never said it stepped down")
            record["fenced"] = "was fenced" in log_a
            assert_kept(v, r)
        finally:
            link.stop()
