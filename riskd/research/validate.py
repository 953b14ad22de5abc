"""The offline validation as one pure call: frames in, every part's tables and the findings table out.

``riskd validate`` builds :class:`ValidationInputs` from the store through the core's batch path, calls
:func:`run_validation` and hands the result to :func:`riskd.research.report.write_report`. Each part is
also a function of its own (``event_study``, ``tail_risk_part``, ``strategies_part``, ``beta_part``,
``seed_part``), which the benchmark times one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskd.research import backtest, events, regression, strategies, tailrisk, walkforward
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


@dataclass(frozen=True)
class ValidationInputs:
    """What the core's batch path provides, hourly on one UTC grid.

    ``closes``: close prices, hours x symbols (BTC in ``BTC``). ``features``: ``btc_ret_1h`` (fraction),
    ``btc_vol_ratio``, ``cfi``. ``events``: cascade level name -> first hour of each episode (after
    the cool-down), see :func:`events_by_level`. ``crashing``: the multi-asset detector, per symbol
    (hours x symbols, bool) or per hour (bool Series), or None to skip the seed backtest.
    """

    closes: pd.DataFrame
    features: pd.DataFrame
    events: Mapping[str, pd.DatetimeIndex]
    crashing: pd.DataFrame | pd.Series | None = None

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


def tail_risk_part(inputs: ValidationInputs, cfg: ValidationConfig) -> pd.DataFrame:
    """Part 2: crash rate per CFI quintile and the Q5/Q1 ratio, in and out of sample."""
    cascade = None
    if cfg.crash.kind == "cascade":
        hours = inputs.events.get(cfg.event_level, pd.DatetimeIndex([]))
        cascade = pd.Series(inputs.closes.index.isin(hours), index=inputs.closes.index)
    crash = tailrisk.crash_labels(inputs.closes[events.BTC], cfg.crash, cascade)
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
    kw = {"hold_h": cfg.hold_h, "cost_bps": cfg.cost_bps}
    rules = {
        "alt_contagion": strategies.alt_contagion(closes, ev, **kw),
        "market_neutral": strategies.alt_btc_spread(closes, ev, **kw),
        "cross_sectional": strategies.cross_sectional(closes, ev, overshoot_hours=cfg.overshoot_hours, **kw),
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
    """Part 4: the alt contagion's net trade return on BTC's return, with a volatility control, and the
    split by what BTC did."""
    vol = regression.pre_event_volatility(closes, trades.index, cfg.vol_control_hours)
    return {
        "regression": regression.beta_decomposition(trades["net"], trades["btc_ret"], vol.to_frame()),
        "split": regression.conditional_split(trades["alt_ret"], trades["btc_ret"]),
    }


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
    say("findings")
    meas = measurements(es, tail, strat, beta, seed, crash_text=cfg.crash.describe(), reps=cfg.bootstrap_reps)
    return ValidationResult(cfg, inputs.span(), es, tail, strat, beta, seed, meas, findings_table(meas))


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
