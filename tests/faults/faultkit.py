"""The fault rig: the real daemon in a subprocess on a shared, test-driven clock, with its world around it.

One rig per scenario owns a private redis-server (killable, restartable, fillable), the loopback fake
exchange (real ccxt clients talk to it), the fake Telegram Bot API behind a TCP gate that can refuse
connections (Telegram "down"), and the daemon processes. The clock is a small file holding epoch
seconds: the daemon reads it through :class:`FileClock`, the fake exchange reads the same file, and
the test moves it hour by hour, waiting for each daemon to show the hour on ``/regime``. Time thus
survives kill -9 and restarts, and a slow machine makes a scenario slower, never different.

The oracle is the batch path over the daemon's store (``store_panel`` → ``compute_fragility`` →
``snapshots_of`` → ``derive_alerts``), compared with the published stream (highest revision per
hour) and with what the fake Telegram recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

HOUR = pd.Timedelta(hours=1)
GRACE = pd.Timedelta(seconds=20)
NO_TIME = pd.Timedelta(0)
SYMS = ["BTC", "ETH", "SOL", "XRP", "DOGE"]
VENUES = ("binance", "bybit", "hyperliquid")
T0 = pd.Timestamp("2024-03-01", tz="UTC")
CHAT = -100777
OPERATOR = 4711
TOKEN = "123456:FAULTSUITE-not-a-real-token"
LAUNCHER = Path(__file__).with_name("_daemon.py")


# ---- the shared clock --------------------------------------------------------------------------------


class FileClock:
    """Simulated time read from a file, so several processes (and restarts) share one timeline.

    ``sleep_until`` polls the file: the daemon wakes when the test moves the clock, not before.
    ``offset_s``: this clock reads the shared time plus that many seconds — a host whose clock is off the
    venues' (the fake exchange reads the file as it is, the venues' true time).
    """

    def __init__(self, path: Path | str, offset_s: float = 0.0) -> None:
        self.path = Path(path)
        self.offset = pd.Timedelta(seconds=offset_s)

    def now(self) -> pd.Timestamp:
        return pd.Timestamp(float(self.path.read_text()), unit="s", tz="UTC") + self.offset

    def set(self, when: pd.Timestamp) -> None:
        """Move the clock so that it reads ``when`` (atomically: a reader never sees half a number)."""
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(repr((pd.Timestamp(when) - self.offset).timestamp()))
        os.replace(tmp, self.path)

    async def sleep_until(self, when: pd.Timestamp, stop: asyncio.Event) -> None:
        while not stop.is_set() and self.now() < when:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.02)


# ---- Telegram "down": a TCP gate in front of the fake ------------------------------------------------


class TcpGate:
    """A loopback TCP forwarder on a fixed port; ``close()`` refuses connections, ``open()`` serves again."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.reply_delay_s = 0.0
        """Hold each chunk from the target this long before passing it on (a slow link's replies)."""
        self.watch: bytes | None = None
        """When a request to the target contains these bytes, ``seen`` is set (and ``watch`` cleared)."""
        self.seen = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-gate", daemon=True)
        self._thread.start()
        self.open()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                if upstream and self.watch is not None and self.watch in data:
                    self.watch = None
                    self.seen.set()
                if not upstream and self.reply_delay_s:
                    await asyncio.sleep(self.reply_delay_s)
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer, upstream=True), self._pipe(up_reader, writer, upstream=False)
        )
        self._writers -= {writer, up_writer}

    async def _open(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            with contextlib.suppress(Exception):
                w.close()
        self._writers.clear()

    def open(self) -> None:
        """Accept connections (again, on the same port)."""
        self._call(self._open())

    def close(self) -> None:
        """Refuse new connections and cut the open ones: Telegram is unreachable."""
        self._call(self._close())

    def stop(self) -> None:
        """Close and end the gate's thread."""
        self.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


# ---- the daemon process -----------------------------------------------------------------------------


class DaemonProc:
    """One ``riskd`` daemon launched by ``_daemon.py``; its log goes to a file the failure messages quote."""

    def __init__(
        self, rig: FaultRig, name: str, settings: dict[str, Any], clock_offset_s: float = 0.0
    ) -> None:
        self.rig, self.name, self.settings = rig, name, settings
        base = rig.tmp / f"daemon-{name}-{uuid.uuid4().hex[:6]}"
        base.mkdir(parents=True)
        self.settings_path = base / "settings.json"
        self.settings_path.write_text(json.dumps(settings))
        self.ready_path = base / "ready.json"
        self.log_path = base / "daemon.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(LAUNCHER),
                "--settings",
                str(self.settings_path),
                "--clock",
                str(rig.clock.path),
                "--ready",
                str(self.ready_path),
                "--clock-offset-s",
                repr(clock_offset_s),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
        self.metrics_port: int | None = None
        self.exit_code: int | None = None

    def log(self) -> str:
        """Everything the daemon wrote so far."""
        return self.log_path.read_text(errors="replace")

    def tail(self, n: int = 40) -> str:
        """The last lines of the log, for failure messages."""
        return "\n".join(self.log().splitlines()[-n:])

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = 90.0) -> DaemonProc:
        """Until the daemon is up (lease ticked, metrics listening)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_path.exists():
                info = json.loads(self.ready_path.read_text())
                self.metrics_port = info["metrics_port"]
                return self
            if not self.alive:
                raise AssertionError(
                    f"daemon {self.name} exited with {self.proc.returncode} before it was ready:\n{self.tail()}"
                )
            time.sleep(0.05)
        raise AssertionError(f"daemon {self.name} not ready within {timeout}s:\n{self.tail()}")

    def get(self, path: str, timeout: float = 2.0) -> tuple[int, dict[str, Any] | None]:
        """GET on the daemon's metrics server: (status, JSON body or None); (0, None) when unreachable."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as err:
            with contextlib.suppress(ValueError):
                return err.code, json.loads(err.read() or b"null")
            return err.code, None
        except (OSError, ValueError):
            return 0, None

    def computed_through(self) -> pd.Timestamp | None:
        """``as_of`` of the newest hour the daemon computed (``/regime`` serves it even with Redis down;
        a stale one comes as 503 with the hour under ``last_snapshot``, never as the current regime)."""
        status, body = self.get("/regime")
        if not body:
            return None
        if status == 200 and "as_of" in body:
            return pd.Timestamp(body["as_of"])
        last = body.get("last_snapshot") if isinstance(body, dict) else None
        if status == 503 and isinstance(last, dict) and "as_of" in last:
            return pd.Timestamp(last["as_of"])
        return None

    def kill9(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.exit_code = self.proc.returncode

    def terminate(self, timeout: float = 20.0) -> tuple[int | None, float]:
        """SIGTERM and wait; (exit code or None if it had to be killed, seconds it took)."""
        if not self.alive:
            self.exit_code = self.proc.returncode
            return self.exit_code, 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            return None, time.monotonic() - t0
        return self.exit_code, time.monotonic() - t0

    def close(self) -> None:
        """Whatever state it is in, end it."""
        if self.alive:
            self.terminate(5.0)
        self._log.close()


# ---- parsing what Telegram recorded -----------------------------------------------------------------

AlertKey = tuple[str, str, str]
"""(kind, as_of 'YYYY-MM-DD HH:MM', detail): detail is the target state of a regime change, the episode
of a cascade start/end, empty otherwise."""

_KINDS = (
    ("Cascade episode ended", "cascade_end"),
    ("Cascade started", "cascade_start"),
    ("Data stale", "data_stale"),
    ("Data recovered", "data_recovered"),
    ("Regime ", "regime_change"),
)


@dataclass(frozen=True)
class SeenAlert:
    """One alert message as the chat shows it."""

    key: AlertKey
    repeated: bool
    late: bool
    silent: bool
    text: str
    upgrade: bool = False
    """An upgrade of an earlier, weaker alert of the same event (corrected data raised it)."""


def parse_alert(text: str, silent: bool = False) -> SeenAlert | None:
    """An alert's identity from its message text (None: not an alert, e.g. a command reply)."""
    hour = re.search(r"Hour ending (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", text)
    head = next((ln for ln in text.splitlines() if " · " in ln), "")
    kind = next((k for marker, k in _KINDS if marker in head), None)
    if hour is None or kind is None:
        return None
    detail = ""
    if kind == "regime_change" and (m := re.search(r"Regime (\w+) → (\w+)", head)):
        detail = m.group(2)
    elif (kind == "cascade_start" and (m := re.search(r"Episode (\S+):", text))) or (
        kind == "cascade_end" and (m := re.search(r"Episode (\S+) is over", text))
    ):
        detail = m.group(1)
    return SeenAlert(
        key=(kind, hour.group(1), detail),
        repeated="[possibly repeated" in text,
        late=bool(re.search(r"LATE|late|restat", head + text.split("\n", 2)[0])),
        silent=silent,
        text=text,
        upgrade="(upgraded from " in head,
    )


def alert_key(alert: Any) -> AlertKey:
    """The same identity for a derived ``riskd.contract.models.Alert``."""
    detail = ""
    if alert.kind == "regime_change":
        detail = str(alert.figures.get("to", ""))
    elif alert.kind in ("cascade_start", "cascade_end"):
        detail = alert.episode_id or ""
    return (alert.kind, f"{alert.as_of:%Y-%m-%d %H:%M}", detail)


# ---- the verdict ------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """What one scenario measured against the promises; ``problems`` says what broke, readably."""

    hours_lost: int = 0
    alerts_lost: int = 0
    duplicates: int = 0
    stale_as_fresh: int = 0
    mismatched_hours: int = 0
    repeated_resends: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, problem: str) -> None:
        self.problems.append(problem)

    def as_dict(self) -> dict[str, Any]:
        return {
            "hours_lost": self.hours_lost,
            "alerts_lost": self.alerts_lost,
            "duplicates": self.duplicates,
            "stale_as_fresh": self.stale_as_fresh,
            "mismatched_hours": self.mismatched_hours,
            "repeated_resends": self.repeated_resends,
            "problems": len(self.problems),
        }


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


