"""Which alerts an hour raises: a pure function of the previous and current snapshot.

No I/O and no clock: ``now`` is an argument, so a replay on a simulated clock raises exactly the
alerts the live daemon would have, and a catch-up after downtime says how late it is instead of
posing as live. Delivery policy (modes, mute, cooldown, de-duplication) lives in
``riskd.alerting.pipeline``; this module only decides what happened.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from riskd.contract.models import Alert, AlertKind, Severity, Snapshot

LATE_AFTER_S = 3600.0
"""An alert raised more than this long after its hour is labelled late ("[LATE by …]")."""

_RANK: dict[str, int] = {"unknown": -1, "calm": 0, "recovery": 1, "elevated": 1, "fragile": 2, "cascade": 3}
"""Escalation order of the regime states; recovery ranks with elevated (risk is easing, not gone)."""

FEATURE_KEYS: dict[str, tuple[str, ...]] = {
    "btc_return_1h": ("btc_ret_1h", "btc_return_1h"),
    "btc_return_4h": ("btc_ret_4h", "btc_return_4h"),
    "vol_ratio": ("btc_vol_ratio", "vol_ratio"),
    "funding_z": ("agg_funding_z", "funding_z"),
}
"""Snapshot feature names read into an alert's figures: the core's column names first
(``riskd.core.output.STAGE2_COLUMNS``), then the short names the docs use."""


def derive_alerts(
    prev: Snapshot | None, cur: Snapshot, *, now: datetime, known: Snapshot | None = None
) -> list[Alert]:
    """The alerts that the step ``prev`` → ``cur`` raises, in the order they should be read.

    ``prev`` None means no earlier state is known (first start): only a dangerous state or a running
    cascade is reported then, since "calm" is not news.

    A blind hour (``unknown``: too little data) raises only the data alert: its regime and cascade
    figures rest on a fraction of the market. Market alerts compare with ``known``, the newest earlier
    hour that was not blind (default ``prev`` when it was not), so a blind spell neither invents a
    transition ("unknown → calm") nor hides one (a cascade that began while riskd could not see is
    reported at the first hour it can).
    """
    late_by = max(0.0, (now - cur.as_of).total_seconds())
    late = late_by > LATE_AFTER_S  # the clock alone decides: a replay (live: false) is on its own time
    alerts: list[Alert] = _data_alerts(prev, cur)
    if not blind(cur):
        base = known if known is not None else (prev if prev is not None and not blind(prev) else None)
        alerts += _regime_alerts(base, cur)
        alerts += _cascade_alerts(base, cur)
    return [_stamp(a, late_by, late) for a in alerts]


def blind(snap: Snapshot) -> bool:
    """Whether riskd could not see this hour: its state is unknown, or its primary data is stale."""
    return snap.state == "unknown" or snap.data_quality.status == "stale"


def cascade_thread(as_of: datetime) -> str:
    """The thread of an hour's cascade messages: the provisional "cascade developing" alert raised
    during the hour, and the hour close's confirmation or retraction, reply to its first message."""
    return f"cascade:{as_of.isoformat()}"


def severity_for_transition(src: str, dst: str) -> Severity:
    """Severity by target state: cascade is critical, escalating to fragile too; easing is info."""
    if dst == "cascade":
        return "critical"
    escalating = _RANK.get(dst, 0) > _RANK.get(src, 0)
    if dst == "fragile":
        return "critical" if escalating else "warning"
    if dst == "elevated":
        return "warning" if escalating else "info"
    return "info"


def figures_of(snap: Snapshot) -> dict[str, Any]:
    """The numbers an alert quotes: CFI, its percentile, BTC return, vol ratio, funding z, reasons."""
    figs: dict[str, Any] = {
        "state": snap.state,
        "risk_multiplier": snap.risk_multiplier,
        "cfi": snap.cfi,
        "cfi_percentile": snap.cfi_percentile,
        "cascade_level": snap.cascade_level,
    }
    for name, candidates in FEATURE_KEYS.items():
        figs[name] = next((snap.features[k] for k in candidates if snap.features.get(k) is not None), None)
    figs["reasons"] = list(snap.reasons)
    if snap.crash_prob_24h is not None:
        figs["crash_prob_24h"] = snap.crash_prob_24h
    return figs


def what_fired(snap: Snapshot) -> str:
    """What put the hour in a cascade, in words: the BTC level, the multi-asset detector, or the hold
    that keeps the state after the last firing hour (never "level none")."""
    parts = []
    if snap.cascade_level != "none":
        parts.append(f"BTC cascade level {snap.cascade_level}")
    if snap.multi_asset_cascade:
        count = snap.features.get("multi_asset_count")
        parts.append("multi-asset detector" + (f" ({count:.0f} assets)" if count is not None else ""))
    if parts:
        return " and ".join(parts)
    since = f" since {snap.state_since:%Y-%m-%d %H:%M} UTC" if snap.state_since else ""
    return f"hold after the last firing hour (nothing fires this hour; cascade state{since})"


def format_late(seconds: float) -> str:
    """Human lateness: '45 min', '5 h', '2 d 3 h'."""
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h"
    return f"{hours // 24} d {hours % 24} h"


