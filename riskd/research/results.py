"""The offline validation's results: one frozen dataclass per part, and the whole result.

Each part (:mod:`riskd.research.parts`, :mod:`riskd.research.validate`) returns its own type; the findings
(:mod:`riskd.research.measure`) and the report's section renderers (:mod:`riskd.research.sections`,
:mod:`riskd.research.sections_research`) read these fields by name, never a ``dict[str, Any]``.
Tables stay DataFrames (their columns are documented on the field).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from riskd.research.components import ComponentStudy
from riskd.research.config import ValidationConfig
from riskd.research.evaluation import SignalEvaluation
from riskd.research.exposure import FilterResult
from riskd.research.findings import Measurement
from riskd.research.modelstudy import ModelStudy
from riskd.research.tiers import TierChoice
from riskd.research.walkforward import WalkForward


@dataclass(frozen=True)
class EventStudy:
    """Part 1. ``observations``: one row per (event, symbol) with ``event_ret`` and ``ret_<h>h``;
    ``spread``: alts vs BTC per horizon (means, win rate, ``p_obs``, ``p_event``, ``n_events``, ``n_obs``);
    ``per_event``: per event and side the mean forward returns; ``ic``: ``ic_name``, ``ic``, ``p``, ``n``,
    ``ci_lo``, ``ci_hi`` (and ``p_nonoverlap`` for the CFI); ``quintiles``: hardest-hit quintiles at 48 h."""

    observations: pd.DataFrame
    spread: pd.DataFrame
    per_event: pd.DataFrame
    ic: pd.DataFrame
    quintiles: pd.DataFrame


@dataclass(frozen=True)
class Strategies:
    """Part 3. ``fade``: the BTC fade grid's rolling walk-forward; ``fade_summary``: its train/OOS figures
    with the OOS Sharpe's CI; ``trades``: each fixed rule's out-of-sample trades (net of cost);
    ``summary``: one row per rule; ``per_year``/``equity``: per rule."""

    fade: WalkForward
    fade_summary: Mapping[str, float]
    trades: Mapping[str, pd.DataFrame]
    summary: pd.DataFrame
    per_year: Mapping[str, pd.DataFrame]
    equity: Mapping[str, pd.Series]


@dataclass(frozen=True)
class BetaDecomposition:
    """Part 4: ``regression`` (gross trade returns on BTC's, with and without the volatility control),
    ``cost`` (the cost per trade and alpha net of it), ``split`` (by what BTC did)."""

    regression: pd.DataFrame
    cost: pd.DataFrame
    split: pd.DataFrame


@dataclass(frozen=True)
class ValidationResult:
    """Every part's result; ``findings`` is the table at the report's top."""

    config: ValidationConfig
    span: str
    event_study: EventStudy
    tail: pd.DataFrame
    strategies: Strategies
    beta: BetaDecomposition
    seed: pd.DataFrame
    measurements: Mapping[str, Measurement]
    findings: pd.DataFrame
    components: ComponentStudy | None = None
    model: ModelStudy | None = None
    signals: SignalEvaluation | None = None
    exposure: FilterResult | None = None
    tiers: TierChoice | None = None