def snapshot_diff(live: Any, batch: Any) -> str | None:
    """Where a published snapshot differs from the batch one (the live=batch tests' tolerance)."""
    got = (live.state, live.risk_multiplier, live.cascade_level, live.episode_id, live.cfi_quintile)
    want = (batch.state, batch.risk_multiplier, batch.cascade_level, batch.episode_id, batch.cfi_quintile)
    if got != want:
        return f"(state, multiplier, level, episode, quintile) published {got}, batch {want}"
    if not _close(live.cfi, batch.cfi):
        return f"cfi published {live.cfi}, batch {batch.cfi}"
    if not _close(live.cfi_percentile, batch.cfi_percentile):
        return f"cfi_percentile published {live.cfi_percentile}, batch {batch.cfi_percentile}"
    for name, value in batch.features.items():
        if not _close(live.features.get(name), value):
            return f"feature {name} published {live.features.get(name)}, batch {value}"
    return None


# ---- the rig ----------------------------------------------------------------------------------------


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in, nested dicts key by key."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class FaultRig:
    """Everything one scenario runs against; see the module docstring."""

    def __init__(
        self, tmp: Path, history: Any, *, telegram: bool = True, redis_port: int | None = None
    ) -> None:
        from riskd.daemon.embedded import RedisServer
        from riskd.testing.fake_exchange import FakeExchange
        from riskd.testing.fake_telegram import FakeTelegram

        self.tmp = tmp
        self.history = history
        self.clock = FileClock(tmp / "clock")
        self.clock.set(T0)
        self.prefix = "riskd-faults:v1"
        self.data_dir = tmp / "data"
        self.oracle_data_dir = (
            self.data_dir
        )  # whose store the batch oracle reads (a survivor's, in fail-over)
        self.redis = RedisServer(port=redis_port, data_dir=tmp / "redis", persist=True).start()
        self.fx = FakeExchange(history, now=self.clock.now).start_in_thread()
        self.tg: Any = None
        self.gate: TcpGate | None = None
        if telegram:
            self.tg = FakeTelegram(token=TOKEN).start_in_thread()
            self.gate = TcpGate(self.tg.port)
        self.daemons: list[DaemonProc] = []
        self.published_hours: list[pd.Timestamp] = []  # as_of of every hour the scenario drove
        self.late_seconds: dict[pd.Timestamp, float] = {}  # wall seconds from hour close to /regime

    # -- parts ----------------------------------------------------------------------------------------

    def settings(self, **extra: Any) -> dict[str, Any]:
        """The daemon's settings for speed: tiny lease, fast retries, no cooldown (the oracle is exact)."""
        venue = {"api_url": self.fx.base_url, "rate_limit_ms": 1, "max_concurrency": 8, "timeout_s": 2.0}
        base: dict[str, Any] = {
            "data_dir": str(self.data_dir),
            "log_level": "INFO",
            "universe": {"symbols": SYMS},
            "venues": {v: dict(venue) for v in VENUES},
            "redis": {"url": self.redis.url, "key_prefix": self.prefix, "socket_timeout_s": 0.5},
            "metrics": {"port": 0},
            "daemon": {
                "warmup_hours": 240,
                "grace_s": GRACE.total_seconds(),
                "lease_ttl_s": 2.0,
                "shutdown_deadline_s": 15.0,
            },
            "retry": {"attempts": 3, "initial_backoff_s": 0.01, "max_backoff_s": 0.02, "jitter_s": 0.0},
            "alerts": {"cooldown_s": 0.0},
        }
        if self.gate is not None:
            base["telegram"] = {
                "token": TOKEN,
                "chat_ids": [CHAT],
                "allowed_ids": [OPERATOR],
                "api_base_url": f"http://127.0.0.1:{self.gate.port}",
                "retry_interval_s": 1.0,
            }
        return deep_merge(base, extra)

    def start_daemon(self, name: str = "a", *, clock_offset_s: float = 0.0, **extra: Any) -> DaemonProc:
        """Launch a daemon (a new instance id each time, as host:pid would be) and wait until it is up.
        ``clock_offset_s``: its clock runs that many seconds off the shared one (the venues')."""
        extra = deep_merge({"daemon": {"instance_id": f"{name}-{uuid.uuid4().hex[:6]}"}}, extra)
        d = DaemonProc(self, name, self.settings(**extra), clock_offset_s)
        self.daemons.append(d)
        return d.wait_ready()

    def redis_client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.redis.url, socket_timeout=5)

    # -- time -----------------------------------------------------------------------------------------

    def advance(
        self,
        hour: pd.Timestamp,
        daemons: list[DaemonProc] | None = None,
        timeout: float = 30.0,
        past: pd.Timedelta = NO_TIME,
    ) -> float:
        """Close the candle opened at ``hour`` (clock to its close plus grace, plus ``past``: a daemon whose
        clock is slow sees the close that much later) and wait until every given daemon shows it on
        /regime; returns the wall seconds that took (``timeout`` when it did not)."""
        self.clock.set(hour + HOUR + GRACE + past)
        as_of = hour + HOUR
        self.published_hours.append(as_of)
        daemons = [d for d in (daemons if daemons is not None else self.daemons) if d.alive]
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if all((d.computed_through() or T0 - 1000 * HOUR) >= as_of for d in daemons):
                break
            time.sleep(0.02)
        took = time.monotonic() - t0
        self.late_seconds[as_of] = took
        return took

    def drive(self, first: pd.Timestamp, last: pd.Timestamp, **kw: Any) -> None:
        """``advance`` through every hour from ``first`` to ``last`` (open times, inclusive)."""
        for hour in pd.date_range(first, last, freq="h"):
            self.advance(hour, **kw)

    # -- reading the outcome ---------------------------------------------------------------------------

    def stream_entries(self) -> list[tuple[str, dict[str, Any]]]:
        """Every history stream entry (id, parsed JSON), oldest first."""
        client = self.redis_client()
        try:
            raw = client.xrange(f"{self.prefix}:regime:history", "-", "+")
        finally:
            client.close()
        return [(i.decode(), json.loads(f[b"json"])) for i, f in raw]

    def published(self) -> dict[pd.Timestamp, Any]:
        """The published stream: per ``as_of`` the entry with the highest revision."""
        from riskd.contract.models import Snapshot

        best: dict[pd.Timestamp, tuple[int, dict[str, Any]]] = {}
        for _, body in self.stream_entries():
            rev = int(body.get("revision", 0) or 0)
            ts = pd.Timestamp(body["as_of"])
            if ts not in best or rev >= best[ts][0]:
                best[ts] = (rev, body)
        known = set(Snapshot.model_fields)
        return {
            ts: Snapshot.model_validate({k: v for k, v in b.items() if k in known})
            for ts, (_, b) in best.items()
        }

    def first_revisions(self) -> dict[pd.Timestamp, dict[str, Any]]:
        """Per ``as_of`` the first entry published (what readers saw at the time)."""
        out: dict[pd.Timestamp, dict[str, Any]] = {}
        for _, body in self.stream_entries():
            out.setdefault(pd.Timestamp(body["as_of"]), body)
        return out

    def delivered(self) -> list[SeenAlert]:
        """The alerts the chat received, in order."""
        if self.tg is None:
            return []
        out = []
        for m in self.tg.messages_to(CHAT):
            seen = parse_alert(m.text, m.disable_notification)
            if seen is not None:
                out.append(seen)
        return out

    def wait_alerts_settled(self, timeout: float = 30.0, quiet_s: float = 2.0) -> None:
        """Until the outbox is empty and the chat got nothing new for ``quiet_s`` (or ``timeout``)."""
        client = self.redis_client()
        deadline = time.monotonic() + timeout
        last_n, last_change = -1, time.monotonic()
        cap = self.clock.now().floor("h") + HOUR - pd.Timedelta(seconds=1)  # no new cycle while we wait
        try:
            while time.monotonic() < deadline:
                # market time keeps moving (60x), as it would: retries deferred in it come due
                self.clock.set(min(cap, self.clock.now() + pd.Timedelta(seconds=6)))
                n = len(self.tg.delivered) if self.tg is not None else 0
                if n != last_n:
                    last_n, last_change = n, time.monotonic()
                try:
                    pending = client.zcard(f"{self.prefix}:alerts:due")
                except Exception:  # Redis may be the fault under test
                    pending = 1
                if pending == 0 and time.monotonic() - last_change >= quiet_s:
                    return
                time.sleep(0.1)
        finally:
            client.close()

    def batch(self, last_as_of: pd.Timestamp) -> dict[pd.Timestamp, Any]:
        """The batch path over the daemon's store, per ``as_of`` through ``last_as_of``."""
        from riskd.config import load_settings
        from riskd.contract.snapshot import snapshots_of
        from riskd.core import compute_fragility
        from riskd.market import store_panel
        from riskd.store import HistoryStore

        settings = load_settings(**self.settings(data_dir=str(self.oracle_data_dir)))
        store = HistoryStore(settings.store_dir)
        client = self.redis_client()
        try:  # the history origin every replica ranks from (riskd.daemon.Daemon._settle_origin)
            origin = client.get(f"{self.prefix}:history:origin")
        finally:
            client.close()
        start = pd.Timestamp(origin.decode()) if origin else None
        panel = store_panel(store, settings.fragility, SYMS, VENUES, last_as_of - HOUR, start=start)
        assert panel is not None, "the store holds no BTC candles: the daemon never wrote its history"
        frame = compute_fragility(panel, settings.fragility)
        snaps = snapshots_of(frame, computed_at=pd.Timestamp(last_as_of).to_pydatetime())
        return {pd.Timestamp(s.as_of): s for s in snaps}

    def stop_all(self) -> None:
        """End every daemon (SIGTERM, then SIGKILL) so the store is complete for the oracle."""
        for d in self.daemons:
            d.close()

    def judge(
        self,
        *,
        first_as_of: pd.Timestamp | None = None,
        last_as_of: pd.Timestamp | None = None,
        stale_hours: tuple[pd.Timestamp, ...] = (),
        modes: dict[str, str] | None = None,
        check_alerts: bool = True,
    ) -> Verdict:
        """Measure the five promises over [first_as_of, last_as_of] (default: the hours the scenario drove).

        ``stale_hours``: as_of of hours computed while the primary venue was unreachable or stalled;
        their first publication must not say ``ok``.
        """
        from riskd.client import interpret
        from riskd.contract.alerts import derive_alerts

        self.stop_all()
        v = Verdict()
        hours = sorted(set(self.published_hours))
        first = first_as_of or hours[0]
        last = last_as_of or hours[-1]
        window = [h for h in pd.date_range(first, last, freq="h")]
        pub = self.published()
        lost = [h for h in window if h not in pub]
        v.hours_lost = len(lost)
        if lost:
            v.add(f"{len(lost)} hour(s) missing from the stream: {[f'{h:%m-%d %H:%M}' for h in lost[:8]]}")
        batch = self.batch(last)
        for h in window:
            if h in pub and h in batch and (diff := snapshot_diff(pub[h], batch[h])):
                v.mismatched_hours += 1
                if v.mismatched_hours <= 4:
                    v.add(f"stream != batch at {h:%m-%d %H:%M}: {diff}")
        if v.mismatched_hours > 4:
            v.add(f"... stream != batch at {v.mismatched_hours} hour(s) in all")
        # stale data must never reach a reader as ok
        firsts = self.first_revisions()
        for h in stale_hours:
            body = firsts.get(h)
            if body is not None and body["data_quality"]["status"] == "ok":
                v.stale_as_fresh += 1
                v.add(f"hour {h:%m-%d %H:%M} computed while the primary venue was stale was published 'ok'")
        for h, body in firsts.items():
            if body["data_quality"]["status"] == "stale":
                reading = interpret(json.dumps(body), now=pd.Timestamp(h).to_pydatetime() + GRACE)
                if reading.ok:
                    v.stale_as_fresh += 1
                    v.add(
                        f"read_regime/interpret calls the stale-data hour {h:%m-%d %H:%M} 'ok / {reading.reason}'"
                    )
        if check_alerts:
            self._judge_alerts(v, window, batch, modes or {}, derive_alerts)
        return v

    def _judge_alerts(
        self,
        v: Verdict,
        window: list[pd.Timestamp],
        batch: dict[pd.Timestamp, Any],
        modes: dict[str, str],
        derive: Any,
    ) -> None:
        from riskd.config import load_settings

        alert_modes = load_settings(**self.settings(alerts=modes)).alerts
        from riskd.contract.alerts import blind

        expected: set[AlertKey] = set()
        prev = known = None
        for h in window:
            cur = batch.get(h)
            if cur is None:
                continue
            for a in derive(prev, cur, now=cur.as_of, known=known):
                if a.kind.startswith("data_") or getattr(alert_modes, a.kind) == "off":
                    continue
                expected.add(alert_key(a))
            prev = cur
            known = cur if not blind(cur) else known
        self.expected_alerts = expected
        seen = [s for s in self.delivered() if pd.Timestamp(s.key[1], tz="UTC") in set(window)]
        counts = Counter(s.key for s in seen)
        repeats = Counter(s.key for s in seen if s.repeated)
        upgrades = Counter(s.key for s in seen if s.upgrade)
        got = set(counts)
        missing = sorted(expected - got)
        v.alerts_lost = len(missing)
        if missing:
            v.add(f"{len(missing)} alert(s) never delivered: {missing}")
        for key, n in counts.items():
            # one documented "possibly repeated" re-send; an upgrade (corrected data raised it) is its own
            allowed = 1 + min(1, repeats[key]) + upgrades[key]
            v.repeated_resends += min(1, repeats[key])
            if n > allowed:
                v.duplicates += n - allowed
                v.add(f"alert {key} delivered {n} times ({repeats[key]} marked possibly repeated)")
        extra = sorted(got - expected)
        if extra and not missing and not v.duplicates:
            pass  # superseded alerts of restated hours are allowed; they are listed on failure only
        self.extra_alerts = extra


