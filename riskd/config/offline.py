"""Sections about the offline module: ``riskd validate``'s choices and the crash-probability model."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from riskd.config.base import _Section


class ValidationSettings(_Section):
    """``riskd validate``: the offline report's choices. Defaults are the research's (RESEARCH.md)."""

    cost_bps: float = Field(
        30.0, ge=0, le=1000, description="Round-trip trading cost per leg, bps (research: ~30 in a cascade)."
    )
    crash_kind: Literal["return", "drawdown", "cascade"] = Field(
        "drawdown",
        description=(
            "riskd's one crash definition (every part of the report, and what crash_prob_24h predicts): "
            "BTC's lowest hourly close within the horizon at or below the threshold (drawdown), its return "
            "to the horizon at or below it (return), or a cascade event within it (cascade)."
        ),
    )
    crash_horizon_h: int = Field(24, ge=1, le=720, description="Hours after the reading a crash may come in.")
    crash_threshold: float = Field(
        -0.05, gt=-1, lt=0, description="BTC move that counts as a crash, at or below (fraction)."
    )
    event_level: Literal["strict", "medium", "loose", "volume_only"] = Field(
        "volume_only", description="Cascade level of the event study and the fixed-rule strategies."
    )
    hold_h: int = Field(
        48, ge=1, le=720, description="Holding period of the contagion and spread strategies, hours."
    )
    bootstrap_reps: int = Field(
        1000, ge=10, le=100_000, description="Bootstrap resamples for confidence intervals."
    )
    block_h: int = Field(
        168, ge=1, le=24 * 90, description="Mean block length of the stationary bootstrap, hours."
    )
    long_block_h: int = Field(
        720, ge=1, le=24 * 365, description="The second, longer mean block of every paired comparison, hours."
    )
    exposure_cost_bps: float = Field(
        10.0, ge=0, le=1000, description="The filter's cost per unit of exposure change, bps of notional."
    )
    seed: int = Field(0, ge=0, description="Random seed of every bootstrap (same seed, same report).")


class ModelSettings(_Section):
    """The crash-probability model: where the daemon reads it, what ``riskd calibrate`` fits (the crash
    itself is riskd's one definition, the ``validation.crash_*`` settings)."""

    crash_prob_path: Path | None = Field(
        None,
        description="Model file (JSON) of crash_prob_24h. None: <data_dir>/models/crash_prob_24h.json. "
        "No file: the daemon publishes crash_prob_24h as null.",
    )
    crash_features: tuple[str, ...] = Field(
        ("btc_rv_24h", "btc_rv_7d", "btc_rv_30d", "btc_drawdown_7d", "btc_ret_24h", "btc_downside_rv_24h"),
        min_length=1,
        description="Columns of the core's output the logistic model uses (default, v2: BTC realised "
        "volatility over 1, 7 and 30 days, the drawdown from the 7-day high, the 24 h return, the 24 h "
        "downside volatility). The crash it predicts is validation.crash_*.",
    )
    refit: Literal["MS", "QS", "YS"] = Field(
        "MS", description="Walk-forward refit dates: month, quarter or year starts (expanding window)."
    )
    min_train_hours: int = Field(
        24 * 365, ge=24, description="Fewest labelled hours before the walk-forward's first fit."
    )
    min_train_crashes: int = Field(50, ge=5, description="Fewest crash hours before the first fit.")
