"""Telegram HTML for alerts and replies: every outside string goes through :func:`esc`, tags stay on one line.

Telegram's HTML ``parse_mode`` refuses a message whose ``<``, ``>`` or ``&`` is not an entity, so one
symbol named ``<b>&`` would make a whole alert undeliverable: nothing that came from data, a venue or a
user is placed in a message without :func:`esc`. Each tag opens and closes on the same line, so a
reply cut at a line boundary (:func:`riskd.telegram.bot.cap_reply`) is still valid HTML. Pure: the
time and the verdict come in as arguments.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from riskd.contract.alerts import LATE_AFTER_S, figures_line, figures_of, format_late
from riskd.contract.freshness import Verdict
from riskd.contract.models import Alert, Snapshot

if TYPE_CHECKING:
    from riskd.config import Settings

ICONS = {"critical": "🔴", "warning": "🟠", "info": "🟢"}
RUNBOOKS = {
    "cascade": "RiskdCascadeInProgress",
    "fragile": "RiskdRegimeFragile",
    "cascade_start": "RiskdCascadeInProgress",
    "data_stale": "RiskdSourceDataStale",
}
"""Which runbook (``riskd/http/runbooks/runbooks.md``) an alert links: by target state, then by kind."""


def esc(value: object) -> str:
    """``value`` as text safe inside Telegram HTML (``<``, ``>``, ``&`` and quotes as entities)."""
    return html.escape(str(value), quote=True)


@dataclass(frozen=True)
class Links:
    """Base URLs the messages link to; a link whose URL is not configured is left out."""

    status_url: str | None = None
    grafana_url: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Links:
        """The status page is ``metrics.external_url`` (runbooks live under it); Grafana its own URL."""
        return cls(settings.metrics.external_url, settings.telegram.grafana_url)

    def runbook(self, alert: Alert) -> str | None:
        """The alert's runbook URL, or None (no external URL, or no runbook for this kind)."""
        name = RUNBOOKS.get(str(alert.figures.get("to", ""))) or RUNBOOKS.get(alert.kind)
        if not self.status_url or not name:
            return None
        return f"{self.status_url.rstrip('/')}/runbooks/{name}"

    def line(self, alert: Alert | None = None) -> str:
        """'status · runbook · Grafana' as links; empty when none is configured."""
        parts = []
        if self.status_url:
            parts.append(_link(self.status_url, "status"))
        runbook = self.runbook(alert) if alert is not None else None
        if runbook:
            parts.append(_link(runbook, "runbook"))
        if self.grafana_url:
            parts.append(_link(self.grafana_url, "Grafana"))
        return " · ".join(parts)


@dataclass(frozen=True)
class Ack:
    """Who acknowledged an alert, and when."""

    by: str
    at: datetime


def alert_html(
    alert: Alert,
    *,
    links: Links,
    now: datetime,
    maybe_repeated: bool = False,
    escalated_after_min: float | None = None,
    ack: Ack | None = None,
) -> str:
    """An alert: header (severity, title), state · multiplier · what fired, the body, links, ack line."""
    lines = []
    if escalated_after_min is not None:
        lines.append(f"⏫ <b>ESCALATION</b>: not acknowledged within {escalated_after_min:g} min")
    if maybe_repeated:
        lines.append("[possibly repeated: an earlier delivery was interrupted]")
    delayed = (now - alert.as_of).total_seconds()
    if delayed > LATE_AFTER_S and delayed - alert.late_by_seconds > LATE_AFTER_S:
        lines.append(f"[DELAYED: delivered {format_late(delayed)} after the hour — delivery was held up]")
    icon = ICONS.get(alert.severity, "")
    lines.append(f"{icon} <b>{esc(alert.severity.upper())} · {esc(alert.title)}</b>".strip())
    lines.append(header_line(alert.figures))
    lines += [esc(line) for line in alert.body.splitlines()]
    if link_line := links.line(alert):
        lines.append(link_line)
    if ack is not None:
        lines.append(f"✅ Acknowledged by {esc(ack.by)} at {ack.at:%Y-%m-%d %H:%M} UTC")
    return "\n".join(line for line in lines if line)


