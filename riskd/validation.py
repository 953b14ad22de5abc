"""``riskd validate``: the offline validation over the stored history, from the store to a report.

The thin shell around the pure statistics of ``riskd.research``: it reads the Parquet store through
``store_panel`` (the panel the daemon and replay build), runs the core's batch path over it, turns the
result into :class:`~riskd.research.validate.ValidationInputs`, runs every part with progress on the
terminal and writes ``report.md``, the PNG figures and ``results.json``.

How the inputs are derived (also written into the report's "Data and inputs" section):

- **Prices** are the panel's closes, hours x symbols: the Binance perp where it has a candle, else the
  spot stand-in (``panel.spot_stand_in``), because most alts have perps only from 2022 on while the
  research's universe traded them from 2020. A return across a perp/spot switch mixes the two (one
  basis-sized jump); the report gives the share of alt-hours priced from spot.
- **Warm-up**: the core runs over the whole stored history up to ``--to``, and the inputs are cut to
  ``[--from, --to]`` afterwards, so the first validated hour has its z-scores, percentiles and volume
  rankings exactly as the daemon would have had them.
- **Events** are the first hour of each episode of each level (``cascade_events``, the core's cool-down
  grouping), found inside the validated span.
- **Multi-asset flags per asset** (the first seed document buys the crashing assets) come from the
  core's detector itself (``riskd.core.crashing_assets``, the cells behind ``multi_asset_count``), kept
  to the hours the detector fires.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from riskd.commands._args import hour_arg
from riskd.core import Panel, cascade_events, compute_fragility, crashing_assets
from riskd.core.output import COVERAGE_PREFIXES, PASS_THROUGH, STATE_COLUMNS
from riskd.core.params import FragilityParams
from riskd.errors import ConfigError, DataError
from riskd.live import store_panel
from riskd.research.tailrisk import CrashDefinition
from riskd.research.validate import (
    ValidationConfig,
    ValidationInputs,
    ValidationResult,
    events_by_level,
    run_validation,
)
from riskd.settings import Settings
from riskd.store import HistoryStore

log = logging.getLogger("riskd.validation")

HOUR = pd.Timedelta(hours=1)
RESEARCH_START = pd.Timestamp("2020-01-01", tz="UTC")
"""Default ``--from``: the research's sample starts in 2020 (RESEARCH.md, "events 2020–2026"). Earlier
stored hours still warm the core up; before 2020 the store holds mostly spot prices and no funding."""
FEATURES = ("btc_ret_1h", "btc_vol_ratio", "cfi")
"""The core's columns the event study and strategies use; the component study takes every feature
(:func:`feature_frame`)."""
SIGNALS = ("cfi", "cfi_v1", "cfi_v2", "crash_prob_24h")
"""riskd's published signals, studied and scored out of sample when the core's frame carries them."""
PARTS = (
    "event study",
    "CFI tail risk",
    "walk-forward",
    "beta decomposition",
    "seed backtest",
    "component study",
    "signals out of sample",
    "filter",
    "findings",
)
"""The names ``run_validation`` reports as each part starts, in order."""


@dataclass
class LoadedHistory:
    """The stored history run through the core: the panel, the core's frame, and the validated span."""

    panel: Panel
    frame: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp


@dataclass
class InputsReport:
    """How the inputs were derived, for the report's "Data and inputs" section and ``results.json``."""

    symbols: list[str]
    span: str
    warmup_from: str
    hours: int
    standin_share: dict[str, float]
    events: dict[str, int]
    multi_asset_check: str
    store: str = ""
    notes: list[str] = field(default_factory=list)


# ---- loading --------------------------------------------------------------------------------------


def universe(symbols: Sequence[str] | None, settings: Settings) -> tuple[str, ...]:
    """The validated symbols: ``--symbols`` or the universe, BTC always first (every part measures
    against it)."""
    names = [s.upper() for s in (symbols or settings.universe.symbols)]
    btc = settings.fragility.universe.btc_symbol
    return (btc, *dict.fromkeys(s for s in names if s != btc))


