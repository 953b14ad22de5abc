"""The built-in status page at ``/``, for teams without Grafana.

One self-contained HTML page (inline CSS, a server-rendered SVG chart, no CDN: riskd often runs without
internet; one inline script, the minute refresh a reader can pause) that reads on a phone and with a
screen reader (WCAG 2.1 AA: the test runs axe-core on it). It shows the regime, the
risk multiplier and the freshness verdict (a banner when the regime must not be used), how fresh each
venue's datasets are, a 7-day chart of CFI, crash probability and state, the current cascade episode and
the recent alerts (derived from the history with ``riskd.contract.alerts.derive_alerts``, the daemon's own rule).
:func:`render` is pure; :func:`build` gathers its inputs from the API context.
"""

from __future__ import annotations

import html
import itertools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from riskd.contract.alerts import derive_alerts
from riskd.contract.freshness import Verdict
from riskd.contract.models import Alert, Snapshot
from riskd.http.chart import STATES, WINDOW, chart_svg

if TYPE_CHECKING:
    from riskd.http.api import ApiContext

log = logging.getLogger("riskd.http")

_LEAD = timedelta(hours=1)
"""Read one hour before the window: the first hour drawn is derived against it (see :func:`recent_alerts`)."""
REFRESH_S = 60


@dataclass(frozen=True)
class PageView:
    """Everything the page shows, gathered at request time."""

    now: datetime
    snapshot: Snapshot | None
    verdict: Verdict
    history: list[Snapshot] = field(default_factory=list)
    data_age: dict[tuple[str, str], float] = field(default_factory=dict)
    venue_health: dict[str, str] = field(default_factory=dict)
    leader: bool = False


async def build(ctx: ApiContext) -> str:
    """Gather the view from the API context (history from Redis; an unreachable Redis leaves it empty)."""
    now = ctx.data_clock()
    history: list[Snapshot] = []
    if ctx.history is not None:
        try:
            history = await ctx.history.between(now - WINDOW - _LEAD, now)
        except Exception as err:  # the page still shows the live state without its history
            log.warning("status page: history not read: %s", err)
    data_now = now.timestamp()  # data ages on the data clock (simulated in the demo and replay), not the wall
    ages = {k: max(0.0, data_now - v) for k, v in ctx.state.newest_data.items()}
    view = PageView(now, ctx.state.snapshot, ctx.verdict(), history, ages,
                    dict(getattr(ctx.state, "venue_health", {})), ctx.state.leader)  # fmt: skip
    return render(view)


