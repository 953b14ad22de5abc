"""``riskd calibrate``: fit the crash-probability model on the stored history and write its file
(:mod:`riskd.store.model_file` owns the file: the daemon and ``riskd replay`` read it back from there).

The model predicts riskd's one crash definition (``validation.crash_*``) from ``model.crash_features``
(default v2: BTC realised volatility over 1, 7 and 30 days, the drawdown from the 7-day high, the 24 h
return, the 24 h downside volatility), fitted on every hour whose label is known by the last stored hour.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from riskd.commands._args import hour_arg
from riskd.config import Settings
from riskd.core.crashprob import CrashModel
from riskd.errors import ConfigError, DataError
from riskd.store.model_file import crash_model_path, model_columns, write_crash_model

log = logging.getLogger("riskd.calibrate")


def add_parser(sub: Any) -> None:
    """The ``calibrate`` sub-command's arguments (registered by riskd.cli)."""
    ca = sub.add_parser("calibrate", help="fit the crash-probability model on the stored history")
    ca.add_argument("--from", dest="start", help="first labelled hour fitted (UTC ISO; default: the first)")
    ca.add_argument("--to", dest="end", help="last hour of data read (UTC ISO; default: the last stored)")
    ca.add_argument("--out", metavar="PATH", help="model file (default: model.crash_prob_path)")


def calibrate(
    settings: Settings, start: pd.Timestamp | None, end: pd.Timestamp | None, now: pd.Timestamp
) -> CrashModel:
    """Fit the model on the store's history: the core's frame, riskd's crash labels (the
    ``validation.crash_*`` definition), one logistic fit on every hour whose label is known."""
    from riskd.core import cascade_events, compute_fragility
    from riskd.market import store_panel
    from riskd.research.calibrate import CrashSpec, fit_crash_model
    from riskd.research.labels import CrashDefinition, crash_labels
    from riskd.store import HistoryStore

    p, v = settings.fragility, settings.validation
    bad = [f for f in settings.model.crash_features if f not in model_columns(p)]
    if bad:
        raise ConfigError(
            f"invalid setting model.crash_features (RISKD_MODEL__CRASH_FEATURES): unknown {bad}"
        )
    store = HistoryStore(settings.store_dir)
    venues = settings.venues.enabled()
    last = end or store.last_ts("ohlcv", p.funding.primary_venue, p.universe.btc_symbol)
    if last is None:
        raise DataError(f"no BTC candles in the store at {settings.store_dir}: import or backfill first")
    panel = store_panel(store, p, settings.universe.symbols, venues, last)
    if panel is None:
        raise DataError(f"no BTC candles before {last} in the store at {settings.store_dir}")
    frame = compute_fragility(panel, p)
    definition = CrashDefinition(v.crash_kind, v.crash_horizon_h, v.crash_threshold)
    cascade = None
    if definition.kind == "cascade":  # the event study's events: first hours of the configured level
        ep = cascade_events(frame, p.cascade)
        starts = ep.loc[ep["level"] == v.event_level, "start"] if len(ep) else []
        cascade = pd.Series(frame.index.isin(pd.DatetimeIndex(starts)), index=frame.index)
    labels = crash_labels(panel.frame("close")[p.universe.btc_symbol], definition, cascade)
    spec = CrashSpec(tuple(settings.model.crash_features), definition)
    known = labels.index + pd.Timedelta(hours=definition.horizon_h + 1) <= last + pd.Timedelta(hours=1)
    frame, labels = frame[known], labels[known]
    if start is not None:
        frame, labels = frame.loc[start:], labels.loc[start:]
    try:
        with threadpool_limits(limits=1, user_api="blas"):  # small products: BLAS threads only cost
            return fit_crash_model(frame, labels, spec, now)
    except ValueError as err:
        raise DataError(f"calibrate: {err}") from None


def cli_calibrate(settings: Settings, args: argparse.Namespace) -> int:
    """``riskd calibrate [--from] [--to] [--out]``: exit 0 when the model file was written."""
    start, end = hour_arg(args.start, "--from"), hour_arg(args.end, "--to")
    if start is not None and end is not None and start > end:
        raise ConfigError("invalid argument --from: after --to")
    model = calibrate(settings, start, end, pd.Timestamp.now(tz="UTC").floor("s"))
    path = Path(args.out) if args.out else crash_model_path(settings)
    write_crash_model(model, path)
    terms = ", ".join(
        f"{name if how == 'identity' else f'{how}({name})'} {coef:+.3f} (se {se:.3f})"
        for name, how, coef, se in zip(
            model.features, model.transforms, model.coefficients, model.std_errors[1:], strict=True
        )
    )
    print(
        f"crash model (schema {model.schema_version}, crash = {model.crash_kind} ≤ {model.threshold:+.1%} "
        f"in {model.horizon_hours} h) written to {path}: {model.n_obs} hours {model.train_start[:10]} → "
        f"{model.train_end[:10]}, {model.n_crashes} crashes; intercept {model.intercept:+.3f}; {terms}"
    )
    return 0
