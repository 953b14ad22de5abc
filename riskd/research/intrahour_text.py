"""The ``riskd validate --intra-hour`` report as markdown: per data set, the summary per span and
detector, riskd against the plain alert, the aim of issue 21, and the per-event table. Pure."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from riskd.core.intrahour import IntrahourParams
from riskd.research.intrahour import DETECTORS, IntrahourReport, spans, verdict
from riskd.research.latency import in_span, summary
from riskd.research.onset import OnsetRule
from riskd.research.plain_alert import PlainAlert

NAMES = {"riskd": "riskd provisional", "plain": "plain price alert"}
SUMMARY_HEAD = (
    "| span | detector | cascades | warned (95 % CI) | median min from onset (95 % CI) | p80 | ≤ 5 min | ≤ 10 min "
    "| ≤ 30 min | median min from 10 % done | median share of fall ahead | after trough | false alarms / month |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def _num(x: float, spec: str = ".0f") -> str:
    return "–" if x is None or not np.isfinite(x) else format(x, spec)


def summary_row(span: str, det: str, f: dict[str, Any]) -> str:
    """One line of the summary table."""
    lo, hi = f["warned_ci"]
    mlo, mhi = f["median_latency_ci"]
    return (
        f"| {span} | {NAMES[det]} | {f['cascades']} | {f['warned']} ({_num(100 * lo)}–{_num(100 * hi)} %) | "
        f"{_num(f['median_latency'])} ({_num(mlo)}–{_num(mhi)}) | {_num(f['p80_latency'])} | "
        f"{_num(100 * f['within_5'])} % | {_num(100 * f['within_10'])} % | {_num(100 * f['within_30'])} % | "
        f"{_num(f['median_latency10'])} | {_num(f['median_share_ahead'], '.2f')} | {f['after_trough']} | "
        f"{_num(f['false_per_month'], '.2f')} ({f['false_alarms']} in {f['hours']} h) |"
    )


def aim_lines(rep: IntrahourReport, since: pd.Timestamp | None) -> list[str]:
    """The aim of issue 21 for riskd's detector after the cut (a target, not a test): met or not."""
    f = summary(rep.scores["riskd"], since, None)
    if not f["cascades"]:
        return []
    limit = 20 if rep.bar_minutes == 1 else 30
    items = [
        ("cascades warned", "≥ 90 %", f["warned_share"], f["warned_share"] >= 0.9, ".0%"),
        (
            "median minutes from onset (last high)",
            f"≤ {limit}",
            f["median_latency"],
            f["median_latency"] <= limit,
            ".0f",
        ),
        (
            "median minutes from 10 % done",
            f"≤ {limit}",
            f["median_latency10"],
            f["median_latency10"] <= limit,
            ".0f",
        ),
        (
            "median share of the fall ahead",
            "≥ 0.5",
            f["median_share_ahead"],
            f["median_share_ahead"] >= 0.5,
            ".2f",
        ),
        (
            "warned at or after the trough",
            "≤ 10 %",
            f["after_trough"] / f["cascades"],
            f["after_trough"] / f["cascades"] <= 0.1,
            ".0%",
        ),
        (
            "false provisional alarms a month",
            "≤ 1.5",
            f["false_per_month"],
            f["false_per_month"] <= 1.5,
            ".2f",
        ),
    ]
    lines = ["| aim (riskd, out of sample) | target | value | met |", "|---|---|---|---|"]
    lines += [
        f"| {name} | {target} | {_num(v, spec)} | {'yes' if ok else 'no'} |"
        for name, target, v, ok, spec in items
    ]
    return [*lines, ""]


