"""Provisional episodes: the minute side's "cascade developing" alert of an hour, and how the hour close
settles it.

The first minute of an hour whose level reaches ``alert_level`` raises one ``cascade_developing`` alert
(one provisional episode per hour). The episode is kept in ``<prefix>:regime:live:episodes`` (typed JSON)
so a restart or another replica settles it. Settling: once the hourly snapshot of that hour is in the
history stream, a cascade there (any BTC level, the multi-asset detector, or the cascade state) confirms
the episode. The hourly path's own cascade alert then goes out as a reply in the same thread; when the hour
raised no such alert (an episode already running) a short "confirmed" reply is sent instead. Otherwise a
"retracted" reply. With no snapshot ``confirm_wait_s`` after the hour, it is retracted as unconfirmed.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from riskd.contract.alerts import blind, cascade_thread, derive_alerts
from riskd.contract.codec import read_entry
from riskd.contract.models import Alert, Snapshot

log = logging.getLogger("riskd.streams")

HOUR_MS = 3_600_000
FIGURES = ("btc_ret_5m", "btc_ret_15m", "btc_ret_60m", "vol_surge", "breadth", "liq_usd_window", "liq_surge")
"""The detector's features an alert and ``regime:live`` quote."""


@dataclass(frozen=True)
class Episode:
    """One hour's provisional episode, as kept in Redis."""

    episode_id: str
    as_of: str  # the hour's close, ISO
    fired_at: str  # close of the minute that fired, ISO
    level: str

    @classmethod
    def of(cls, as_of: pd.Timestamp, fired_at: pd.Timestamp, level: str) -> Episode:
        """The episode of the hour closing at ``as_of``, fired at the close of minute ``fired_at``."""
        return cls(f"prov-{as_of:%Y%m%dT%H%M}", as_of.isoformat(), fired_at.isoformat(), level)

    @classmethod
    def from_json(cls, raw: str) -> Episode:
        """Tolerant of fields a newer riskd adds."""
        data = json.loads(raw)
        return cls(str(data["episode_id"]), str(data["as_of"]), str(data["fired_at"]), str(data["level"]))

    def to_json(self) -> str:
        """As stored in ``<prefix>:regime:live:episodes``."""
        return json.dumps(asdict(self))


def figures(feats: pd.Series) -> dict[str, float | None]:
    """The quoted features of one minute, JSON-ready (NaN becomes null)."""
    out: dict[str, float | None] = {}
    for k in FIGURES:
        v = feats.get(k)
        out[k] = None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 6)
    return out


def figures_line(f: dict[str, Any]) -> str:
    """'BTC 5m -2.0% · BTC 15m -2.8% · volume ×1.7 · alts falling 100% · liquidations $2.8M'."""
    parts = [
        f"BTC {k} {f[f'btc_ret_{k}'] * 100:+.1f}%"
        for k in ("5m", "15m", "60m")
        if f.get(f"btc_ret_{k}") is not None
    ]
    if f.get("vol_surge") is not None:
        parts.append(f"volume ×{f['vol_surge']:.1f}")
    if f.get("breadth") is not None:
        parts.append(f"alts falling {f['breadth']:.0%}")
    if f.get("liq_usd_window") is not None:
        parts.append(f"liquidations ${f['liq_usd_window'] / 1e6:.1f}M")
    return " · ".join(parts)


def developing_alert(ep: Episode, feats: pd.Series) -> Alert:
    """The provisional alert of a newly fired episode, threaded for the hour close's reply."""
    as_of, fired_at = pd.Timestamp(ep.as_of), pd.Timestamp(ep.fired_at)
    figs = {"to": "developing", "level": ep.level, "minute": ep.fired_at, **figures(feats)}
    lead = (as_of - fired_at) / pd.Timedelta(minutes=1)
    body = (f"Hour ending {as_of:%Y-%m-%d %H:%M} UTC · minute {fired_at:%H:%M} ({lead:.0f} min before the close)\n"
            f"{figures_line(figs)}\nProvisional: the hour close confirms or retracts it in this thread.")  # fmt: skip
    return Alert(kind="cascade_developing", severity="critical" if ep.level == "severe" else "warning",
                 as_of=as_of.to_pydatetime(), title=f"Cascade developing (provisional, {ep.level})", body=body,
                 figures=figs, episode_id=ep.episode_id, thread=cascade_thread(as_of.to_pydatetime()))  # fmt: skip


def settlement(ep: Episode, snap: Snapshot | None, prev: Snapshot | None, now: pd.Timestamp,
               wait_s: float) -> tuple[str, Alert | None]:  # fmt: skip
    """The episode's outcome (confirmed / retracted) and the reply to send (None: the hourly path's own
    cascade alert replies in the thread already)."""
    as_of = pd.Timestamp(ep.as_of).to_pydatetime()
    confirmed = (
        snap is not None
        and not blind(snap)
        and (snap.state == "cascade" or snap.cascade_level != "none" or snap.multi_asset_cascade)
    )
    outcome = "confirmed" if confirmed else "retracted"
    thread = cascade_thread(as_of)
    if confirmed and any(a.thread == thread for a in derive_alerts(prev, snap, now=now.to_pydatetime())):  # type: ignore[arg-type]  # snap is not None when confirmed
        log.info("provisional episode %s confirmed by the hourly alert (same thread)", ep.episode_id)
        return outcome, None
    if snap is None:
        why = f"no hourly snapshot within {wait_s:.0f}s of the close"
    elif blind(snap):
        why = "riskd could not see the hour (state unknown), so it cannot confirm it"
    elif confirmed:
        why = f"hourly cascade level {snap.cascade_level}, state {snap.state}"
    else:
        why = f"the hour closed without a cascade (level {snap.cascade_level}, state {snap.state})"
    title = "Cascade confirmed at the hour close" if confirmed else "Provisional cascade alert retracted"
    reply = Alert(kind="cascade_developing", severity="warning" if confirmed else "info", as_of=as_of, title=title,
                  body=f"Hour ending {as_of:%Y-%m-%d %H:%M} UTC: {why}.",
                  figures={"to": outcome, "fired_at": ep.fired_at}, episode_id=ep.episode_id, thread=thread)  # fmt: skip
    return outcome, reply


class Episodes:
    """The open episodes (hour end in ms → :class:`Episode`), mirrored in Redis."""

    def __init__(self, client: Any, key: str, history_key: str) -> None:
        self.client = client
        self.key = key
        self.history_key = history_key
        self.open: dict[int, Episode] = {}

    async def load(self) -> None:
        """Recover the episodes a previous run (or another replica) left open."""
        raw = await self.client.hgetall(self.key)
        for k, v in raw.items():
            self.open[int(_text(k))] = Episode.from_json(_text(v))

    async def add(self, hour_end: int, ep: Episode) -> None:
        """Open the hour's episode (kept in Redis before its alert is submitted)."""
        self.open[hour_end] = ep
        await self.client.hset(self.key, str(hour_end), ep.to_json())

    async def close(self, hour_end: int) -> None:
        """The hour is settled."""
        await self.client.hdel(self.key, str(hour_end))
        del self.open[hour_end]

    async def snapshot(self, hour_end: int) -> Snapshot | None:
        """The hourly snapshot of the hour ending at ``hour_end`` (its first entry), if published."""
        rows = await self.client.xrange(self.history_key, min=f"{hour_end}-0", max=f"{hour_end}-0", count=1)
        if not rows:
            return None
        try:
            return read_entry(rows[0][1])
        except ValueError:
            return None


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
