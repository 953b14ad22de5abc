"""``riskd validate``: the offline validation over the stored history, from the store to a report.

The thin shell around the pure statistics of ``riskd.research``: it reads the Parquet store through
``store_panel`` (the panel the daemon and replay build), runs the core's batch path over it, reads the
offline-only model input (BTC's 5-minute bars), hands everything to
:func:`riskd.research.inputs.validation_inputs` and :func:`riskd.research.validate.run_validation`, and
writes ``report.md``, the PNG figures, ``results.json`` and ``signals.parquet``.

How the inputs are derived (also written into the report's "Data and inputs" section):

- **Prices** are the panel's closes, hours x symbols: the Binance perp where it has a candle, else the
  spot stand-in (``panel.spot_stand_in``), because most alts have perps only from 2022 on while the
  research's universe traded them from 2020. A return across a perp/spot switch mixes the two (one
  basis-sized jump); the report gives the share of alt-hours priced from spot.
- **Warm-up**: the core runs over the whole stored history up to ``--to``, and the inputs are cut to
  ``[--from, --to]`` afterwards, so the first validated hour has its z-scores, percentiles and volume
  rankings exactly as the daemon would have had them; the crash model's walk-forward trains from the
  first stored hour.
- **Events** are the first hour of each episode of each level (``cascade_events``, the core's cool-down
  grouping), found inside the validated span.
- **Multi-asset flags per asset** (the first seed document buys the crashing assets) come from the
  core's detector itself (``riskd.core.crashing_assets``, the cells behind ``multi_asset_count``), kept
  to the hours the detector fires.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from riskd.config import Settings
from riskd.core import Panel, compute_fragility
from riskd.core.params import FragilityParams
from riskd.errors import DataError
from riskd.market import store_panel
from riskd.research.config import ValidationConfig, ValidationInputs
from riskd.research.inputs import InputsReport, realised_vol_5m
from riskd.research.inputs import validation_inputs as build_inputs
from riskd.research.labels import CrashDefinition
from riskd.research.results import ValidationResult
from riskd.research.validate import run_validation
from riskd.store import HistoryStore

log = logging.getLogger("riskd.validation")

HOUR = pd.Timedelta(hours=1)
RESEARCH_START = pd.Timestamp("2020-01-01", tz="UTC")
"""Default ``--from``: the research's sample starts in 2020 (RESEARCH.md, "events 2020–2026"). Earlier
stored hours still warm the core up (and train the crash model); before 2020 the store holds mostly spot
prices and no funding."""
OFFLINE_5M = ("ohlcv_5m", "binance")
"""The dataset and venue of BTC's 5-minute bars: the offline-only model input (never published)."""


@dataclass
class LoadedHistory:
    """The stored history run through the core: the panel, the core's frame, and the validated span."""

    panel: Panel
    frame: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp


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


def validation_inputs(
    loaded: LoadedHistory,
    params: FragilityParams,
    offline: pd.DataFrame | None = None,
    notes: Sequence[str] = (),
) -> tuple[ValidationInputs, InputsReport]:
    """The statistics' inputs over the validated span (:func:`riskd.research.inputs.validation_inputs`)."""
    return build_inputs(
        loaded.panel, loaded.frame, loaded.start, loaded.end, params, offline=offline, notes=notes
    )


def offline_inputs(
    store: HistoryStore, params: FragilityParams, end: pd.Timestamp
) -> tuple[pd.DataFrame | None, list[str]]:
    """The model inputs the daemon cannot have: BTC's 24 h realised volatility from the stored 5-minute
    perp bars (None without them), and what the store says of the liquidation features' history."""
    btc = params.universe.btc_symbol
    notes = []
    offline = None
    try:
        bars = store.read(*OFFLINE_5M, btc, None, end + HOUR)
    except DataError:
        bars = pd.DataFrame()
    if len(bars):
        rv = realised_vol_5m(bars["close"])
        offline = rv.to_frame()
    liq = [p for p in store.partitions() if p[0] == "liquidations"]
    if liq and not params.liquidations.enabled:
        spans = [
            f"{v} {store.first_ts(*p):%Y-%m-%d} – {store.last_ts(*p):%Y-%m-%d}" for p in liq for v in (p[1],)
        ]
        notes.append(
            "riskd's liquidation features (`liq_notional_z`): the store holds liquidations for "
            + "; ".join(spans)
            + " only, fewer hours than a first fit needs (a year): not measurable, not published "
            "(`fragility.liquidations.enabled` is off for the same reason)."
        )
    return offline, notes


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

    with threadpool_limits(limits=1, user_api="blas"):  # small products: BLAS threads only cost (pyproject)
        return _validate_store(settings, out_dir, start, end, symbols, cfg, say, write_report)


def _validate_store(
    settings: Settings,
    out_dir: Path,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    symbols: Sequence[str] | None,
    cfg: ValidationConfig | None,
    say: Say | None,
    write_report: Callable[..., list[Path]],
) -> tuple[ValidationResult, list[Path], Timings]:
    """:func:`validate_store`'s body, under one BLAS thread."""
    cfg = cfg or config_from_settings(settings)
    say = say or (lambda _name: None)
    times = Timings()
    params = settings.fragility
    store = HistoryStore(settings.store_dir)
    say("store → panel")
    with times.step("store → panel"):
        panel, start, end = load_panel(
            store, params, universe(symbols, settings), settings.venues.enabled(), start, end
        )
        offline, notes = offline_inputs(store, params, end)
    say("core (batch path)")
    with times.step("core (batch path)"):
        loaded = LoadedHistory(panel, compute_fragility(panel, params), start, end)
    say("inputs")
    with times.step("inputs"):
        inputs, account = validation_inputs(loaded, params, offline, notes)
        account = replace(account, store=str(settings.store_dir))
    with times.parts(say) as progress:
        result = run_validation(inputs, cfg, progress=progress)
    say("report")
    with times.step("report (md, png, json, parquet)"):
        paths = write_report(result, out_dir, inputs=account, timings=times.seconds)
    return result, paths, times


# ---- the command ----------------------------------------------------------------------------------


def config_from_settings(settings: Settings) -> ValidationConfig:
    """The validation's choices: the ``validation`` settings (and the ``model`` ones the crash model's
    walk-forward uses, and the regime's tier signal) over the research's defaults."""
    v, m, research = settings.validation, settings.model, ValidationConfig()
    return replace(
        research,
        cost_bps=v.cost_bps,
        crash=CrashDefinition(kind=v.crash_kind, horizon_h=v.crash_horizon_h, threshold=v.crash_threshold),
        event_level=v.event_level,
        hold_h=v.hold_h,
        bootstrap_reps=v.bootstrap_reps,
        component_reps=min(research.component_reps, v.bootstrap_reps),
        block_h=v.block_h,
        long_block_h=v.long_block_h,
        exposure_cost_bps=v.exposure_cost_bps,
        seed=v.seed,
        tier_signal=settings.fragility.regime.signal,
        model_features=tuple(m.crash_features),
        refit=m.refit,
        min_train_hours=m.min_train_hours,
        min_train_crashes=m.min_train_crashes,
    )
