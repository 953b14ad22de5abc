"""What goes into the offline validation: its choices (:class:`ValidationConfig`) and its inputs
(:class:`ValidationInputs`), both plain frozen data.

The ``validation.*`` settings (riskd/config.py) reach the config through ``riskd.commands.validate.config_from``;
the fields without a setting are the research's constants, named as such in docs/validation.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from riskd.core.params import FragilityParams
from riskd.research import strategies
from riskd.research.calibrate import V2_FEATURES
from riskd.research.labels import CrashDefinition


@dataclass(frozen=True)
class ValidationConfig:
    """The choices of a validation run (defaults: the research's; settings where a setting exists)."""

    cost_bps: float = strategies.DEFAULT_COST_BPS
    """Round-trip cost per leg, basis points (research: ~30 bps in a cascade). Setting ``validation.cost_bps``."""
    crash: CrashDefinition = field(default_factory=CrashDefinition)
    """riskd's one crash definition (``validation.crash_*``): every crash label of the report."""
    event_level: str = "volume_only"
    """Cascade level of the event study and the fixed-rule strategies (research: 84 volume-only events)."""
    depth_level: str = "loose"
    """Cascade level of IC(depth, recovery) (research: 36 loose events)."""
    overshoot_hours: int = 1
    """Hours up to the event close over which an asset's drop (overshoot, "hit") is measured."""
    hold_h: int = 48
    """Holding period of the alt contagion, market-neutral and cross-sectional strategies, hours."""
    oos_years: tuple[int, ...] = (2021, 2022, 2023, 2024, 2025)
    """Calendar years of the fixed rules' out-of-sample windows."""
    fade_train_months: int = 3
    """Train window of the BTC fade grid, months."""
    fade_test_months: int = 3
    """Test window of the BTC fade grid, months."""
    fade_min_train_trades: int = 3
    """Fewest train trades for a grid point to be chosen."""
    vol_control_hours: int = 24
    """Window of BTC's pre-event realised volatility, the beta regression's control, hours."""
    block_h: int = 168
    """Mean block length of the stationary bootstrap over hours (``validation.block_h``)."""
    long_block_h: int = 720
    """The second, longer mean block of every paired comparison (``validation.long_block_h``)."""
    bootstrap_reps: int = 1000
    """Bootstrap resamples for CIs (trades, events, crash rates, signals, the filter)."""
    component_reps: int = 200
    """Resamples of the component study (~250 tables; not a setting)."""
    oos_min_history_h: int = 24 * 180
    """Hours of history before out-of-sample quintile cut-offs and mappings are trusted."""
    seed_span: tuple[str, str] = ("2023-01-01", "2024-02-01")
    """The first seed document's backtest sample [start, end)."""
    seed_regimes: tuple[tuple[str, str, str], ...] = (
        ("Mar–Apr 2020", "2020-03-01", "2020-05-01"),
        ("May–Dec 2020", "2020-05-01", "2021-01-01"),
        ("2021", "2021-01-01", "2022-01-01"),
    )
    """The first seed document's regime table: (name, start, end)."""
    seed_holds: tuple[int, ...] = (1, 2)
    """Holding periods of the multi-asset strategy, hours."""
    seed: int = 0
    """Random seed of every bootstrap (``validation.seed``)."""
    research_cfi: str = "cfi_v1"
    """The CFI the research's claims are scored with: the research's own (v1), whatever riskd publishes."""
    oos_start: str = "2021-01-01"
    """First hour of the walk-forward evaluation of the signals and the filter (earlier hours train)."""
    signals: tuple[str, ...] = ("cfi_v1", "cfi_v2", "crash_prob_24h")
    """riskd's signals scored out of sample, those the features carry (CFI v1, v2, crash probability)."""
    probability_signals: tuple[str, ...] = ("crash_prob_24h",)
    """Signals that already are crash probabilities (used as they are, not mapped)."""
    garch_refit_months: int = 3
    """The GARCH(1,1) baseline is refit every this many months..."""
    garch_window_h: int = 2 * 8766
    """... on the last this many hours before the refit (0: all earlier hours)."""
    vol_windows_h: tuple[int, ...] = (24, 168)
    """Realised-volatility windows of the filter's volatility-targeting baselines, hours."""
    exposure_cost_bps: float = 10.0
    """Cost per unit of exposure change, bps of notional (``validation.exposure_cost_bps``)."""
    tier_signal: str = "cfi_v2"
    """The configured regime tier signal (``fragility.regime.signal``): the nested choice's default."""
    model_features: tuple[str, ...] = V2_FEATURES
    """The published crash model's inputs (``model.crash_features``)."""
    refit: str = "MS"
    """Walk-forward refit dates of the crash model (``model.refit``)."""
    min_train_hours: int = 24 * 365
    """Fewest labelled hours before the crash model's first fit (``model.min_train_hours``)."""
    min_train_crashes: int = 50
    """Fewest crash hours before the crash model's first fit (``model.min_train_crashes``)."""


@dataclass(frozen=True)
class ValidationInputs:
    """What the core's batch path provides, hourly on one UTC grid.

    ``closes``: close prices, hours x symbols (BTC in ``BTC``). ``features``: at least ``btc_ret_1h``
    (fraction), ``btc_vol_ratio``, ``cfi``; every column is studied by the component study, and the
    crash model reads its inputs here. ``events``: cascade level name -> first hour of each episode
    (after the cool-down). ``crashing``: the multi-asset detector, per symbol (hours x symbols, bool) or
    per hour (bool Series), or None to skip the seed backtest. ``regime``: the core's stateful columns
    the filter replays the regime from (``cascade_level``, ``multi_asset``, ``reason_bits``,
    ``risk_multiplier`` and the tier signals' percentiles) under ``params`` (the core's), or None;
    ``multipliers``: named exposure series in [0, 1] set beside the regime's (synthetic markets give
    these instead of a regime frame); with neither, the filter is skipped. ``offline``:
    hourly model inputs the live daemon cannot have (5-minute realised volatility), measured, never
    published. ``history``: the features and ``btc_close`` from the first stored hour (the crash model's
    walk-forward trains on them; the other parts read the validated span only; None: the span alone).
    """

    closes: pd.DataFrame
    features: pd.DataFrame
    events: Mapping[str, pd.DatetimeIndex]
    crashing: pd.DataFrame | pd.Series | None = None
    regime: pd.DataFrame | None = None
    params: FragilityParams | None = None
    multipliers: Mapping[str, pd.Series] = field(default_factory=dict)
    offline: pd.DataFrame | None = None
    history: pd.DataFrame | None = None
    notes: tuple[str, ...] = ()
    """What the shell knows about inputs the core did not compute (e.g. the liquidations' span)."""

    def span(self) -> str:
        """First and last hour of the prices, for the report."""
        idx = self.closes.index
        return f"{idx.min():%Y-%m-%d} – {idx.max():%Y-%m-%d}" if len(idx) else "no data"
