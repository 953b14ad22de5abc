"""The offline validation as one pure call: frames in, every part's tables and the findings table out.

``riskd validate`` builds :class:`ValidationInputs` from the store through the core's batch path, calls
:func:`run_validation` and hands the result to :func:`riskd.research.report.write_report`. Each part is
also a function of its own (``event_study``, ``tail_risk_part``, ``strategies_part``, ``beta_part``,
``seed_part``, ``component_part``, ``signals_part``, ``filter_part``), which the benchmark times one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskd.research import (
    backtest,
    components,
    events,
    exposure,
    garch,
    regression,
    signals,
    strategies,
    tailrisk,
    walkforward,
)
from riskd.research.findings import Measurement, findings_table
from riskd.research.measure import measurements

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ValidationConfig:
    """The choices of a validation run; every one is a setting (defaults: the research's)."""

    cost_bps: float = strategies.DEFAULT_COST_BPS
    """Round-trip cost per leg, basis points (research: ~30 bps in a cascade)."""
    crash: tailrisk.CrashDefinition = field(default_factory=tailrisk.CrashDefinition)
    """What a crash is for the CFI tail-risk part (default: BTC below -5% 24 h later)."""
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
    """Mean block length of the stationary bootstrap over hours."""
    bootstrap_reps: int = 1000
    """Bootstrap resamples for CIs (trades, events, crash rates)."""
    ic_reps: int = 100
    """Block-bootstrap resamples for the CI of IC(CFI, forward return) over every hour."""
    oos_min_history_h: int = 24 * 180
    """Hours of CFI history before out-of-sample quintile cut-offs are trusted."""
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
    """Random seed of every bootstrap."""
    component_reps: int = 200
    """Block-bootstrap resamples of the component study and the out-of-sample signal table (shared
    resamples, block sums: :mod:`riskd.research.resample`)."""
    oos_start: str = "2021-01-01"
    """First hour of the walk-forward evaluation of the signals and the filter (2020 trains)."""
    signals: tuple[str, ...] = ("cfi_v1", "cfi_v2", "crash_prob_24h")
    """riskd's signals scored out of sample, those the features carry (CFI v1, v2, crash probability)."""
    probability_signals: tuple[str, ...] = ("crash_prob_24h",)
    """Signals that already are crash probabilities (used as they are, not mapped)."""
    garch_refit_months: int = 3
    """The GARCH(1,1) baseline is refit every this many months..."""
    garch_window_h: int = 2 * 8766
    """... on the last this many hours before the refit (0: all earlier hours)."""
    vol_window_h: int = 168
    """Realised-volatility window of the filter's volatility-targeting baseline, hours."""


@dataclass(frozen=True)
class ValidationInputs:
    """What the core's batch path provides, hourly on one UTC grid.

    ``closes``: close prices, hours x symbols (BTC in ``BTC``). ``features``: at least ``btc_ret_1h``
    (fraction), ``btc_vol_ratio``, ``cfi``; every column is studied by the component study, and the
    named ``signals`` present are scored out of sample. ``events``: cascade level name -> first hour of
    each episode (after the cool-down), see :func:`events_by_level`. ``crashing``: the multi-asset
    detector, per symbol (hours x symbols, bool) or per hour (bool Series), or None to skip the seed
    backtest. ``multipliers``: named hourly exposure series in [0, 1] (riskd's ``risk_multiplier``
    first) for the filter part, empty to skip it.
    """

    closes: pd.DataFrame
    features: pd.DataFrame
    events: Mapping[str, pd.DatetimeIndex]
    crashing: pd.DataFrame | pd.Series | None = None
    multipliers: dict[str, pd.Series] = field(default_factory=dict)

    def span(self) -> str:
        """First and last hour of the prices, for the report."""
        idx = self.closes.index
        return f"{idx.min():%Y-%m-%d} – {idx.max():%Y-%m-%d}" if len(idx) else "no data"


@dataclass
class ValidationResult:
    """Every table of the report, by part; ``findings`` is the table at its top."""

    config: ValidationConfig
    span: str
    event_study: dict[str, pd.DataFrame]
    tail: pd.DataFrame
    strategies: dict[str, Any]
    beta: dict[str, pd.DataFrame]
    seed: pd.DataFrame
    measurements: dict[str, Measurement]
    findings: pd.DataFrame
    components: components.ComponentStudy | None = None
    signals: signals.SignalEvaluation | None = None
    exposure: exposure.FilterResult | None = None


def events_by_level(
    episodes: pd.DataFrame, *, level: str = "level", start: str = "start"
) -> dict[str, pd.DatetimeIndex]:
    """Event hours per level from a frame with one row per episode (the core's ``cascade_events``)."""
    return {
        str(name): pd.DatetimeIndex(group[start]).sort_values().rename("ts")
        for name, group in episodes.groupby(level)
    }


def event_study(inputs: ValidationInputs, cfg: ValidationConfig) -> dict[str, pd.DataFrame]:
    """Part 1: returns after the events, alts vs BTC, the ICs and the hardest-hit quintiles."""
    ev = inputs.events.get(cfg.event_level, pd.DatetimeIndex([]))
    obs = events.event_returns(inputs.closes, ev, overshoot_hours=cfg.overshoot_hours)
    deep = events.event_returns(
        inputs.closes[[events.BTC]],
        inputs.events.get(cfg.depth_level, pd.DatetimeIndex([])),
        (24,),
        overshoot_hours=cfg.overshoot_hours,
    )
    alts = obs[obs["symbol"] != events.BTC]
    btc_rows = deep[deep["symbol"] == events.BTC]
    fwd = events.forward_returns(inputs.closes[[events.BTC]], 24)[events.BTC]
    score = inputs.features["cfi"]
    ics = []
    for name, x, y, kw in (
        ("overshoot", -alts["event_ret"], alts["ret_24h"], {"clusters": alts["ts"].to_numpy()}),
        ("depth", -btc_rows["event_ret"], btc_rows["ret_24h"], {}),
        ("cfi", score, fwd.reindex(score.index), {"block": cfg.block_h}),
    ):
        reps = cfg.ic_reps if name == "cfi" else cfg.bootstrap_reps
        lo, hi = events.ic_ci(x, y, reps=reps, seed=cfg.seed, **kw)
        ics.append({"ic_name": name, **events.spearman_ic(x, y), "ci_lo": lo, "ci_hi": hi})
    ic = pd.DataFrame(ics)
    cfi_ic = events.score_ic(score, inputs.closes, 24)
    ic.loc[ic["ic_name"] == "cfi", ["p_nonoverlap", "n_nonoverlap"]] = [
        cfi_ic["p_nonoverlap"],
        cfi_ic["n_nonoverlap"],
    ]
    return {
        "observations": obs,
        "spread": events.alt_btc_spread(obs),
        "per_event": _per_event_means(obs),
        "ic": ic,
        "quintiles": events.hardest_hit_quintiles(obs, 48),
    }


def crash_definitions(cfg: ValidationConfig) -> dict[str, tailrisk.CrashDefinition]:
    """The three crash definitions at the configured horizon and threshold, by kind."""
    return {
        kind: tailrisk.CrashDefinition(
            kind=kind, horizon_h=cfg.crash.horizon_h, threshold=cfg.crash.threshold
        )
        for kind in ("return", "drawdown", "cascade")
    }


def crash_label(
    inputs: ValidationInputs, cfg: ValidationConfig, definition: tailrisk.CrashDefinition
) -> pd.Series:
    """Hourly crash labels of one definition (cascades: first hours of ``event_level`` episodes)."""
    cascade = None
    if definition.kind == "cascade":
        hours = inputs.events.get(cfg.event_level, pd.DatetimeIndex([]))
        cascade = pd.Series(inputs.closes.index.isin(hours), index=inputs.closes.index)
    return tailrisk.crash_labels(inputs.closes[events.BTC], definition, cascade)


def tail_risk_part(inputs: ValidationInputs, cfg: ValidationConfig) -> pd.DataFrame:
    """Part 2: crash rate per CFI quintile and the Q5/Q1 ratio, in and out of sample."""
    crash = crash_label(inputs, cfg, cfg.crash)
    return tailrisk.tail_risk(
        inputs.features["cfi"],
        crash,
        block_h=cfg.block_h,
        reps=cfg.bootstrap_reps,
        seed=cfg.seed,
        min_history_h=cfg.oos_min_history_h,
    )


def strategies_part(inputs: ValidationInputs, cfg: ValidationConfig) -> dict[str, Any]:
    """Part 3: the fade grid walk-forward and the fixed rules over the annual out-of-sample windows."""
    closes, ev = inputs.closes, inputs.events.get(cfg.event_level, pd.DatetimeIndex([]))
    grid = strategies.btc_fade_candidates(closes, inputs.features, cost_bps=cfg.cost_bps)
    rolling = walkforward.rolling_windows(
        closes.index.min(),
        closes.index.max(),
        train_months=cfg.fade_train_months,
        test_months=cfg.fade_test_months,
    )
    fade = walkforward.walk_forward(grid, rolling, min_train_trades=cfg.fade_min_train_trades)
    annual = walkforward.annual_windows(cfg.oos_years, train_start=closes.index.min())
    hold_h, cost_bps = cfg.hold_h, cfg.cost_bps
    rules = {
        "alt_contagion": strategies.alt_contagion(closes, ev, hold_h=hold_h, cost_bps=cost_bps),
        "market_neutral": strategies.alt_btc_spread(closes, ev, hold_h=hold_h, cost_bps=cost_bps),
        "cross_sectional": strategies.cross_sectional(
            closes, ev, overshoot_hours=cfg.overshoot_hours, hold_h=hold_h, cost_bps=cost_bps
        ),
    }
    rules["btc_buy_the_dip"] = _btc_dip(rules["alt_contagion"], cfg.cost_bps)
    oos = {name: walkforward.walk_forward({name: t}, annual).oos for name, t in rules.items()}
    years = _years_between(annual, closes)
    end = closes.index.max() + pd.Timedelta(hours=1)
    summary = []
    for name, t in oos.items():
        st = backtest.trade_stats(t["net"], years=years, hold_h=cfg.hold_h)
        lo, hi = backtest.sharpe_ci(t["net"], years=st["years"], reps=cfg.bootstrap_reps, seed=cfg.seed)
        summary.append({"strategy": name, **st, "sharpe_ci_lo": lo, "sharpe_ci_hi": hi})
    fade_sum = fade.summary()
    lo, hi = backtest.sharpe_ci(fade.oos["net"], years=fade_sum["oos_years"], reps=cfg.bootstrap_reps)
    return {
        "fade": fade,
        "fade_summary": {**fade_sum, "oos_sharpe_ci_lo": lo, "oos_sharpe_ci_hi": hi},
        "trades": oos,
        "summary": pd.DataFrame(summary),
        "per_year": {n: backtest.per_year(t, start=closes.index.min(), end=end) for n, t in oos.items()},
        "equity": {n: backtest.equity_curve(t) for n, t in oos.items()},
    }


def beta_part(trades: pd.DataFrame, closes: pd.DataFrame, cfg: ValidationConfig) -> dict[str, pd.DataFrame]:
    """Part 4: the alt contagion's **gross** trade return on BTC's return, with a volatility control; the
    cost on its own line and alpha net of it; the split by what BTC did (gross)."""
    vol = regression.pre_event_volatility(closes, trades.index, cfg.vol_control_hours)
    reg = regression.beta_decomposition(trades["gross"], trades["btc_ret"], vol.to_frame())
    return {
        "regression": reg,
        "cost": regression.alpha_net_of_cost(reg, float(trades["cost"].mean()) if len(trades) else np.nan),
        "split": regression.conditional_split(trades["alt_ret"], trades["btc_ret"]),
    }


def component_part(inputs: ValidationInputs, cfg: ValidationConfig) -> components.ComponentStudy:
    """Item 3: every feature's tail ratio per crash definition, in and out of sample, and its IC."""
    defs = crash_definitions(cfg)
    crashes = pd.DataFrame({k: crash_label(inputs, cfg, d) for k, d in defs.items()}).reindex(
        inputs.features.index
    )
    fwd = events.forward_returns(inputs.closes[[events.BTC]], 24)[events.BTC]
    return components.component_study(
        inputs.features,
        crashes,
        fwd,
        descriptions={k: d.describe() for k, d in defs.items()},
        block_h=cfg.block_h,
        reps=cfg.component_reps,
        seed=cfg.seed,
        min_history_h=cfg.oos_min_history_h,
    )


def baseline_scores(inputs: ValidationInputs, cfg: ValidationConfig) -> tuple[pd.DataFrame, list[str]]:
    """riskd's signals present in the features, then the baselines: BTC 24 h realised volatility, the
    GARCH(1,1) crash probability and forecast volatility, funding z alone. Returns the scores and the
    names that are probabilities already."""
    feats, closes = inputs.features, inputs.closes
    first = pd.Timestamp(cfg.oos_start, tz="UTC")
    out = {name: feats[name] for name in cfg.signals if name in feats and feats[name].notna().any()}
    if "btc_rv_24h" in feats:
        out["btc_rv_24h"] = feats["btc_rv_24h"]
    else:  # the synthetic markets carry no core features: the same quantity from the closes
        out["btc_rv_24h"] = closes[events.BTC].pct_change(fill_method=None).rolling(24).std() * np.sqrt(24)
    kind = cfg.crash.kind
    g = garch.walk_forward_garch(
        closes[events.BTC],
        first_test=first,
        refit_months=cfg.garch_refit_months,
        horizon_h=cfg.crash.horizon_h,
        kind=kind,
        threshold=cfg.crash.threshold,
        min_train_h=cfg.oos_min_history_h,
        window_h=cfg.garch_window_h or None,
    )
    probs = [n for n in cfg.probability_signals if n in out]
    if kind != "cascade":
        out["garch_prob"] = g.forecast["prob"]
        probs.append("garch_prob")
    out["garch_vol"] = g.forecast["vol_h"]
    if "agg_funding_z" in feats and feats["agg_funding_z"].notna().any():
        out["agg_funding_z"] = feats["agg_funding_z"]
    return pd.DataFrame(out).reindex(feats.index), probs


def signals_part(inputs: ValidationInputs, cfg: ValidationConfig) -> signals.SignalEvaluation:
    """Item 6: riskd's signals and the baselines scored out of sample, walk-forward from ``oos_start``."""
    scores, probs = baseline_scores(inputs, cfg)
    return signals.evaluate_signals(
        scores,
        crash_label(inputs, cfg, cfg.crash),
        first_test=pd.Timestamp(cfg.oos_start, tz="UTC"),
        probabilities=probs,
        crash_text=cfg.crash.describe(),
        horizon_h=cfg.crash.horizon_h,
        block_h=cfg.block_h,
        reps=cfg.component_reps,
        seed=cfg.seed,
        min_history_h=cfg.oos_min_history_h,
    )


def filter_part(inputs: ValidationInputs, cfg: ValidationConfig) -> exposure.FilterResult | None:
    """Item 7: BTC and the alt basket held at each multiplier vs constant and vol-targeted exposure."""
    if not inputs.multipliers:
        return None
    return exposure.filter_backtest(
        inputs.closes,
        inputs.multipliers,
        first_test=pd.Timestamp(cfg.oos_start, tz="UTC"),
        vol_window_h=cfg.vol_window_h,
    )


def seed_part(inputs: ValidationInputs, cfg: ValidationConfig) -> pd.DataFrame:
    """The first seed document's multi-asset 1–2 h hold over its sample and its regime table, without
    costs (as the document) and with the configured cost."""
    if inputs.crashing is None:
        return pd.DataFrame(columns=["window", "hold_h", "cost_bps", "n"])
    windows = [("seed sample", *cfg.seed_span), *cfg.seed_regimes]
    rows = []
    for hold in cfg.seed_holds:
        for cost in sorted({0.0, cfg.cost_bps}):
            trades = strategies.multi_asset_hold(inputs.closes, inputs.crashing, hold_h=hold, cost_bps=cost)
            for name, lo, hi in windows:
                lo_ts, hi_ts = pd.Timestamp(lo, tz="UTC"), pd.Timestamp(hi, tz="UTC")
                part = trades[(trades.index >= lo_ts) & (trades.index < hi_ts)]
                st = backtest.trade_stats(part["net"], years=(hi_ts - lo_ts) / backtest.YEAR, hold_h=hold)
                ci = backtest.sharpe_ci(
                    part["net"], years=st["years"], reps=cfg.bootstrap_reps, seed=cfg.seed
                )
                rows.append(
                    {
                        "window": name,
                        "hold_h": hold,
                        "cost_bps": cost,
                        **st,
                        "sharpe_ci_lo": ci[0],
                        "sharpe_ci_hi": ci[1],
                    }
                )
    return pd.DataFrame(rows)


def run_validation(
    inputs: ValidationInputs, cfg: ValidationConfig | None = None, *, progress: Progress | None = None
) -> ValidationResult:
    """Every part in turn; ``progress`` is told the name of each part as it starts."""
    cfg = cfg or ValidationConfig()
    say = progress or (lambda _name: None)
    say("event study")
    es = event_study(inputs, cfg)
    say("CFI tail risk")
    tail = tail_risk_part(inputs, cfg)
    say("walk-forward")
    strat = strategies_part(inputs, cfg)
    say("beta decomposition")
    beta = beta_part(strat["trades"]["alt_contagion"], inputs.closes, cfg)
    say("seed backtest")
    seed = seed_part(inputs, cfg)
    say("component study")
    comp = component_part(inputs, cfg)
    say("signals out of sample")
    sig = signals_part(inputs, cfg)
    say("filter")
    filt = filter_part(inputs, cfg)
    say("findings")
    meas = measurements(
        es, tail, strat, beta, seed, crash_text=cfg.crash.describe(), reps=cfg.bootstrap_reps, components=comp
    )
    return ValidationResult(
        cfg, inputs.span(), es, tail, strat, beta, seed, meas, findings_table(meas), comp, sig, filt
    )


def _per_event_means(obs: pd.DataFrame) -> pd.DataFrame:
    """Per event: BTC's and the alts' mean forward returns at each horizon (the event-study curve's
    unit of independence)."""
    cols = [c for c in obs.columns if c.startswith("ret_")]
    side = np.where(obs["symbol"] == events.BTC, "btc", "alts")
    return obs.groupby([obs["ts"], side])[cols].mean().reset_index(names=["ts", "side"])


def _btc_dip(alt_trades: pd.DataFrame, cost_bps: float) -> pd.DataFrame:
    """BTC bought at the same closes as the alt basket, same hold: the benchmark of the equity plot."""
    if alt_trades.empty:
        return alt_trades.copy()
    hold = int(alt_trades["hold_h"].iloc[0])
    return backtest.make_trades(alt_trades["btc_ret"], hold_h=hold, cost_bps=cost_bps)


def _years_between(annual: pd.DataFrame, closes: pd.DataFrame) -> float:
    """Test time actually covered by data (a window past the last price does not count)."""
    lo = np.maximum(annual["test_start"], closes.index.min())
    hi = np.minimum(annual["test_end"], closes.index.max() + pd.Timedelta(hours=1))
    return float(((hi - lo).clip(lower=pd.Timedelta(0)) / backtest.YEAR).sum())
