"""Cut the bundled real sample out of the shared raw data (run by hand, not by the tests).

    .venv/bin/python tests/data/make_sample.py [--raw ../shared/data/raw]

Rows are selected by time only; values, columns and dtypes are copied unchanged. The feather files
are rewritten with zstd compression to keep the sample small (pyarrow and freqtrade read them as
they read the originals).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import pyarrow.feather as feather

HERE = Path(__file__).resolve().parent
OUT = HERE / "sample_2021_05" / "binance"
START = pd.Timestamp("2021-04-20T00:00:00Z")
END = pd.Timestamp("2021-06-10T23:00:00Z")  # inclusive

# (source path under raw/, destination path under sample_2021_05/binance/)
PERPS = ("BTC", "ETH", "XRP", "LTC", "ADA")
FILES: list[tuple[str, str]] = [
    *(
        (
            f"roshan7869_algotrading/binance/futures/{s}_USDT_USDT-1h-futures.feather",
            f"futures/{s}_USDT_USDT-1h-futures.feather",
        )
        for s in PERPS
    ),
    *(
        (
            f"roshan7869_algotrading/binance/futures/{s}_USDT_USDT-1h-funding_rate.feather",
            f"futures/{s}_USDT_USDT-1h-funding_rate.feather",
        )
        for s in PERPS
    ),
    *(
        (f"roshan7869_algotrading/binance/{s}_USDT-1h.feather", f"{s}_USDT-1h.feather")
        for s in ("SOL", "DOGE", "AVAX", "LINK", "DOT", "NEAR")
    ),
    ("dangdoday_se2025/binance/BNB_USDT-1h.feather", "BNB_USDT-1h.feather"),
    *(
        (f"mounik_sample_scalping/binance/{s}_USDT-1h.feather", f"{s}_USDT-1h.feather")
        for s in ("UNI", "ATOM", "FIL", "FTM")
    ),
]


def cut(src: Path, dst: Path) -> int:
    """Copy the rows of ``src`` whose date lies in [START, END] to ``dst``; return the row count."""
    table = feather.read_table(src)
    date = table.column("date")
    unit_start = pd.Timestamp(START).as_unit(date.type.unit)
    # Funding prints can carry a few ms after the hour: keep every print up to the next hour.
    unit_end = (END + pd.Timedelta(hours=1)).as_unit(date.type.unit)
    mask = pc.and_(pc.greater_equal(date, unit_start), pc.less(date, unit_end))
    part = table.filter(mask).combine_chunks()  # one record batch: smaller files
    dst.parent.mkdir(parents=True, exist_ok=True)
    feather.write_feather(part, dst, compression="zstd", compression_level=19)
    return part.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=HERE.parents[2] / "shared" / "data" / "raw")
    args = parser.parse_args()
    total = 0
    for src, dst in FILES:
        rows = cut(args.raw / src, OUT / dst)
        size = (OUT / dst).stat().st_size
        total += size
        print(f"{dst:45s} {rows:6d} rows {size / 1024:7.1f} KiB  <- raw/{src}")
    print(f"total {total / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
