"""Writes a validation result to disk: ``report.md``, the PNG figures, ``results.json`` and
``signals.parquet``.

The only module of ``riskd.research`` that touches the file system; the statistics stay pure. The
report is one renderer per section (:mod:`riskd.research.sections_research`,
:mod:`riskd.research.sections`), composed here in order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskd.research import plots, sections, sections_research, signal_plots
from riskd.research.evaluation import PUBLISHED, SignalEvaluation
from riskd.research.inputs import InputsReport
from riskd.research.results import ValidationResult


def figures(result: ValidationResult) -> dict[str, Any]:
    """The report's figures by file stem."""
    es, strat = result.event_study, result.strategies
    reg = result.beta.regression.set_index("model").loc["base"]
    alt = strat.trades["alt_contagion"]
    tail = result.tail[result.tail["crash"] == result.config.crash.kind]
    out = {
        "event_study": plots.event_study_curves(es.spread),
        "crash_rates": plots.crash_rates(tail),
        "equity": plots.equity_vs_benchmark(strat.equity["alt_contagion"], strat.equity["btc_buy_the_dip"]),
        "drawdown": plots.drawdown_chart(strat.equity["alt_contagion"]),
        "trade_scatter": plots.trade_scatter(
            alt.get("btc_ret", pd.Series()), alt["gross"], reg["alpha"], reg["beta"]
        ),
        "walk_forward": plots.walk_forward_gap(strat.fade.windows),
    }
    if result.components is not None:
        out["components"] = signal_plots.component_ratios(result.components, result.config.crash.kind)
    if result.signals is not None and not result.signals.probabilities.empty:
        out["reliability"] = signal_plots.reliability(result.signals)
        out["brier_skill"] = signal_plots.brier_skill(result.signals)
    if result.exposure is not None:
        out["filter_equity"] = signal_plots.filter_equity(result.exposure)
    return out


def render_markdown(result: ValidationResult, images: Mapping[str, str]) -> str:
    """The report's text; ``images`` maps a figure stem to its file name."""
    cfg = result.config
    out = [
        *sections_research.render_findings(result),
        *sections_research.render_event_study(result.event_study, images["event_study"]),
        *sections_research.render_tail(result.tail, cfg, images["crash_rates"]),
        *sections_research.render_walk_forward(result.strategies, cfg, images),
        *sections_research.render_beta(result.beta, images["trade_scatter"]),
        *sections_research.render_seed(result.seed),
    ]
    if result.components is not None:
        out += sections.render_components(result.components, images["components"], cfg.research_cfi)
    if result.model is not None:
        out += sections.render_model(result.model)
    if result.signals is not None:
        out += sections.render_signals(result.signals, images)
    if result.exposure is not None:
        out += sections.render_filter(result.exposure, images["filter_equity"], result.tiers)
    else:
        out += [
            "## The filter as bots use it",
            f"Not testable on this span: no hour at or after the out-of-sample start {cfg.oos_start} "
            "(`validation.oos_start`), or no regime to filter with.",
            "",
        ]
    return "\n".join(out)


def to_jsonable(value: Any) -> Any:
    """Plain JSON data from frames, series, dataclasses, timestamps and numpy scalars: NaN → null, an
    infinite value (a CI end whose resamples reach a zero Q1 rate) → the string ``"inf"`` / ``"-inf"``."""
    if isinstance(value, pd.DataFrame):
        frame = value if isinstance(value.index, pd.RangeIndex) else value.reset_index()
        return [to_jsonable(r) for r in frame.to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "__dataclass_fields__") and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, pd.Timestamp | datetime | date):
        return None if value is pd.NaT else value.isoformat()
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return None if math.isnan(v) else v
    return value


def _signals_json(ev: SignalEvaluation | None) -> dict[str, Any] | None:
    if ev is None:
        return None
    return {
        "verdict": {"answer": ev.verdict.answer, "line": ev.verdict.line(), "paired": ev.verdict.paired},
        "more_verdicts": [
            {"answer": v.answer, "line": v.line(), "paired": v.paired} for v in ev.more_verdicts
        ],
        "table": ev.table,
        "per_year": ev.per_year,
        "reliability": ev.reliability,
        "span": ev.span,
        "episodes": ev.episodes,
    }