def load_panel(
    store: HistoryStore,
    params: FragilityParams,
    symbols: Sequence[str],
    venues: Sequence[str],
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> tuple[Panel, pd.Timestamp, pd.Timestamp]:
    """The panel over everything stored up to ``end``, and the validated span ``(start, end)``.

    ``start`` only says where the validation begins (default :data:`RESEARCH_START`, or the first BTC
    hour if later); the panel begins at the first stored hour so the core is warmed up by ``start``.
    Raises :class:`DataError` when the store is empty or holds no BTC price in the span.
    """
    if not store.partitions():
        raise DataError(
            f"the store at {store.root} is empty: run `riskd data import PATH` or `riskd backfill`"
        )
    btc = params.universe.btc_symbol
    primary = params.funding.primary_venue
    held = [
        (a, b)
        for d in ("ohlcv", "spot_ohlcv")
        if (a := store.first_ts(d, primary, btc)) is not None
        and (b := store.last_ts(d, primary, btc)) is not None
    ]
    if not held:
        raise DataError(f"no {btc} prices in the store at {store.root}: import or backfill {btc} first")
    first, last = min(a for a, _ in held).floor("h"), max(b for _, b in held).floor("h")
    asked = (RESEARCH_START if start is None else start, last if end is None else end)
    start, end = max(asked[0], first), min(asked[1], last)
    if start > end:
        raise DataError(
            f"no {btc} prices between {_day(asked[0])} and {_day(asked[1])}: the store holds {btc} "
            f"from {_day(first)} to {_day(last)}"
        )
    panel = store_panel(store, params, symbols, venues, end)
    if panel is None:
        raise DataError(f"no {btc} prices up to {_day(end)} in the store at {store.root}")
    btc_close = panel.close[:, panel.symbols.index(btc)]
    inside = (panel.index >= start) & (panel.index <= end)
    if not np.isfinite(btc_close[inside]).any():
        raise DataError(f"no {btc} prices between {_day(start)} and {_day(end)} in the store at {store.root}")
    return panel, start, end


def load_history(
    store: HistoryStore,
    params: FragilityParams,
    symbols: Sequence[str],
    venues: Sequence[str],
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> LoadedHistory:
    """:func:`load_panel` and the core's batch path over it."""
    panel, start, end = load_panel(store, params, symbols, venues, start, end)
    return LoadedHistory(panel, compute_fragility(panel, params), start, end)


def _day(ts: pd.Timestamp) -> str:
    return f"{ts:%Y-%m-%d %H:%M}"


# ---- inputs ---------------------------------------------------------------------------------------


def feature_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every numeric feature of the core's frame (no state, coverage or pass-through column), the CFI's
    funding-gap component as it enters the CFI (``funding_gap_abs_z`` = |z|), then riskd's signals."""
    skip = set(STATE_COLUMNS) | set(PASS_THROUGH) | set(SIGNALS)
    names = [
        c
        for c in frame.columns
        if c not in skip
        and not c.startswith(COVERAGE_PREFIXES)
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]
    out = frame[names].astype(float)
    if "funding_gap_z" in frame:
        out["funding_gap_abs_z"] = frame["funding_gap_z"].abs()
    for name in SIGNALS:
        if name in frame:
            out[name] = frame[name].astype(float)
    return out


def validation_inputs(
    loaded: LoadedHistory, params: FragilityParams
) -> tuple[ValidationInputs, InputsReport]:
    """The statistics' inputs over the validated span, and the account of how they were derived."""
    panel, frame = loaded.panel, loaded.frame
    inside = (panel.index >= loaded.start) & (panel.index <= loaded.end)
    closes = pd.DataFrame(panel.close[inside], index=panel.index[inside], columns=list(panel.symbols))
    closes.index.name = "ts"
    part = frame.loc[inside]
    # episodes are grouped over the whole history (as the daemon saw them), then kept if they begin
    # inside the span: one already under way at --from is not counted again from its later hours
    episodes = cascade_events(frame, params.cascade)
    if len(episodes):
        episodes = episodes[(episodes["start"] >= loaded.start) & (episodes["start"] <= loaded.end)]
    events = events_by_level(episodes) if len(episodes) else {}
    flags = crashing_assets(panel, params)
    fired = part["multi_asset"].to_numpy(dtype=bool)[:, None]
    crashing = flags.loc[inside] & fired
    check = (
        f"per-asset flags from the core's detector; {int(fired.sum())} multi-asset hours in the span, "
        f"{int(crashing.to_numpy().sum())} asset-hours bought"
    )
    inputs = ValidationInputs(
        closes, feature_frame(part), events, crashing, {"riskd regime": part["risk_multiplier"].astype(float)}
    )
    stand_in = panel.stand_in[inside] if panel.stand_in is not None else np.zeros(closes.shape, dtype=bool)
    priced = closes.notna().to_numpy()
    share = {
        s: float(stand_in[:, j][priced[:, j]].mean()) if priced[:, j].any() else float("nan")
        for j, s in enumerate(panel.symbols)
    }
    report = InputsReport(
        symbols=list(panel.symbols),
        span=inputs.span(),
        warmup_from=f"{panel.index[0]:%Y-%m-%d}",
        hours=len(closes),
        standin_share=share,
        events={k: len(v) for k, v in events.items()},
        multi_asset_check=check,
    )
    return inputs, report


# ---- the run --------------------------------------------------------------------------------------

Say = Callable[[str], None]
"""Told the name of each step as it starts."""


@dataclass
class Timings:
    """Wall seconds per step, in order (loading, core, inputs, each part, the report)."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the ``with`` block under ``name``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

    @contextmanager
    def parts(self, say: Say) -> Iterator[Say]:
        """A progress callback for ``run_validation`` that times each part from its start to the
        next one's (the last part ends with the ``with`` block) and passes the name on to ``say``."""
        current: list[tuple[str, float]] = []

        def close() -> None:
            if current:
                name, t0 = current.pop()
                self.seconds[name] = time.perf_counter() - t0

        def progress(name: str) -> None:
            close()
            current.append((name, time.perf_counter()))
            say(name)

        try:
            yield progress
        finally:
            close()

    @property
    def total(self) -> float:
        """Sum of all steps."""
        return sum(self.seconds.values())


def validate_store(
    settings: Settings,
    out_dir: Path,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    symbols: Sequence[str] | None = None,
    cfg: ValidationConfig | None = None,
    say: Say | None = None,
) -> tuple[ValidationResult, list[Path], Timings]:
    """The whole command without the terminal: store -> core -> statistics -> files in ``out_dir``.

    ``say`` is told the name of each step as it starts (the progress display).
    """
    from riskd.research.report import write_report  # matplotlib: only when a report is written

    cfg = cfg or ValidationConfig()
    say = say or (lambda _name: None)
    times = Timings()
    params = settings.fragility
    store = HistoryStore(settings.store_dir)
    say("store → panel")
    with times.step("store → panel"):
        panel, start, end = load_panel(
            store, params, universe(symbols, settings), settings.venues.enabled(), start, end
        )
    say("core (batch path)")
    with times.step("core (batch path)"):
        loaded = LoadedHistory(panel, compute_fragility(panel, params), start, end)
    say("crash probability (walk-forward)")
    with times.step("crash probability (walk-forward)"):
        loaded.frame["crash_prob_24h"] = walk_forward_probability(loaded, settings)
    say("regime under each tier signal")
    with times.step("regime under each tier signal"):
        variants = regime_variants(panel, params)
    say("inputs")
    with times.step("inputs"):
        inputs, account = validation_inputs(loaded, params)
        for name, multiplier in variants.items():
            inputs.multipliers[name] = multiplier.loc[inputs.multipliers["riskd regime"].index]
        account.store = str(settings.store_dir)
    with times.parts(say) as progress:
        result = run_validation(inputs, cfg, progress=progress)
    say("report")
    with times.step("report (md, png, json)"):
        paths = write_report(result, out_dir)
        _add_inputs(paths, account, times)
    return result, paths, times


def walk_forward_probability(loaded: LoadedHistory, settings: Settings) -> pd.Series:
    """``crash_prob_24h`` out of sample: the ``model`` settings' logistic model refit walk-forward
    (expanding window, only labels known at each fit date), each period predicted by the fit before it.
    This, not a model file fitted on everything, is what the report scores."""
    from riskd.research.calibrate import CrashSpec, crash_labels, walk_forward_crash_prob

    m, p = settings.model, settings.fragility
    spec = CrashSpec(tuple(m.crash_features), m.crash_horizon_hours, m.crash_threshold)
    btc = loaded.panel.frame("close")[p.universe.btc_symbol]
    labels = crash_labels(btc, spec.horizon_hours, spec.threshold)
    wf = walk_forward_crash_prob(loaded.frame, labels, spec, refit=m.refit, min_train_hours=m.min_train_hours,
                                 min_train_crashes=m.min_train_crashes)  # fmt: skip
    return wf.prob


def regime_variants(panel: Panel, params: FragilityParams) -> dict[str, pd.Series]:
    """The regime's risk multiplier had its tiers followed another signal (the filter compares them at
    equal mean exposure). ``crash_prob`` is left out: the core's batch path uses one fixed model file,
    which would be in sample here."""
    out = {}
    for signal in ("cfi_v1", "cfi_v2", "btc_rv"):
        if signal == params.regime.signal:
            continue
        variant = params.model_copy(update={"regime": params.regime.model_copy(update={"signal": signal})})
        out[f"regime on {signal}"] = compute_fragility(panel, variant)["risk_multiplier"].astype(float)
    return out


def _add_inputs(paths: list[Path], account: InputsReport, times: Timings) -> None:
    """Append the "Data and inputs" section to report.md and the same facts to results.json."""
    md = next(p for p in paths if p.name == "report.md")
    js = next(p for p in paths if p.name == "results.json")
    spot = ", ".join(f"{s} {v:.0%}" for s, v in account.standin_share.items() if np.isfinite(v) and v > 0)
    lines = [
        "",
        "## Data and inputs",
        f"- Store: `{account.store}`; symbols: {', '.join(account.symbols)}.",
        f"- Validated span: {account.span} ({account.hours:,} hours); the core ran from "
        f"{account.warmup_from} so the span starts warmed up.",
        "- Prices: Binance perp closes, with the spot close standing in where the perp has no candle "
        "(`panel.spot_stand_in`); a return across a switch mixes spot and perp (one basis-sized jump).",
        f"- Share of priced hours from spot: {spot or 'none'}.",
        "- Events: first hour of each episode per level (`cascade_events`, core cool-down): "
        + ", ".join(f"{k} {v}" for k, v in sorted(account.events.items())),
        f"- Multi-asset detector: {account.multi_asset_check}.",
        *[f"- {n}" for n in account.notes],
        "",
    ]
    with md.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    data: dict[str, Any] = json.loads(js.read_text(encoding="utf-8"))
    data["inputs"] = {
        **account.__dict__,
        "standin_share": {k: (v if np.isfinite(v) else None) for k, v in account.standin_share.items()},
    }
    data["timings_s"] = dict(times.seconds)
    js.write_text(json.dumps(data, indent=1, allow_nan=False), encoding="utf-8")


# ---- the command ----------------------------------------------------------------------------------


def config_from(settings: Settings, args: argparse.Namespace | None = None) -> ValidationConfig:
    """The validation's choices: the ``validation`` settings, with ``--cost-bps`` and ``--reps`` on top."""
    v, research = settings.validation, ValidationConfig()
    cfg = replace(
        research,
        cost_bps=v.cost_bps,
        crash=CrashDefinition(kind=v.crash_kind, horizon_h=v.crash_horizon_h, threshold=v.crash_threshold),
        event_level=v.event_level,
        hold_h=v.hold_h,
        bootstrap_reps=v.bootstrap_reps,
        ic_reps=min(research.ic_reps, v.bootstrap_reps),
        block_h=v.block_h,
        seed=v.seed,
    )
    if args is not None and getattr(args, "cost_bps", None) is not None:
        if args.cost_bps < 0:
            raise ConfigError("invalid argument --cost-bps: must be >= 0")
        cfg = replace(cfg, cost_bps=float(args.cost_bps))
    if args is not None and getattr(args, "reps", None) is not None:
        if args.reps < 10:
            raise ConfigError("invalid argument --reps: at least 10 bootstrap resamples")
        cfg = replace(cfg, bootstrap_reps=args.reps, ic_reps=min(cfg.ic_reps, args.reps))
    return cfg


def cli_validate(settings: Settings, args: argparse.Namespace) -> int:
    """``riskd validate [--from …] [--to …] --out DIR``: exit 0 when the report was written."""
    if getattr(args, "intra_hour", False):
        from riskd.commands.intrahour import cli_intrahour  # only the minute replay needs it

        return cli_intrahour(settings, args)
    start, end = hour_arg(args.start, "--from"), hour_arg(args.end, "--to")
    if start is not None and end is not None and start > end:
        raise ConfigError("invalid argument --from: after --to")
    cfg = config_from(settings, args)
    console = Console(stderr=True)
    steps = ["store → panel", "core (batch path)", "inputs", *PARTS, "report"]
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=getattr(args, "no_progress", False) or not console.is_terminal,
        transient=True,
    ) as bar:
        task = bar.add_task("validate", total=len(steps))
        seen: list[str] = []

        def say(name: str) -> None:
            if seen:
                bar.advance(task)
            seen.append(name)
            bar.update(task, description=name)

        result, paths, times = validate_store(
            settings, Path(args.out), start=start, end=end, symbols=args.symbols, cfg=cfg, say=say
        )
        bar.advance(task)
    for name, secs in times.seconds.items():
        console.print(f"  {name:<24} {secs:6.2f} s")
    counts = result.findings["verdict"].value_counts()
    console.print(
        f"validated {result.span} in {times.total:.1f} s: "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
        + f"\nreport: {paths[0]}"
    )
    return 0