def _e(text: object) -> str:
    return html.escape(str(text))


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    minutes = int(seconds // 60)
    if minutes < 90:
        return f"{minutes} min ago"
    hours = minutes // 60
    return f"{hours} h ago" if hours < 72 else f"{hours // 24} d ago"


def _when(ts: datetime) -> str:
    return f"{ts:%Y-%m-%d %H:%M} UTC"


def _banner(view: PageView) -> str:
    v = view.verdict
    if not v.usable:
        return (
            f'<div id="stale-banner" class="banner bad"><b>{_e(v.status.upper())}: do not trade on this '
            f"regime.</b> {_e(v.reason)}. Bots reading it get state unknown and their fallback multiplier.</div>"
        )
    if v.status == "degraded":
        return f'<div id="degraded-banner" class="banner warn"><b>Degraded data.</b> {_e(v.reason)}.</div>'
    return ""


def _headline(view: PageView) -> str:
    snap, v = view.snapshot, view.verdict
    state = snap.state if snap is not None and v.usable else "unknown"
    mult = f"{snap.risk_multiplier:g}" if snap is not None and v.usable else "—"
    last = ""
    if snap is not None:
        age = _ago((view.now - snap.as_of).total_seconds())
        last = f"Hour ending {_when(snap.as_of)} ({age})"
        if not v.usable:
            last = f"Last published: {_e(snap.state)} × {snap.risk_multiplier:g}, hour ending {_when(snap.as_of)} ({age})"
    cfi = f"CFI {snap.cfi:.2f}" if snap is not None and snap.cfi is not None else "CFI —"
    if snap is not None and snap.cfi_percentile is not None:
        cfi += f" (p{snap.cfi_percentile * 100:.0f})"
    crash = ""
    if snap is not None and snap.crash_prob_24h is not None:
        crash = f" · crash probability 24 h {snap.crash_prob_24h:.0%}"
    return (
        f'<section class="head"><div id="state" class="state box-{state}">{_e(state.upper())}</div>'
        f'<div><div class="mult">risk multiplier <b id="multiplier">{_e(mult)}</b></div>'
        f'<div id="freshness" class="muted">data {_e(v.status)} · {_e(last)}</div>'
        f'<div class="muted">{_e(cfi)}{_e(crash)}</div></div></section>'
    )


def _data_table(view: PageView) -> str:
    rows = []
    venues = sorted({v for v, _ in view.data_age} | set(view.venue_health))
    for venue in venues:
        health = view.venue_health.get(venue, "—")
        datasets = sorted(d for v, d in view.data_age if v == venue) or ["—"]
        for dataset in datasets:
            age = view.data_age.get((venue, dataset))
            rows.append(
                f'<tr><td>{_e(venue)}</td><td class="h-{_e(health)}">{_e(health)}</td><td>{_e(dataset)}</td>'
                f"<td>{_e(_ago(age))}</td></tr>"
            )
    body = "".join(rows) or '<tr><td colspan="4">no data fetched yet</td></tr>'
    dq = view.snapshot.data_quality if view.snapshot is not None else None
    note = (
        f"<p class='muted'>Last snapshot data quality: {_e(dq.status)}, coverage {dq.coverage:.0%}</p>"
        if dq
        else ""
    )
    return (
        '<section><h2>Data freshness</h2><table id="data"><tr><th>venue</th><th>health</th><th>dataset</th>'
        f"<th>newest</th></tr>{body}</table>{note}</section>"
    )


def _episode(view: PageView) -> str:
    snap = view.snapshot
    if snap is None or snap.episode_id is None:
        last = next((s.episode_id for s in reversed(view.history) if s.episode_id), None)
        tail = f" The last one in the past 7 days: {_e(last)}." if last else ""
        return f'<section><h2>Cascade</h2><p id="episode">No cascade episode in progress.{tail}</p></section>'
    hours = [s for s in view.history if s.episode_id == snap.episode_id]
    began = hours[0].as_of if hours else snap.as_of
    peak = max((s.cascade_level_code for s in hours), default=snap.cascade_level_code)
    multi = " · multi-asset" if snap.multi_asset_cascade or any(s.multi_asset_cascade for s in hours) else ""
    if not view.verdict.usable:
        return (
            f'<section><h2>Cascade</h2><p id="episode">Unknown: the last published hour ({_when(snap.as_of)}) '
            f"was in cascade episode {_e(snap.episode_id)}, since {_when(began)}.</p></section>"
        )
    return (
        f'<section><h2>Cascade</h2><p id="episode" class="ink-{snap.state}"><b>Cascade episode '
        f"{_e(snap.episode_id)} in "
        f"progress</b> since {_when(began)} ({max(1, len(hours))} h): level now {_e(snap.cascade_level)}, "
        f"peak level {peak} of 4{multi}.</p></section>"
    )


def recent_alerts(history: list[Snapshot], since: datetime, limit: int = 15) -> list[Alert]:
    """The alerts the daemon's rule raises over the hours after ``since``, newest first: market alerts and
    the operational ones (data stale, data recovered).

    Each hour is derived against the hour before it, as the alert feed does; the first hour read has none
    (a first start, or an hour before the window that was not read), and is derived against None too, as
    the feed derives its first hour: a daemon that starts blind sends "Data stale" for that hour."""
    out: list[Alert] = []
    for prev, cur in itertools.pairwise([None, *history]):
        if cur is not None and cur.as_of > since:
            out += derive_alerts(prev, cur, now=cur.computed_at)
    return list(reversed(out))[:limit]


def _alerts(view: PageView) -> str:
    items = "".join(
        f'<li class="sev-{_e(a.severity)}"><b>{_e(a.title)}</b> <span class="muted">{_when(a.as_of)} · '
        f"{_e(a.severity)}</span></li>"
        for a in recent_alerts(view.history, view.now - WINDOW)
    )
    note = (
        '<p class="muted">Every alert the daemon\'s rule raised over the past 7 days: market alerts and '
        "data alerts (data stale, data recovered, …). Alert modes and the cooldown may have kept some out of "
        "the chat.</p>"
    )
    return (
        f'<section><h2>Recent alerts</h2>{note}<ul id="alerts">'
        f"{items or '<li>none in the past 7 days</li>'}</ul></section>"
    )


_CSS = "".join(
    f".box-{name}{{background:{look.box};color:{look.on_box}}}.ink-{name}{{color:{look.ink}}}"
    for name, look in STATES.items()
) + (
    "body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:760px;padding:.6em;color:#222}"
    "h1{font-size:1.2em;margin:.2em 0}h2{font-size:1.05em;margin:1.1em 0 .3em}"
    ".head{display:flex;gap:1em;align-items:center;flex-wrap:wrap}"
    ".state{font-weight:700;font-size:1.8em;padding:.25em .6em;border-radius:.3em}"
    ".mult{font-size:1.3em}.muted{color:#666;font-size:.9em}"
    ".banner{padding:.6em;border-radius:.3em;margin:.5em 0}.bad{background:#ffebee;border:2px solid #c62828}"
    ".warn{background:#fff8e1;border:2px solid #f9a825}table{border-collapse:collapse;width:100%}"
    "td,th{text-align:left;padding:.2em .4em;border-bottom:1px solid #eee}.h-down{color:#c62828;font-weight:700}"
    f".h-degraded{{color:{STATES['fragile'].ink}}}#chart{{width:100%;height:auto}}"
    ".legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.2em 1.2em;font-size:.9em}"
    ".swatch{vertical-align:middle}button{font:inherit}"
    ".sev-critical b{color:#c62828}ul{padding-left:1.2em}footer{margin-top:1.5em}"
)


def render(view: PageView) -> str:
    """The whole page."""
    role = "leader" if view.leader else "standby"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>riskd: {_e(_title(view))}</title><style>{_CSS}</style></head><body><main>"
        f'<h1>riskd · market regime <span class="muted">({role}, {_when(view.now)})</span></h1>'
        f"{_banner(view)}{_headline(view)}"
        f"<section><h2>Past 7 days</h2>{chart_svg(view.history, view.now)}</section>"
        f"{_episode(view)}{_alerts(view)}{_data_table(view)}</main>"
        '<footer class="muted"><a href="/regime">/regime</a> · <a href="/history">/history</a> · '
        '<a href="/openapi.json">/openapi.json</a> · <a href="/schema/">/schema</a> · '
        f'<a href="/runbooks/">runbooks</a> · {_REFRESH}</footer></body></html>'
    )


