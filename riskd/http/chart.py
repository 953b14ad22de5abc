"""The status page's 7-day chart: CFI, crash probability and the regime state as a band, in inline SVG.

The state band must read without colour (WCAG 1.4.1): each state has its own pattern as well as its
colour, and the legend under the chart shows each pattern with the state's name and its hours in the
window. An hour riskd could not see (published ``state: "unknown"``, or computed from stale data, which
every reader treats as unknown) is hatched grey. The palette also gives each state a text colour with at
least 4.5:1 contrast on white (WCAG AA), for text that names or follows the regime.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from riskd.contract.models import Snapshot

WINDOW = timedelta(days=7)
_W, _H, _PAD, _BAND = 720, 220, 36, 14
_TILE = 6  # pattern tile, px


@dataclass(frozen=True)
class Look:
    """How one state is drawn: band colour and pattern, the headline box, and text on white."""

    band: str  # the band's base colour
    pattern: str  # the pattern in words, for the legend
    mark: str  # SVG drawn over the base colour in each pattern tile
    box: str  # headline box background
    on_box: str  # headline box text (>= 4.5:1 on ``box``)
    ink: str  # text on white (>= 4.5:1)


_DOTS = '<circle cx="3" cy="3" r="1.3" fill="#4e342e"/>'
_VERTICAL = '<rect width="2" height="6" fill="#3e2723"/>'
_CROSS = '<path d="M0 0L6 6M6 0L0 6" stroke="#fff" stroke-width="1"/>'
_HORIZONTAL = '<rect width="6" height="2" fill="#fff"/>'
_HATCH = '<path d="M-1 1L1-1M0 6L6 0M5 7L7 5" stroke="#424242" stroke-width="1.2"/>'
STATES: dict[str, Look] = {
    "calm": Look(band="#2e7d32", pattern="solid", mark="", box="#2e7d32", on_box="#fff", ink="#2e7d32"),
    "elevated": Look(band="#f9a825", pattern="dots", mark=_DOTS, box="#f9a825", on_box="#222", ink="#8d5b00"),
    "fragile": Look(
        band="#ef6c00",
        pattern="vertical stripes",
        mark=_VERTICAL,
        box="#ef6c00",
        on_box="#222",
        ink="#b34700",
    ),
    "cascade": Look(
        band="#c62828", pattern="cross-hatch", mark=_CROSS, box="#c62828", on_box="#fff", ink="#c62828"
    ),
    "recovery": Look(
        band="#1565c0",
        pattern="horizontal stripes",
        mark=_HORIZONTAL,
        box="#1565c0",
        on_box="#fff",
        ink="#1565c0",
    ),
    "unknown": Look(
        band="#e0e0e0", pattern="grey hatching", mark=_HATCH, box="#616161", on_box="#fff", ink="#616161"
    ),
}
"""Every regime state (``riskd.contract.models.RegimeState``), in the legend's order. Contrast ratios, WCAG 2.x:
headline text 5.1–8.1:1 on its box, ink 5.1–6.9:1 on white (tests/test_status_page_browser.py checks the
rendered page with axe-core)."""


_MEANING = {"unknown": ": data stale or missing, riskd could not see"}


def band_state(snap: Snapshot) -> str:
    """The state an hour is drawn in: unknown when riskd published it so or computed it from stale data."""
    return "unknown" if snap.data_quality.status == "stale" else snap.state


def _e(text: object) -> str:
    return html.escape(str(text))


def _when(ts: datetime) -> str:
    return f"{ts:%Y-%m-%d %H:%M} UTC"


def _y(value: float, lo: float, hi: float) -> float:
    return _PAD / 2 + (_H - _PAD - _BAND) * (1 - (value - lo) / (hi - lo or 1.0))


def patterns() -> str:
    """One ``<pattern id="st-<state>">`` per state (user-space tiles, so adjacent hours join up)."""
    return "".join(
        f'<pattern id="st-{name}" width="{_TILE}" height="{_TILE}" patternUnits="userSpaceOnUse">'
        f'<rect width="{_TILE}" height="{_TILE}" fill="{look.band}"/>{look.mark}</pattern>'
        for name, look in STATES.items()
    )


def _band(history: list[Snapshot], x: Callable[[datetime], float]) -> list[str]:
    band_y = _H - _PAD / 2 - _BAND
    hour_w = (_W - 2 * _PAD) * 3600 / WINDOW.total_seconds()
    parts = []
    for s in history:
        drawn = band_state(s)
        label = s.state if drawn == s.state else f"unknown (published {s.state}, computed from stale data)"
        parts.append(
            f'<rect class="state-band st-{drawn}" x="{x(s.as_of - timedelta(hours=1)):.1f}" y="{band_y:.1f}" '
            f'width="{hour_w + 0.3:.2f}" height="{_BAND}" fill="url(#st-{drawn})">'
            f"<title>{_e(label)} {_when(s.as_of)}</title></rect>"
        )
    return parts


def _lines(history: list[Snapshot], x: Callable[[datetime], float]) -> tuple[list[str], bool]:
    """The CFI line (left axis, scaled to its range) and the crash-probability line (0..1); whether the
    latter was drawn."""
    parts = []
    pts = [(s.as_of, s.cfi) for s in history if s.cfi is not None]
    if pts:
        lo, hi = min(0.0, *(v for _, v in pts)), max(0.0, *(v for _, v in pts))
        lo, hi = lo - 0.1 * (hi - lo or 1), hi + 0.1 * (hi - lo or 1)
        zero = _y(0.0, lo, hi)
        parts.append(f'<line x1="{_PAD}" x2="{_W - _PAD}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="#bbb"/>')
        for v in (lo, hi):
            parts.append(f'<text x="{_PAD - 4}" y="{_y(v, lo, hi) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
        line = " ".join(f"{x(t):.1f},{_y(v, lo, hi):.1f}" for t, v in pts)
        parts.append(
            f'<polyline class="cfi-line" points="{line}" fill="none" stroke="#1a237e" stroke-width="2"/>'
        )
    probs = [(s.as_of, s.crash_prob_24h) for s in history if s.crash_prob_24h is not None]
    if probs:
        line = " ".join(f"{x(t):.1f},{_y(p, 0.0, 1.0):.1f}" for t, p in probs)
        parts.append(
            f'<polyline class="crash-line" points="{line}" fill="none" stroke="#c62828" stroke-dasharray="4 3"/>'
        )
        parts.append(f'<text x="{_W - _PAD + 4}" y="{_PAD / 2 + 4}">100%</text>')
    return parts, bool(probs)


def chart_svg(history: list[Snapshot], end: datetime) -> str:
    """The 7-day chart (hours ending after ``end`` - 7 days) and, under it, its key and the state legend."""
    start = end - WINDOW
    span = WINDOW.total_seconds()
    history = [s for s in history if s.as_of > start]

    def x(ts: datetime) -> float:
        return _PAD + (_W - 2 * _PAD) * min(1.0, max(0.0, (ts - start).total_seconds() / span))

    parts = [
        f"<defs>{patterns()}</defs>",
        f'<rect x="{_PAD}" y="{_PAD / 2}" width="{_W - 2 * _PAD}" height="{_H - _PAD - _BAND}" fill="#fafafa"/>',
    ]
    lines, probs = _lines(history, x)
    parts += lines + _band(history, x)
    for day in range(8):
        t = start + timedelta(days=day)
        parts.append(f'<text x="{x(t):.1f}" y="{_H - 4}" text-anchor="middle">{t:%d %b}</text>')
    if not history:
        parts.append(f'<text x="{_W / 2}" y="{_H / 2}" text-anchor="middle">no history in Redis yet</text>')
    counts = Counter(band_state(s) for s in history)
    summary = ", ".join(f"{name} {counts[name]} h" for name in STATES if counts[name]) or "no hours"
    key = (
        "CFI (solid line)"
        + (" · crash probability 24 h (dashed, right axis 0–100%)" if probs else "")
        + " · regime state per hour (band at the bottom)"
    )
    return (
        f'<svg id="chart" viewBox="0 0 {_W} {_H}" role="img" aria-label="7-day chart of CFI and the regime '
        f'state per hour; states: {_e(summary)}" font-size="11" font-family="sans-serif">{"".join(parts)}'
        f'</svg><p class="muted">{_e(key)}</p>{legend(counts)}'
    )


def legend(counts: Counter[str]) -> str:
    """Every state's band pattern with its name, pattern and hours in the window."""
    items = "".join(
        f'<li class="st-{name}"><svg class="swatch" width="28" height="14" aria-hidden="true">'
        f'<rect width="28" height="14" fill="url(#st-{name})" stroke="#424242" stroke-width="1"/></svg> '
        f"<b>{name}</b> ({look.pattern}{_MEANING.get(name, '')}) · {counts[name]} h</li>"
        for name, look in STATES.items()
    )
    return f'<ul id="legend" class="legend" aria-label="state band legend">{items}</ul>'
