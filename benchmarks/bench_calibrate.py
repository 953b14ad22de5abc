"""Benchmark of ``riskd calibrate`` on a real store: read, core, labels, one fit; and the walk-forward.

Target (issue 20): the whole real history in ≤ 30 s. Point it at a store with ``--data-dir`` (default:
``$RISKD_DATA_DIR``, else ``data``), e.g. one made by ``riskd data import ../shared/data``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd

from riskd.commands.calibrate import calibrate
from riskd.config import load_settings
from riskd.core import compute_fragility
from riskd.market import store_panel
from riskd.research.calibrate import CrashSpec, walk_forward_crash_prob
from riskd.research.labels import CrashDefinition, crash_labels
from riskd.store import HistoryStore


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("RISKD_DATA_DIR", "data"))
    args = ap.parse_args(argv)
    settings = load_settings(data_dir=Path(args.data_dir))
    if not settings.store_dir.is_dir():
        print(f"no store at {settings.store_dir}: import one first (riskd data import ../shared/data)")
        return 0
    t0, c0 = time.perf_counter(), time.process_time()
    model = calibrate(settings, None, None, pd.Timestamp.now(tz="UTC"))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"riskd calibrate  {wall:8.2f} s   (CPU {cpu:.2f} s)  {model.n_obs} hours {model.train_start[:10]} → "
          f"{model.train_end[:10]}, {model.n_crashes} crashes (target ≤ 30 s)")  # fmt: skip # one printed line

    p, m, v = settings.fragility, settings.model, settings.validation
    store = HistoryStore(settings.store_dir)
    last = store.last_ts("ohlcv", p.funding.primary_venue, p.universe.btc_symbol)
    panel = store_panel(store, p, settings.universe.symbols, settings.venues.enabled(), last)
    assert panel is not None
    frame = compute_fragility(panel, p)
    spec = CrashSpec(
        tuple(m.crash_features), CrashDefinition(v.crash_kind, v.crash_horizon_h, v.crash_threshold)
    )
    labels = crash_labels(panel.frame("close")[p.universe.btc_symbol], spec.definition)
    t0 = time.perf_counter()
    wf = walk_forward_crash_prob(frame, labels, spec, refit=m.refit, min_train_hours=m.min_train_hours,
                                 min_train_crashes=m.min_train_crashes)  # fmt: skip # aligned arguments
    print(f"walk-forward     {time.perf_counter() - t0:8.2f} s   {len(wf.models)} refits ({m.refit}), "
          f"out of sample from {wf.fit_dates[0].date() if wf.fit_dates else '-'}")  # fmt: skip # one printed line
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
