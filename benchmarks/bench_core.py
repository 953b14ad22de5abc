"""Benchmark of the fragility core: batch path vs the pandas reference, and the live step.

    .venv/bin/python -m benchmarks.bench_core                      # 600 symbols × 52,560 hours
    .venv/bin/python -m benchmarks.bench_core --symbols 60 --hours 8760 --reference-hours 8760

Each measurement runs in its own process (same seed, same synthetic market built with numpy there), so
peak memory is measured per contender: the process's resident set with its inputs loaded and its peak
(getrusage), and for the batch path also the peak allocated during the call (tracemalloc, in a second,
untimed run: tracing slows allocation). Targets
(issue 3): batch ≥ 10× faster than the reference and ≤ 5 s; the live step ≤ 20 ms for 600 symbols.
The reference peaks near 15 GB at full size: with less memory available it runs on fewer hours (or
``--reference-hours``), and its time is then scaled linearly to the full length and marked so.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskd.core import FragilityParams, Panel, compute_fragility_with_state, step
from riskd.core.crashprob import CrashModel

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_PEAK_GB = 15.0
"""Measured peak RSS of the pandas reference at 600 symbols × 52,560 hours (it scales with the cells)."""
VENUE_SHARE = {"binance": 1.0, "bybit": 0.7, "hyperliquid": 0.4}
"""Share of the symbols listed on each venue (Binance lists them all)."""


def synthetic_panel(n_symbols: int, n_hours: int, seed: int = 7) -> Panel:
    """A plausible market built in place with numpy: BTC factor + fat-tailed alts, late listings,
    volume rising with moves, 8 h funding prints on Binance/Bybit and hourly on Hyperliquid, OI, and
    a planted cascade every ~3 months."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2020-01-01", periods=n_hours, freq="h", tz="UTC", name="ts")
    symbols = ("BTC", *(f"A{i:03d}" for i in range(1, n_symbols)))
    beta = np.r_[1.0, rng.uniform(0.7, 1.6, n_symbols - 1)]
    idio = np.r_[0.0, rng.uniform(0.004, 0.012, n_symbols - 1)]
    market = rng.standard_t(4, n_hours) * 0.004
    shocks = np.arange(2000, n_hours, 2200)
    market[shocks] = -0.045

    log_ret = rng.standard_t(4, (n_hours, n_symbols))
    log_ret *= idio
    log_ret += market[:, None] * beta
    move = np.abs(log_ret)  # reused below for volume
    close = np.cumsum(log_ret, axis=0)
    del log_ret
    np.exp(close, out=close)
    close *= rng.uniform(0.1, 500.0, n_symbols)
    close[:, 0] *= 40_000.0 / close[0, 0]

    volume = rng.lognormal(0.0, 0.35, (n_hours, n_symbols))
    move *= 60.0
    move += 1.0
    volume *= move
    del move
    volume[shocks] *= 6.0
    volume *= rng.lognormal(12.0, 1.0, n_symbols) / close[0]
    listed = np.where(rng.random(n_symbols) < 0.2, rng.integers(0, n_hours, n_symbols), 0)
    listed[0] = 0
    late = np.arange(n_hours)[:, None] < listed[None, :]
    close[late] = np.nan
    volume[late] = np.nan
    quote_volume = volume * close

    funding = {venue: _funding(rng, n_hours, n_symbols, share, venue == "hyperliquid") for venue, share in
               VENUE_SHARE.items()}  # fmt: skip # one comprehension on two lines
    for rates in funding.values():
        rates[late] = np.nan
    open_interest = np.cumsum(rng.normal(0.0, 0.004, (n_hours, n_symbols)), axis=0)
    np.exp(open_interest, out=open_interest)
    open_interest *= 1e6
    open_interest[late] = np.nan
    return Panel(index, symbols, close, volume, quote_volume, funding, open_interest)