def clock_lines(rep: IntrahourReport, cut: pd.Timestamp) -> list[str]:
    """How soon any warning that waits for BTC to move could come (``onset.fall_clock``), per span."""
    lines = []
    for span, (since, until) in spans(cut).items():
        c = rep.cascades[in_span(rep.cascades, since, until)]
        if len(c):
            lines.append(
                f"- {span}, how soon a price-based warning could come ({len(c)} cascades): median "
                f"{_num(c['min_to_1pct'].median())} min from onset to BTC 1 % below its onset close, "
                f"{_num(c['min_to_2pct'].median())} min to 2 %, {_num(c['min_to_half'].median())} min to "
                f"half the fall (median fall {c['fall'].median():+.1%} over {_num(c['fall_minutes'].median())} min)."
            )
    return [*lines, ""]


def _t(ts: pd.Timestamp) -> str:
    return "–" if pd.isna(ts) else f"{ts:%Y-%m-%d %H:%M}"


def _hm(ts: pd.Timestamp) -> str:
    return "–" if pd.isna(ts) else f"{ts:%H:%M}"


def event_lines(rep: IntrahourReport) -> list[str]:
    """The per-event table (the CSV holds the same and more)."""
    head = (
        "| onset (last high) | 10 % done | trough | fall | min | hourly close | hourly before trough | "
        + " | ".join(f"{NAMES[d]}: warned, min from onset, share ahead" for d in DETECTORS)
        + " |"
    )
    lines = [head, "|" + "---|" * (7 + len(DETECTORS))]
    for i, c in enumerate(rep.cascades.to_dict("records")):
        cells = [
            _t(c["onset_at"]),
            _hm(c["onset10_at"]),
            _t(c["trough_at"]),
            f"{c['fall']:+.1%}",
            f"{c['fall_minutes']:.0f}",
            _hm(c["first_as_of"]),
            "yes" if c["hourly_before_trough"] else "no",
        ]
        for d in DETECTORS:
            e = rep.scores[d].events.iloc[i]
            cells.append(
                "missed"
                if pd.isna(e["warned_at"])
                else f"{_hm(e['warned_at'])}, {e['latency_min']:.0f}, {e['share_ahead']:.2f}"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def markdown(
    reports: dict[str, IntrahourReport],
    params: IntrahourParams,
    plain: PlainAlert,
    cut: pd.Timestamp,
    rule: OnsetRule | None = None,
) -> str:
    """The whole report (module docstring)."""
    r = rule or OnsetRule()
    lines = [
        "# Intra-hour warnings, timed from each cascade's onset",
        "",
        f"- riskd provisional detector, alert level `{params.alert_level}`: {params.model_dump()}",
        f'- plain price alert: "{plain.label()}" (fixed; chosen on perp 5-minute bars before {cut:%Y-%m-%d})',
        f"- onset (last high): the last close before the trough that is the highest of the {r.high_window_minutes} "
        f"minutes before it and not reached again until the trough, with ≥ {r.min_share:.0%} of the largest fall "
        f"of the {r.lookback_minutes} minutes into the trough; 10 % done: the close from which the fall stays at "
        f"least {r.done_share:.0%} done until the trough. Trough: the lowest close from the first event hour's open to {r.after_minutes} min after "
        "the last one's close. Latency: to the first firing bar's close after the onset.",
        "- events: BTC hours with a 1 h return ≤ −3 % on ≥ 2× the previous 24 h's volume; hours one apart, "
        "or sharing a fall, are one cascade. Latency medians are over warned cascades (n in 'warned'); "
        "the ≤ k min shares are over all. False alarm: an hour with a firing bar away from every cascade.",
        "- per-event table: `intrahour_events.csv` beside this file.",
        "",
    ]
    for name, rep in reports.items():
        lines += [f"## {name}", "", SUMMARY_HEAD]
        for span, (since, until) in spans(cut).items():
            for det in DETECTORS:
                lines.append(summary_row(span, det, summary(rep.scores[det], since, until)))
        lines.append("")
        for span, (since, until) in spans(cut).items():
            lines.append(f"- {span}: {verdict(rep, since, until)}.")
        lines += ["", *clock_lines(rep, cut)]
        lines += ["", *aim_lines(rep, cut), *event_lines(rep)]
    return "\n".join(lines)