def header_line(figs: dict[str, Any]) -> str:
    """'State <b>CASCADE</b> · ×0.25 · BTC cascade level strict' from an alert's figures."""
    parts = []
    if figs.get("state"):
        parts.append(f"State <b>{esc(str(figs['state']).upper())}</b>")
    if figs.get("risk_multiplier") is not None:
        parts.append(f"×{esc(format(figs['risk_multiplier'], 'g'))}")
    if figs.get("fired"):
        parts.append(esc(figs["fired"]))
    return " · ".join(parts)


def banner(verdict: Verdict) -> str:
    """One line on freshness: a loud STALE / DEGRADED / UNKNOWN banner, or a quiet 'fresh'."""
    if verdict.status == "fresh":
        return f"Fresh ({(verdict.age_seconds or 0) / 60:.0f} min old)"
    word = {"stale": "STALE", "degraded": "DEGRADED", "unknown": "UNKNOWN"}[verdict.status]
    advice = "" if verdict.usable else " — do not act on this as the current regime"
    return f"⚠️ <b>{word}</b>: {esc(verdict.reason)}{advice}"


def status_html(snap: Snapshot | None, verdict: Verdict, *, now: datetime, links: Links) -> str:
    """The /status answer; an absent snapshot is UNKNOWN, never an old state."""
    if snap is None:
        return "Regime <b>UNKNOWN</b>: nothing published (riskd down or key expired). Treat as unknown."
    age = (now - snap.as_of).total_seconds() / 60
    since = f" since {snap.state_since:%m-%d %H:%M}" if snap.state_since else ""
    live = "" if snap.live else ", not live: catch-up or replay"
    lines = [
        banner(verdict),
        f"Regime <b>{esc(snap.state.upper())}</b>{since} · risk multiplier {snap.risk_multiplier:g}",
        f"Hour ending {snap.as_of:%Y-%m-%d %H:%M} UTC ({age:.0f} min ago{live})",
        esc(figures_line(figures_of(snap))),
        f"Cascade: {esc(snap.cascade_level)}"
        + (f" (episode {esc(snap.episode_id)})" if snap.episode_id else ""),
        f"Data: {esc(snap.data_quality.status)} (coverage {snap.data_quality.coverage:.0%})",
    ]
    if snap.crash_prob_24h is not None:
        lines.append(f"P(BTC −5% within 24 h): {snap.crash_prob_24h:.0%}")
    if snap.reasons:
        lines.append("Reasons: " + esc("; ".join(snap.reasons)))
    if link_line := links.line():
        lines.append(link_line)
    return "\n".join(lines)


def cfi_html(snap: Snapshot | None, verdict: Verdict) -> str:
    """The /cfi answer: freshness, value, percentile, quintile and components."""
    if snap is None or snap.cfi is None:
        return "CFI unknown (nothing published or not computable this hour)."
    pct = f"p{snap.cfi_percentile * 100:.0f}" if snap.cfi_percentile is not None else "p?"
    lines = [
        banner(verdict),
        f"<b>CFI {snap.cfi:.2f}</b> ({pct}, quintile {snap.cfi_quintile or '?'}) at {snap.as_of:%m-%d %H:%M} UTC",
    ]
    lines += [f"  {esc(k)}: {esc(num(v))}" for k, v in sorted(snap.components.items())]
    return "\n".join(lines)


def cascade_html(snap: Snapshot | None) -> str:
    """The /cascade answer: level, episode, multi-asset flag and the BTC figures."""
    if snap is None:
        return "Cascade state unknown (nothing published)."
    figs = figures_of(snap)
    return "\n".join(
        [
            f"Cascade level <b>{esc(snap.cascade_level)}</b> at {snap.as_of:%m-%d %H:%M} UTC",
            f"Episode: {esc(snap.episode_id or 'none')} · multi-asset: {'yes' if snap.multi_asset_cascade else 'no'}",
            f"BTC 1h {pct(figs['btc_return_1h'])} · 4h {pct(figs['btc_return_4h'])} · vol ratio "
            f"{esc(num(figs['vol_ratio']))}",
        ]
    )