def _funding(
    rng: np.random.Generator, n_hours: int, n_symbols: int, share: float, hourly: bool
) -> np.ndarray:
    """Rates per hour held between prints (8 h, or hourly): a common swing plus symbol noise."""
    step_h = 1 if hourly else 8
    n_prints = -(-n_hours // step_h)
    common = 1.25e-5 + 1e-5 * np.sin(np.arange(n_prints) / (400.0 / step_h))
    prints = rng.normal(0.0, 6e-6, (n_prints, n_symbols))
    prints += common[:, None]
    rates = np.repeat(prints, step_h, axis=0)[:n_hours]
    rates[:, rng.random(n_symbols) > share] = np.nan
    return rates


def _timed(fn: Any) -> tuple[Any, float]:
    """``(result, wall seconds)``, untraced."""
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def _traced_peak_mb(fn: Any) -> float:
    """Peak MB allocated while ``fn`` runs (tracemalloc sees numpy's buffers; it slows the run)."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return peak


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


MODEL = CrashModel(
    features=(
        "btc_rv_24h",
        "btc_rv_7d",
        "btc_rv_30d",
        "btc_drawdown_7d",
        "btc_ret_24h",
        "btc_downside_rv_24h",
    ),
    intercept=-2.73,
    coefficients=(0.03, 0.06, 0.34, -0.27, 0.13, 0.37),
    means=(-3.7, -2.8, -1.9, -0.05, 0.0, -4.4),
    scales=(0.5, 0.45, 0.4, 0.05, 0.03, 0.6),
    horizon_hours=24,
    threshold=-0.05,
    train_start="2018-01-31T00:00:00+00:00",
    train_end="2026-05-16T07:00:00+00:00",
    fitted_at="2026-05-17T00:00:00+00:00",
    n_obs=72457,
    n_crashes=5949,
    transforms=("log", "log", "log", "identity", "identity", "log"),
)
"""A crash model shaped like the v2 one ``riskd calibrate`` fits on the real store (its 30-day input
needs the 722-hour live buffer): both paths use it."""


def worker_batch(n_symbols: int, n_hours: int, seed: int, steps: int) -> dict[str, Any]:
    """The batch path over the whole panel, then the live step for ``steps`` further hours (with a crash
    model, so both include the probability)."""
    panel = synthetic_panel(n_symbols, n_hours, seed)
    params = FragilityParams()
    rss_inputs = _rss_now_mb()
    (frame, state), wall = _timed(lambda: compute_fragility_with_state(panel, params, MODEL))
    peak = _traced_peak_mb(lambda: compute_fragility_with_state(panel, params, MODEL))
    timings = []
    last = panel.rows(n_hours - 1, n_hours)
    for k in range(1, steps + 1):
        hour = Panel(
            last.index + pd.Timedelta(hours=k),
            last.symbols,
            last.close * (1.0 + 0.001 * k),
            last.volume,
            last.quote_volume,
            dict(last.funding),
            last.open_interest,
        )
        t0 = time.perf_counter()
        _, state = step(state, hour, params, MODEL)
        timings.append(time.perf_counter() - t0)
    ms = np.asarray(timings) * 1e3
    return {
        "wall_s": wall,
        "extra_mb": peak,
        "rss_inputs_mb": rss_inputs,
        "rss_mb": _peak_rss_mb(),
        "columns": frame.shape[1],
        "cascade_hours": int((frame["cascade_level"] > 0).sum()),
        "step_median_ms": float(np.median(ms)),
        "step_p95_ms": float(np.percentile(ms, 95)),
        "state_kb": len(json.dumps(state.to_dict())) / 1e3,
    }


def worker_reference(n_symbols: int, n_hours: int, seed: int) -> dict[str, Any]:
    """The pandas reference on the same market (the long frame is built before the clock starts)."""
    from benchmarks.reference_core import long_frame, reference

    panel = synthetic_panel(n_symbols, n_hours, seed)
    arrays = {"close": panel.close, "volume": panel.volume, "quote_volume": panel.quote_volume,
              "open_interest": panel.open_interest}  # fmt: skip # the arrays in the panel's order
    arrays.update({f"funding_{v}": a for v, a in panel.funding.items()})
    frame = long_frame(panel.index, panel.symbols, arrays)
    del panel, arrays
    rss_inputs = _rss_now_mb()
    result, wall = _timed(lambda: reference(frame, FragilityParams()))
    return {"wall_s": wall, "rss_inputs_mb": rss_inputs, "rss_mb": _peak_rss_mb(), "columns": result.shape[1]}


def _reference_hours(args: argparse.Namespace) -> int:
    """All hours, unless the machine lacks the memory: the reference peaks near 15 GB at full size."""
    if args.reference_hours:
        return args.reference_hours
    need_gb = REFERENCE_PEAK_GB * args.symbols * args.hours / (600 * 52_560)
    with open("/proc/meminfo") as f:
        avail_gb = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable")) / 1e6
    if avail_gb >= 1.2 * need_gb:
        return args.hours
    hours = max(2_000, int(args.hours * avail_gb / (1.2 * need_gb)))
    print(
        f"(only {avail_gb:.0f} GB available, the reference needs ~{need_gb:.0f} GB: running it on {hours} h)"
    )
    return hours


def _run_worker(kind: str, args: argparse.Namespace, hours: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_core", "--worker", kind, "--symbols", str(args.symbols),
           "--hours", str(hours), "--seed", str(args.seed), "--steps", str(args.steps)]  # fmt: skip # flag and value side by side
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=600)
    ap.add_argument("--hours", type=int, default=52_560)
    ap.add_argument(
        "--reference-hours", type=int, default=None, help="hours for the reference (default: all)"
    )
    ap.add_argument("--no-reference", action="store_true", help="skip the pandas reference")
    ap.add_argument("--steps", type=int, default=50, help="live steps timed after the batch")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--worker", choices=["batch", "reference"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker == "batch":
        print(json.dumps(worker_batch(args.symbols, args.hours, args.seed, args.steps)))
        return 0
    if args.worker == "reference":
        print(json.dumps(worker_reference(args.symbols, args.hours, args.seed)))
        return 0

    cells = args.symbols * args.hours
    print(
        f"fragility core benchmark: {args.symbols} symbols × {args.hours} hours ({cells / 1e6:.1f} M cells)"
    )
    batch = _run_worker("batch", args, args.hours)
    print(f"batch path      {batch['wall_s']:8.2f} s   peak allocated during the call {batch['extra_mb']:6.0f} MB; "
          f"process rss {batch['rss_inputs_mb']:.0f} MB with inputs, peak {batch['rss_mb']:.0f} MB")  # fmt: skip # one printed line
    print(f"live step       {batch['step_median_ms']:8.2f} ms median, {batch['step_p95_ms']:.2f} ms p95 "
          f"over {args.steps} hours of {args.symbols} symbols; state {batch['state_kb']:.0f} kB as JSON")  # fmt: skip # one printed line
    if args.no_reference:
        return 0
    ref_hours = _reference_hours(args)
    ref = _run_worker("reference", args, ref_hours)
    scaled = ref["wall_s"] * args.hours / ref_hours
    note = (
        ""
        if ref_hours == args.hours
        else f" (measured on {ref_hours} h, scaled ×{args.hours / ref_hours:.2f})"
    )
    print(f"pandas reference{scaled:8.2f} s   process rss {ref['rss_inputs_mb']:.0f} MB with inputs, "
          f"peak {ref['rss_mb']:.0f} MB{note}")  # fmt: skip # one printed line
    print(
        f"speed-up        {scaled / batch['wall_s']:8.1f} ×   (target ≥ 10 ×; batch target ≤ 5 s, step ≤ 20 ms)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
