"""The research's parts of the offline validation, each a pure function of the inputs and the config:
the event study, the CFI tail risk, the strategies' walk-forward, the beta decomposition, the seed
backtest and the component study (the signal parts are in :mod:`riskd.research.validate`).

The research's claims about "the CFI" are scored with the research's CFI (``cfg.research_cfi``, v1),
not with the CFI riskd publishes. Every bootstrap takes ``cfg.seed``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskd.research import backtest, components, events, regression, strategies, tailrisk, walkforward
from riskd.research.config import ValidationConfig, ValidationInputs
from riskd.research.labels import CrashDefinition, all_kinds, crash_labels
from riskd.research.resample import BlockResamples
from riskd.research.results import BetaDecomposition, EventStudy, Strategies


def research_cfi(inputs: ValidationInputs, cfg: ValidationConfig) -> pd.Series:
    """The research's CFI (v1) from the features; a synthetic market that carries one ``cfi`` gives that."""
    name = cfg.research_cfi if cfg.research_cfi in inputs.features else "cfi"
    return inputs.features[name]


def events_by_level(
    episodes: pd.DataFrame, *, level: str = "level", start: str = "start"
) -> dict[str, pd.DatetimeIndex]:
    """Event hours per level from a frame with one row per episode (the core's ``cascade_events``)."""
    return {
        str(name): pd.DatetimeIndex(group[start]).sort_values().rename("ts")
        for name, group in episodes.groupby(level)
    }


def event_study(inputs: ValidationInputs, cfg: ValidationConfig) -> EventStudy:
    """Part 1: returns after the events, alts vs BTC, the ICs (the CFI's: the research's v1) and the
    hardest-hit quintiles."""
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
    score = research_cfi(inputs, cfg)
    ics = []
    for name, x, y, kw in (
        ("overshoot", -alts["event_ret"], alts["ret_24h"], {"clusters": alts["ts"].to_numpy()}),
        ("depth", -btc_rows["event_ret"], btc_rows["ret_24h"], {}),
    ):
        lo, hi = events.ic_ci(x, y, reps=cfg.bootstrap_reps, seed=cfg.seed, **kw)
        ics.append({"ic_name": name, **events.spearman_ic(x, y), "ci_lo": lo, "ci_hi": hi})
    # every hour, overlapping 24 h windows: the component study's block-bootstrap IC (ranks fixed)
    y = fwd.reindex(score.index)
    res = (
        BlockResamples.draw(len(score), cfg.block_h, cfg.bootstrap_reps, cfg.seed)
        if len(score) >= 2 * cfg.block_h
        else None
    )
    block_ic = components.rank_ic(score, y, res)
    ics.append(
        {
            "ic_name": "cfi",
            **events.spearman_ic(score, y),
            "ci_lo": block_ic["ci_lo"],
            "ci_hi": block_ic["ci_hi"],
        }
    )
    ic = pd.DataFrame(ics)
    cfi_ic = events.score_ic(score, inputs.closes, 24)
    ic.loc[ic["ic_name"] == "cfi", ["p_nonoverlap", "n_nonoverlap"]] = [
        cfi_ic["p_nonoverlap"],
        cfi_ic["n_nonoverlap"],
    ]
    return EventStudy(
        observations=obs,
        spread=events.alt_btc_spread(obs),
        per_event=_per_event_means(obs),
        ic=ic,
        quintiles=events.hardest_hit_quintiles(obs, 48),
    )


def crash_definitions(cfg: ValidationConfig) -> dict[str, CrashDefinition]:
    """The three crash kinds at the configured horizon and threshold, by kind."""
    return all_kinds(cfg.crash)


def crash_label(inputs: ValidationInputs, cfg: ValidationConfig, definition: CrashDefinition) -> pd.Series:
    """Hourly crash labels of one definition (cascades: first hours of ``event_level`` episodes)."""
    cascade = None
    if definition.kind == "cascade":
        hours = inputs.events.get(cfg.event_level, pd.DatetimeIndex([]))
        cascade = pd.Series(inputs.closes.index.isin(hours), index=inputs.closes.index)
    return crash_labels(inputs.closes[events.BTC], definition, cascade)


def tail_risk_part(inputs: ValidationInputs, cfg: ValidationConfig) -> pd.DataFrame:
    """Part 2: crash rate per quintile of the research's CFI (v1) and the Q5/Q1 ratio, in and out of
    sample, under each crash kind (the research does not say which it meant), one set of resamples."""
    defs = crash_definitions(cfg)
    crashes = pd.DataFrame({k: crash_label(inputs, cfg, d) for k, d in defs.items()})
    return tailrisk.tail_risk(
        research_cfi(inputs, cfg),
        crashes.reindex(inputs.features.index),
        block_h=cfg.block_h,
        reps=cfg.bootstrap_reps,
        seed=cfg.seed,
        min_history_h=cfg.oos_min_history_h,
    )


def strategies_part(inputs: ValidationInputs, cfg: ValidationConfig) -> Strategies:
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
    lo, hi = backtest.sharpe_ci(
        fade.oos["net"], years=fade_sum["oos_years"], reps=cfg.bootstrap_reps, seed=cfg.seed
    )
    return Strategies(
        fade=fade,
        fade_summary={**fade_sum, "oos_sharpe_ci_lo": lo, "oos_sharpe_ci_hi": hi},
        trades=oos,
        summary=pd.DataFrame(summary),
        per_year={n: backtest.per_year(t, start=closes.index.min(), end=end) for n, t in oos.items()},
        equity={n: backtest.equity_curve(t) for n, t in oos.items()},
    )


def beta_part(trades: pd.DataFrame, closes: pd.DataFrame, cfg: ValidationConfig) -> BetaDecomposition:
    """Part 4: the alt contagion's **gross** trade return on BTC's return, with a volatility control; the
    cost on its own line and alpha net of it; the split by what BTC did (gross)."""
    vol = regression.pre_event_volatility(closes, trades.index, cfg.vol_control_hours)
    reg = regression.beta_decomposition(trades["gross"], trades["btc_ret"], vol.to_frame())
    return BetaDecomposition(
        regression=reg,
        cost=regression.alpha_net_of_cost(reg, float(trades["cost"].mean()) if len(trades) else np.nan),
        split=regression.conditional_split(trades["alt_ret"], trades["btc_ret"]),
    )


def component_part(inputs: ValidationInputs, cfg: ValidationConfig) -> components.ComponentStudy:
    """Item 3: every feature's tail ratio per crash definition, in and out of sample, and its IC. The
    research's CFI is left to Part 2 (one figure, one CI: scored there with ``bootstrap_reps``)."""
    defs = crash_definitions(cfg)
    crashes = pd.DataFrame({k: crash_label(inputs, cfg, d) for k, d in defs.items()}).reindex(
        inputs.features.index
    )
    fwd = events.forward_returns(inputs.closes[[events.BTC]], 24)[events.BTC]
    names = [c for c in inputs.features.columns if c != cfg.research_cfi]
    return components.component_study(
        inputs.features,
        crashes,
        fwd,
        names=names,
        descriptions={k: d.describe() for k, d in defs.items()},
        block_h=cfg.block_h,
        reps=cfg.component_reps,
        seed=cfg.seed,
        min_history_h=cfg.oos_min_history_h,
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
