"""``riskd validate --intra-hour``: the provisional detector replayed over the store's minute bars.

The thin shell around :mod:`riskd.research.intrahour` (pure): it reads each stored minute dataset,
replays riskd's provisional detector and the plain price alert, and writes the report (``intrahour.md``)
beside its per-event table (``intrahour_events.csv``). ``riskd.commands.validate`` dispatches
``--intra-hour`` here with a lazy import, so the hourly validation does not load this module.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from riskd.config import Settings
from riskd.errors import ConfigError, DataError
from riskd.store import HistoryStore

INTRAHOUR_SOURCES = (("ohlcv_5m", "binance", 5), ("ohlcv_1m", "binance", 1), ("spot_ohlcv_1m", "binance", 1))
"""Minute datasets replayed by ``--intra-hour`` (the importer's timeframe datasets), finest wins per span."""


def cli_intrahour(settings: Settings, args: argparse.Namespace) -> int:
    """``riskd validate --intra-hour --out DIR``: replay the provisional detector over every stored minute
    dataset; writes intrahour.md and intrahour_events.csv and prints the markdown."""
    from riskd.research.intrahour import TRAIN_END, event_table, replay
    from riskd.research.intrahour_text import markdown
    from riskd.research.plain_alert import PLAIN_ALERT

    store = HistoryStore(settings.store_dir)
    symbols = args.symbols or settings.universe.symbols
    reports = {}
    for dataset, venue, minutes in INTRAHOUR_SOURCES:
        try:
            frames = {s: store.read(dataset, venue, s, args.start, args.end) for s in symbols}
        except DataError:
            continue  # the dataset is not known to this store
        btc = frames.pop(symbols[0])
        if btc.empty:
            continue
        alts = pd.DataFrame({s: f["close"] for s, f in frames.items() if not f.empty})
        reports[f"{dataset} ({venue}, {minutes}-minute bars)"] = replay(
            btc, alts, settings.streams.detector, minutes
        )
    if not reports:
        raise ConfigError("invalid argument --intra-hour: the store holds no minute data (riskd data import)")
    text = markdown(reports, settings.streams.detector, PLAIN_ALERT, TRAIN_END)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "intrahour.md").write_text(text + "\n")
    event_table(reports).to_csv(out / "intrahour_events.csv", index=False, float_format="%.6g")
    print(text)
    return 0