def figures_line(figs: dict[str, Any]) -> str:
    """The figures that fired: 'CFI 2.41 (p97) · BTC 1h −8.4% · vol ratio 4.2 · funding z 2.1'."""
    parts = []
    if figs.get("cfi") is not None:
        pct = figs.get("cfi_percentile")
        parts.append(f"CFI {figs['cfi']:.2f}" + (f" (p{pct * 100:.0f})" if pct is not None else ""))
    if figs.get("btc_return_1h") is not None:
        parts.append(f"BTC 1h {figs['btc_return_1h'] * 100:+.1f}%")
    if figs.get("vol_ratio") is not None:
        parts.append(f"vol ratio {figs['vol_ratio']:.1f}")
    if figs.get("funding_z") is not None:
        parts.append(f"funding z {figs['funding_z']:+.1f}")
    if figs.get("crash_prob_24h") is not None:
        parts.append(f"P(crash 24 h) {figs['crash_prob_24h']:.0%}")
    return " · ".join(parts) or "no figures (data missing)"


def _regime_alerts(prev: Snapshot | None, cur: Snapshot) -> list[Alert]:
    src = prev.state if prev is not None else "unknown"
    dst = cur.state
    if dst == src or dst == "unknown":
        return []  # an unknown state is reported by the data alerts, not as a regime
    if prev is None and dst not in ("fragile", "cascade"):
        return []
    fired = what_fired(cur) if dst == "cascade" else "; ".join(cur.reasons)
    figs = {**figures_of(cur), "from": src, "to": dst, "fired": fired}
    severity = severity_for_transition(src, dst)
    title = f"Regime {src} → {dst}"
    extra = f"Risk multiplier {cur.risk_multiplier:g}"
    if dst == "cascade":
        extra += f" · {what_fired(cur)}"
    body = _body(cur, figs, extra)
    thread = cascade_thread(cur.as_of) if dst == "cascade" else None
    return [_alert("regime_change", severity, cur, title, body, figs).model_copy(update={"thread": thread})]


def _cascade_alerts(prev: Snapshot | None, cur: Snapshot) -> list[Alert]:
    old = prev.episode_id if prev is not None else None
    new = cur.episode_id
    out: list[Alert] = []
    if old is not None and new != old:
        figs = {**figures_of(cur), "to": "ended"}
        body = _body(cur, figs, f"Episode {old} is over; cascade level now {cur.cascade_level}")
        out.append(_alert("cascade_end", "info", cur, "Cascade episode ended", body, figs, episode_id=old))
    if new is not None and new != old:
        strong = cur.cascade_level in ("medium", "strict") or cur.multi_asset_cascade
        figs = {**figures_of(cur), "to": "started", "multi_asset": cur.multi_asset_cascade,
                "fired": what_fired(cur)}  # fmt: skip
        body = _body(cur, figs, f"Episode {new}: {what_fired(cur)}")
        severity: Severity = "critical" if strong else "warning"
        alert = _alert("cascade_start", severity, cur, "Cascade started", body, figs, episode_id=new)
        out.append(alert.model_copy(update={"thread": cascade_thread(cur.as_of)}))
    return out


def _data_alerts(prev: Snapshot | None, cur: Snapshot) -> list[Alert]:
    was_blind = prev is not None and blind(prev)
    is_blind = blind(cur)
    dq = cur.data_quality
    # "to" is the identity: one data alert per hour, whatever the revision that says it
    figs: dict[str, Any] = {
        "to": "blind" if is_blind else "seeing",
        "status": dq.status,
        "coverage": dq.coverage,
        "stale_sources": list(dq.stale_sources),
        "missing_sources": list(dq.missing_sources),
        "state": cur.state,
        "risk_multiplier": cur.risk_multiplier,
    }
    notes = ("\n" + "; ".join(dq.notes)) if dq.notes else ""
    if is_blind and not was_blind:
        body = f"{_hour(cur)}\nStale or missing: {sources_text(cur)} (coverage {dq.coverage:.0%}).{notes}"
        title = "Data stale: regime not trustworthy"
        return [_alert("data_stale", "warning", cur, title, body, figs)]
    if was_blind and not is_blind:
        body = f"{_hour(cur)}\nData is {dq.status} again (coverage {dq.coverage:.0%}).{notes}"
        return [_alert("data_recovered", "info", cur, "Data recovered", body, figs)]
    return []


def sources_text(snap: Snapshot) -> str:
    """The stale and missing sources of an hour, each named once ('binance:ohlcv, bybit:funding')."""
    return ", ".join(snap.data_quality.sources()) or "primary candles"


def _body(cur: Snapshot, figs: dict[str, Any], extra: str) -> str:
    lines = [_hour(cur), figures_line(figs), extra]
    if cur.reasons:
        lines.append("Reasons: " + "; ".join(cur.reasons))
    if cur.data_quality.status != "ok":
        lines.append(f"Data quality: {cur.data_quality.status}")
    return "\n".join(lines)


def _hour(cur: Snapshot) -> str:
    return f"Hour ending {cur.as_of:%Y-%m-%d %H:%M} UTC"


def _alert(
    kind: AlertKind,
    severity: Severity,
    cur: Snapshot,
    title: str,
    body: str,
    figs: dict[str, Any],
    *,
    episode_id: str | None = None,
) -> Alert:
    return Alert(kind=kind, severity=severity, as_of=cur.as_of, title=title, body=body, figures=figs,
                 episode_id=episode_id)  # fmt: skip


def _stamp(alert: Alert, late_by: float, late: bool) -> Alert:
    """Record the lateness; a late alert says so first thing in its title and body."""
    update: dict[str, Any] = {"late_by_seconds": late_by}
    if late:
        tag = f"[LATE by {format_late(late_by)}]"
        update["title"] = f"{tag} {alert.title}"
        update["body"] = f"Catch-up after downtime: this happened {format_late(late_by)} ago.\n{alert.body}"
    return alert.model_copy(update=update)