def results_json(result: ValidationResult) -> dict[str, Any]:
    """Everything in the report as data, for scripts (``results.json``)."""
    strat, model = result.strategies, result.model
    return to_jsonable(
        {
            "span": result.span,
            "config": result.config,
            "findings": result.findings,
            "event_study": {
                k: getattr(result.event_study, k) for k in ("spread", "per_event", "ic", "quintiles")
            },
            "tail_risk": result.tail,
            "walk_forward": {
                "fade_summary": strat.fade_summary,
                "fade_windows": strat.fade.windows,
                "summary": strat.summary,
                "per_year": strat.per_year,
                "trades": {k: v.reset_index() for k, v in strat.trades.items()},
            },
            "beta": {k: getattr(result.beta, k) for k in ("regression", "cost", "split")},
            "seed_backtest": result.seed,
            "component_study": None
            if result.components is None
            else {
                "ratios": result.components.ratios,
                "ic": result.components.ic,
                "crashes": result.components.crashes,
            },
            "crash_model": None
            if model is None
            else {
                "last_fit": model.last,
                "fits": model.fits,
                "contributions": model.contributions,
                "notes": model.notes,
            },
            "signals_oos": _signals_json(result.signals),
            "filter": None
            if result.exposure is None
            else {
                "summary": result.exposure.summary,
                "net": result.exposure.net,
                "paired": result.exposure.paired,
            },
            "tier_choice": None if result.tiers is None else result.tiers.months,
        }
    )


def signals_frame(ev: SignalEvaluation) -> pd.DataFrame:
    """``signals.parquet``: one row per out-of-sample hour: ``hour`` (UTC open time), ``crash`` (0/1),
    ``p_<signal>`` for every signal and baseline, ``p_climatology`` (the Brier skill's reference) and
    ``p_published`` (what the daemon would have published: the walk-forward ``crash_prob_24h``)."""
    probs = ev.probabilities
    out = pd.DataFrame({"hour": pd.DatetimeIndex(probs.index).tz_convert("UTC")})
    out["crash"] = probs["crash"].to_numpy(dtype=np.int8)
    for name in [c for c in probs.columns if c != "crash"]:
        out[f"p_{name}"] = probs[name].to_numpy(dtype=float)
    if PUBLISHED in probs:
        out["p_published"] = probs[PUBLISHED].to_numpy(dtype=float)
    return out


def write_report(
    result: ValidationResult,
    out_dir: Path,
    *,
    dpi: int = 110,
    inputs: InputsReport | None = None,
    timings: Mapping[str, float] | None = None,
) -> list[Path]:
    """Write ``report.md``, one PNG per figure, ``results.json`` and ``signals.parquet`` into ``out_dir``;
    ``inputs`` (how the shell derived them) adds the "Data and inputs" section, ``timings`` the seconds
    per step to results.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, images = [], {}
    for stem, fig in figures(result).items():
        path = out_dir / f"{stem}.png"
        fig.savefig(path, dpi=dpi)
        images[stem] = path.name
        written.append(path)
    md = out_dir / "report.md"
    text = render_markdown(result, images)
    if inputs is not None:
        text += "\n".join(sections_research.render_inputs(inputs))
    md.write_text(text, encoding="utf-8")
    data = results_json(result)
    if inputs is not None:
        data["inputs"] = to_jsonable(inputs)
    if timings is not None:
        data["timings_s"] = dict(timings)
    js = out_dir / "results.json"
    js.write_text(json.dumps(data, indent=1, allow_nan=False), encoding="utf-8")
    written.append(js)
    if result.signals is not None and not result.signals.probabilities.empty:
        pq = out_dir / "signals.parquet"
        signals_frame(result.signals).to_parquet(pq, index=False)
        written.append(pq)
    return [md, *written]
