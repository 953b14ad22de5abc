"""Time the offline validation, part by part, over a history the size of the real one, or the real one.

Run: ``python -m benchmarks.bench_validate [--years 6.4] [--alts 15] [--reps 1000]``. By default the
market is synthetic (``riskd.research.synthetic``) so the benchmark needs no data import; the parts are
the same functions ``riskd validate`` calls. With ``--store DATA_DIR`` (a data dir holding the real
import, e.g. after ``riskd data import ../shared/data``) it times the command's own pipeline instead:
store -> panel, the core's batch path, the inputs, each statistics part and the report.
Target for the whole validation over the shared history: ≤ 45 s (issue 20). The machine may be shared:
the process CPU time is printed beside the wall-clock total.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from riskd.research.config import ValidationConfig, ValidationInputs
from riskd.research.report import write_report
from riskd.research.synthetic import synthetic_market
from riskd.research.validate import run_validation


def run(years: float, alts: int, reps: int) -> dict[str, float]:
    """Seconds per part of one validation over a synthetic market of ``years`` and ``alts``: the command's
    own :func:`run_validation`, timed between the names its progress hook is told."""
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    m = synthetic_market(years=years, n_alts=alts, alt_alpha=0.01)
    times["synthetic market"] = time.perf_counter() - t0
    multiplier = (1.0 - 0.5 * (m.features["cfi"] > 1.0)).rename("risk_multiplier")  # a stand-in regime
    inputs = ValidationInputs(
        m.closes,
        m.features,
        {"volume_only": m.events, "loose": m.events},
        m.crashing,
        multipliers={"cfi tiers": multiplier},
    )
    marks: list[tuple[str, float]] = []
    result = run_validation(
        inputs,
        ValidationConfig(bootstrap_reps=reps),
        progress=lambda name: marks.append((name, time.perf_counter())),
    )
    ends = [t for _, t in marks[1:]] + [time.perf_counter()]
    times.update({name: end - start for (name, start), end in zip(marks, ends, strict=True)})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_report(result, Path(tmp))
        times["report (md, png, json, parquet)"] = time.perf_counter() - t0
    return times


def run_store(
    data_dir: Path, reps: int, start: str | None = None, end: str | None = None
) -> dict[str, float]:
    """Seconds per step of ``riskd validate`` over the store in ``data_dir`` (report to a temp dir)."""
    import pandas as pd

    from riskd.config import load_settings
    from riskd.market.offline import validate_store

    def utc(value: str | None) -> pd.Timestamp | None:
        return None if value is None else pd.Timestamp(value, tz="UTC")

    from dataclasses import replace

    from riskd.commands.validate import config_from

    settings = load_settings(data_dir=data_dir)
    cfg = replace(config_from(settings), bootstrap_reps=reps)
    with tempfile.TemporaryDirectory() as tmp:
        result, _, times = validate_store(settings, Path(tmp), start=utc(start), end=utc(end), cfg=cfg)
    print(f"span {result.span}; verdicts: {result.findings['verdict'].value_counts().to_dict()}")
    return times.seconds


def main() -> None:
    """Print seconds per part and the total."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, default=6.4)
    parser.add_argument("--alts", type=int, default=15)
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument(
        "--store", type=Path, metavar="DATA_DIR", help="time the real pipeline on this data dir"
    )
    parser.add_argument(
        "--from", dest="start", help="with --store: first validated hour (default 2020-01-01)"
    )
    parser.add_argument("--to", dest="end", help="with --store: last validated hour")
    args = parser.parse_args()
    if args.store is not None:
        times = run_store(args.store, args.reps, args.start, args.end)
    else:
        times = run(args.years, args.alts, args.reps)
    cpu = time.process_time()
    width = max(map(len, times))
    for name, secs in times.items():
        print(f"{name:<{width}}  {secs:6.2f} s")
    print(f"{'total':<{width}}  {sum(times.values()):6.2f} s  (process CPU {cpu:.1f} s)")


if __name__ == "__main__":
    main()
