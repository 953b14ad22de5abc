"""Cut the freqtrade backtest sample and its regime export (run by hand, not by the tests).

    .venv/bin/python tests/data/make_freqtrade_sample.py [--raw ../shared/data/raw] [--store-dir DIR]

1. The six feather files freqtrade's futures backtest reads (BTC and ETH: ``-1h-futures``,
   ``-1h-funding_rate``, ``-1h-mark``), rows 2023-12-25 00:00 .. 2024-03-01 23:00 UTC, values unchanged,
   rewritten with zstd (freqtrade reads them as it reads its own).
2. ``regime.parquet``: ``riskd export regime`` over the same hours, run on a riskd data dir holding the
   whole real history (``riskd data import ../shared/data``; ``--store-dir``, default /work/store-full):
   the regime the daemon would have published, hour by hour, for the backtest to filter on.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import pyarrow.feather as feather

HERE = Path(__file__).resolve().parent
OUT = HERE / "freqtrade"
START = pd.Timestamp("2023-12-25T00:00:00Z")
END = pd.Timestamp("2024-03-01T23:00:00Z")  # inclusive
SOURCE = "roshan7869_algotrading/binance/futures"
KINDS = ("futures", "funding_rate", "mark")


def cut(src: Path, dst: Path) -> int:
    """Copy the rows of ``src`` dated in [START, END + 1 h) to ``dst``; return the row count."""
    table = feather.read_table(src)
    date = table.column("date")
    lo, hi = START.as_unit(date.type.unit), (END + pd.Timedelta(hours=1)).as_unit(date.type.unit)
    part = table.filter(pc.and_(pc.greater_equal(date, lo), pc.less(date, hi))).combine_chunks()
    dst.parent.mkdir(parents=True, exist_ok=True)
    feather.write_feather(part, dst, compression="zstd", compression_level=19)
    return part.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=HERE.parents[2] / "shared" / "data" / "raw")
    parser.add_argument("--store-dir", type=Path, default=Path("/work/store-full"))
    args = parser.parse_args()
    for symbol in ("BTC", "ETH"):
        for kind in KINDS:
            name = f"{symbol}_USDT_USDT-1h-{kind}.feather"
            dst = OUT / "binance" / "futures" / name
            rows = cut(args.raw / SOURCE / name, dst)
            print(f"{name:40s} {rows:6d} rows {dst.stat().st_size / 1024:7.1f} KiB")
    env = {**os.environ, "RISKD_DATA_DIR": str(args.store_dir)}
    out = OUT / "regime.parquet"
    cmd = [sys.executable, "-m", "riskd", "export", "regime", "--from", str(START), "--to", str(END),
           "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, env=env, check=True)
    print(f"regime.parquet {out.stat().st_size / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