@contextlib.contextmanager
def rig(tmp: Path, history: Any, **kw: Any) -> Iterator[FaultRig]:
    """A FaultRig torn down whatever happens (daemons, fakes, Redis)."""
    r = FaultRig(tmp, history, **kw)
    try:
        yield r
    finally:
        for d in r.daemons:
            with contextlib.suppress(Exception):
                if d.alive:
                    d.kill9()
                d.close()
        with contextlib.suppress(Exception):
            r.fx.stop()
        if r.gate is not None:
            with contextlib.suppress(Exception):
                r.gate.stop()
        if r.tg is not None:
            with contextlib.suppress(Exception):
                r.tg.stop_thread()
        with contextlib.suppress(Exception):
            r.redis.stop()


def market(cascade_at: pd.Timestamp, *, drop: float = 0.07, vol: float = 6.0, hours_after: int = 48) -> Any:
    """The synthetic market every scenario serves: 12 days of warm-up before T0, one planted cascade."""
    from riskd.testing.synthetic import synthetic_market

    return synthetic_market(
        SYMS,
        T0 - pd.Timedelta(days=12),
        hours=12 * 24 + hours_after,
        seed=3,
        cascades=[(cascade_at, drop, vol, None)],
        funding_intervals={"DOGE": 4},
    )


def explain(v: Verdict, rig_: FaultRig, extra: str = "") -> str:
    """A failure message: what broke, what the chat got, the daemon's last log lines."""
    chat = [f"  {'(rep) ' if s.repeated else ''}{s.key}" for s in rig_.delivered()]
    logs = "\n".join(
        f"--- daemon {d.name} (exit {d.proc.returncode}) ---\n{d.tail(15)}" for d in rig_.daemons
    )
    return (
        "promises broken:\n  - "
        + "\n  - ".join(v.problems)
        + f"\nexpected alerts: {sorted(getattr(rig_, 'expected_alerts', set()))}"
        + "\nchat received:\n"
        + ("\n".join(chat) or "  (nothing)")
        + (f"\n{extra}" if extra else "")
        + f"\n{logs}"
    )


def assert_kept(v: Verdict, rig_: FaultRig, extra: str = "") -> None:
    """Fail the scenario with the readable account when any promise broke."""
    import pytest

    if v.problems:
        pytest.fail(explain(v, rig_, extra), pytrace=False)


def now_dt(ts: pd.Timestamp) -> datetime:
    """A pandas timestamp as the datetime the client API takes."""
    return pd.Timestamp(ts).to_pydatetime()
