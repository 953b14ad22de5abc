"""The offline validation as one pure call: frames in, every part's typed result and the findings out.

``riskd validate`` builds :class:`~riskd.research.config.ValidationInputs` from the store through the
core's batch path, calls :func:`run_validation` and hands the result to
:func:`riskd.research.report.write_report`. The research's parts live in :mod:`riskd.research.parts`;
the signal parts are here: the published crash model walk-forward (:mod:`riskd.research.modelstudy`),
every signal scored against the baselines (:mod:`riskd.research.evaluation`), and the regime as an
exposure filter with its tier signal chosen from past data only (:mod:`riskd.research.tiers`,
:mod:`riskd.research.exposure`). Each part is a function of its own, which the benchmark times.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from riskd.core.timeseries import realised_vol
from riskd.research import evaluation, events, exposure, garch, tiers
from riskd.research.config import ValidationConfig, ValidationInputs
from riskd.research.findings import findings_table
from riskd.research.measure import measurements
from riskd.research.modelstudy import ModelStudy, model_part
from riskd.research.parts import (
    beta_part,
    component_part,
    crash_label,
    event_study,
    seed_part,
    strategies_part,
    tail_risk_part,
)
from riskd.research.results import ValidationResult

Progress = Callable[[str], None]
RV_LOGIT = "btc_rv_24h_logit"
"""The crash model's walk-forward logistic on BTC's 24 h realised volatility alone (a baseline)."""
PARTS = (
    "event study",
    "CFI tail risk",
    "walk-forward",
    "beta decomposition",
    "seed backtest",
    "component study",
    "crash model",
    "signals out of sample",
    "filter",
    "findings",
)
"""The names :func:`run_validation` reports as each part starts, in order."""


def baseline_scores(
    inputs: ValidationInputs, cfg: ValidationConfig, model: ModelStudy | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """riskd's signals present in the features (``crash_prob_24h``: the model study's walk-forward
    series), then the baselines: BTC 24 h realised volatility (mapped, and the same logistic model on it
    alone), the GARCH(1,1) crash probability and forecast volatility, funding z alone. Returns the scores
    and the names that are probabilities."""
    feats, closes = inputs.features, inputs.closes
    first = pd.Timestamp(cfg.oos_start, tz="UTC")
    have = {name: feats[name] for name in cfg.signals if name in feats}
    if model is not None:
        have[evaluation.PUBLISHED] = model.prob.reindex(feats.index)
        have[RV_LOGIT] = model.rv_only.reindex(feats.index)
    out = {n: s for n, s in have.items() if s.notna().any()}
    if "btc_rv_24h" in feats:
        out["btc_rv_24h"] = feats["btc_rv_24h"]
    else:  # the synthetic markets carry no core features: the core's function over the closes
        btc = closes[events.BTC]
        out["btc_rv_24h"] = pd.Series(realised_vol(btc.to_numpy(dtype=float), 24), index=btc.index)
    if RV_LOGIT in out:  # beside the mapped one
        out[RV_LOGIT] = out.pop(RV_LOGIT)
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
    probs = [n for n in (*cfg.probability_signals, RV_LOGIT) if n in out]
    if kind != "cascade":
        out["garch_prob"] = g.forecast["prob"]
        probs.append("garch_prob")
    out["garch_vol"] = g.forecast["vol_h"]
    if "agg_funding_z" in feats and feats["agg_funding_z"].notna().any():
        out["agg_funding_z"] = feats["agg_funding_z"]
    return pd.DataFrame(out).reindex(feats.index), probs


def signals_part(
    inputs: ValidationInputs, cfg: ValidationConfig, model: ModelStudy | None = None
) -> evaluation.SignalEvaluation:
    """riskd's signals and the baselines scored out of sample, walk-forward from ``oos_start``, with the
    paired comparison against realised volatility at both block lengths and the verdict."""
    scores, probs = baseline_scores(inputs, cfg, model)
    return evaluation.evaluate_signals(
        scores,
        crash_label(inputs, cfg, cfg.crash),
        first_test=pd.Timestamp(cfg.oos_start, tz="UTC"),
        probabilities=probs,
        crash_text=cfg.crash.describe(),
        horizon_h=cfg.crash.horizon_h,
        blocks=(cfg.block_h, cfg.long_block_h),
        reps=cfg.bootstrap_reps,
        seed=cfg.seed,
        min_history_h=cfg.oos_min_history_h,
        also={RV_LOGIT: "the same logistic model on 24 h realised volatility alone"},
    )


def filter_part(
    inputs: ValidationInputs,
    cfg: ValidationConfig,
    sig: evaluation.SignalEvaluation | None = None,
    model: ModelStudy | None = None,
) -> tuple[exposure.FilterResult | None, tiers.TierChoice | None]:
    """BTC and the alt basket held at the regime's multiplier under each tier signal and under the
    tier chosen each month from past Brier scores (nested), against constant exposure and volatility
    targeting at the same mean exposure, gross and net of cost."""
    rules: dict[str, pd.Series] = dict(inputs.multipliers)
    choice = None
    if inputs.regime is not None and inputs.params is not None:
        prob = None if model is None else model.prob
        variants = tiers.regime_variants(inputs.regime, inputs.params, prob)
        if sig is not None and not sig.probabilities.empty:
            choice = tiers.choose_tiers(
                variants,
                sig.probabilities,
                default=cfg.tier_signal,
                horizon_h=cfg.crash.horizon_h,
                min_history_h=cfg.oos_min_history_h,
            )
            if len(choice.multiplier):
                rules[tiers.NESTED] = choice.multiplier
        rules |= variants
    first_test = pd.Timestamp(cfg.oos_start, tz="UTC")
    if not rules or not (inputs.closes.index >= first_test).any():
        return None, choice
    fr = exposure.filter_backtest(
        inputs.closes,
        rules,
        first_test=first_test,
        vol_windows_h=cfg.vol_windows_h,
        cost_bps=cfg.exposure_cost_bps,
        block_h=cfg.long_block_h,
        reps=cfg.bootstrap_reps,
        seed=cfg.seed,
    )
    return fr, choice


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
    beta = beta_part(strat.trades["alt_contagion"], inputs.closes, cfg)
    say("seed backtest")
    seed = seed_part(inputs, cfg)
    say("component study")
    comp = component_part(inputs, cfg)
    say("crash model")
    model = model_part(inputs, cfg)
    say("signals out of sample")
    sig = signals_part(inputs, cfg, model)
    say("filter")
    filt, choice = filter_part(inputs, cfg, sig, model)
    say("findings")
    meas = measurements(es, tail, strat, beta, seed, cfg=cfg)
    return ValidationResult(
        cfg,
        inputs.span(),
        es,
        tail,
        strat,
        beta,
        seed,
        meas,
        findings_table(meas),
        comp,
        model,
        sig,
        filt,
        choice,
    )