_REFRESH = (
    f'<span id="refresh">reload the page for news</span> <button id="pause" type="button" hidden>pause</button>'
    "<script>(()=>{const k='riskd-refresh-paused',b=document.getElementById('pause'),"
    "r=document.getElementById('refresh');let t,p=false;try{p=localStorage.getItem(k)==='1'}catch(e){}"
    "const set=()=>{clearTimeout(t);b.hidden=false;b.setAttribute('aria-pressed',String(p));"
    "b.textContent=p?'resume auto-refresh':'pause auto-refresh';"
    f"r.textContent=p?'auto-refresh paused':'reloads every {REFRESH_S} s';"
    f"if(!p)t=setTimeout(()=>location.reload(),{REFRESH_S * 1000})}};"
    "b.onclick=()=>{p=!p;try{localStorage.setItem(k,p?'1':'0')}catch(e){}set()};set()})()</script>"
)
"""The minute refresh, which a reader can pause (WCAG 2.2.1: a page that reloads itself must let the
reader stop it; a ``<meta http-equiv=refresh>`` cannot be stopped, and axe-core fails it as critical).
Without script the page does not reload and says so."""


def _title(view: PageView) -> str:
    if view.snapshot is None or not view.verdict.usable:
        return "UNKNOWN"
    return f"{view.snapshot.state} × {view.snapshot.risk_multiplier:g}"