def history_html(snaps: list[Snapshot]) -> str:
    """The /history answer: one line per hour, oldest first."""
    if not snaps:
        return "No history published."
    return "\n".join(
        esc(f"{s.as_of:%m-%d %H:%M} {s.state:<9} CFI {num(s.cfi)} ×{s.risk_multiplier:g} {s.cascade_level}")
        for s in snaps
    )


def mapping_html(title: str, data: dict[str, Any]) -> str:
    """A titled key: value list (for /health)."""
    if not data:
        return f"{esc(title)}: nothing available."
    return "\n".join([f"<b>{esc(title)}</b>", *(f"  {esc(k)}: {esc(num(v))}" for k, v in data.items())])


def mutes_html(mutes: dict[str, float], *, now: datetime) -> str:
    """The /mutes answer: each active mute with its expiry."""
    if not mutes:
        return "No active mutes."
    lines = ["<b>Active mutes</b>"]
    for kind, left in sorted(mutes.items(), key=lambda kv: kv[1]):
        until = now + timedelta(minutes=round(left / 60))  # Redis counts down in real time: whole minutes
        lines.append(f"  {esc(kind)} until {until:%Y-%m-%d %H:%M} UTC ({left / 60:.0f} min left)")
    return "\n".join(lines)


def num(v: Any) -> str:
    """A number for people: 4 significant digits for floats."""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def pct(v: float | None) -> str:
    """A signed percentage, or n/a."""
    return "n/a" if v is None else f"{v * 100:+.1f}%"


def _link(url: str, label: str) -> str:
    return f'<a href="{esc(url)}">{esc(label)}</a>'


def funding_html(table: dict[str, Any] | None, symbol: str | None, *, top: int = 5) -> str:
    """/funding: one symbol per venue (per hour, per 8 h, interval, next time), or the top and bottom ``top``.

    ``table`` is the ``<prefix>:funding`` payload (:func:`riskd.market.funding_table`); rates are fractions.
    """
    rows = [r for r in (table or {}).get("rows", []) if isinstance(r, dict)]
    if not rows:
        return "Funding: nothing published yet (the leader writes it every cycle)."
    when = f" · cycle {esc(table.get('as_of', '?'))}" if table else ""
    if symbol:
        mine = [r for r in rows if str(r.get("symbol", "")).upper() == symbol.upper()]
        if not mine:
            return f"Funding {esc(symbol)}: not in the latest cycle."
        lines = [f"<b>Funding {esc(symbol)}</b>{when}"]
        for r in sorted(mine, key=lambda r: str(r.get("venue"))):
            nxt = str(r.get("next_funding_time") or "?")
            lines.append(
                f"  {esc(r.get('venue'))}: {_rate(r.get('rate_per_8h'))}/8 h ({_rate(r.get('rate_per_hour'), 5)}/h)"
                f" · every {esc(num(r.get('interval_hours')))} h · next {esc(nxt)}"
            )
        return "\n".join(lines)
    by_symbol: dict[str, list[float]] = {}
    for r in rows:
        if isinstance(r.get("rate_per_8h"), int | float):
            by_symbol.setdefault(str(r.get("symbol")), []).append(float(r["rate_per_8h"]))
    mean = sorted(((sum(v) / len(v), s) for s, v in by_symbol.items()), reverse=True)
    lines = [f"<b>Funding per 8 h, mean over venues</b>{when}", "Highest:"]
    lines += [f"  {esc(s)}: {_rate(v)}" for v, s in mean[:top]]
    lines.append("Lowest:")
    lines += [f"  {esc(s)}: {_rate(v)}" for v, s in sorted(mean)[:top]]
    return "\n".join(lines)


def _rate(v: Any, digits: int = 4) -> str:
    return f"{v * 100:+.{digits}f}%" if isinstance(v, int | float) else "n/a"
