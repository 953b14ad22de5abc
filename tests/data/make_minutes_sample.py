"""Cut the minute sample of ``riskd demo --minutes`` from ../shared/data (run from the repo root).

    python tests/data/make_minutes_sample.py ../shared/data

Writes ``tests/data/sample_2021_05_19_minutes.csv.gz``: Binance SPOT bars of 2021-05-19 06:00-14:59 UTC,
1-minute for BTC and ETH (tooyipjee/freqtrade @ 44523f8d61f6, commit "data files" of 2021-05-20) and
5-minute for XRP, LTC and ADA (iterativv/NostalgiaForInfinity @ 52f08a78f6fd), as listed in
../shared/data/PROVENANCE.md. Columns: ts (bar open, UTC), symbol, resolution, open, high, low, close,
volume (base units). No perp minute bars exist for May 2021 on hand, hence spot.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pandas as pd

START, END = "2021-05-19 06:00", "2021-05-19 14:59"
SOURCES = {
    ("BTC", "1m"): "raw/tooyipjee_freqtrade/binance/BTC_USDT-1m.json.gz",
    ("ETH", "1m"): "raw/tooyipjee_freqtrade/binance/ETH_USDT-1m.json.gz",
    ("XRP", "5m"): "raw/iterativv_nfi_5m/binance/XRP_USDT-5m.json.gz",
    ("LTC", "5m"): "raw/iterativv_nfi_5m/binance/LTC_USDT-5m.json.gz",
    ("ADA", "5m"): "raw/iterativv_nfi_5m/binance/ADA_USDT-5m.json.gz",
}
OUT = Path(__file__).with_name("sample_2021_05_19_minutes.csv.gz")


def main(shared: Path) -> None:
    frames = []
    for (symbol, resolution), rel in SOURCES.items():
        with gzip.open(shared / rel) as fh:
            rows = json.loads(fh.read())
        df = pd.DataFrame(rows, columns=["ms", "open", "high", "low", "close", "volume"])
        df["ts"] = pd.to_datetime(df.pop("ms"), unit="ms", utc=True)
        df = df[(df["ts"] >= pd.Timestamp(START, tz="UTC")) & (df["ts"] <= pd.Timestamp(END, tz="UTC"))]
        frames.append(df.assign(symbol=symbol, resolution=resolution))
    out = pd.concat(frames)[["ts", "symbol", "resolution", "open", "high", "low", "close", "volume"]]
    out["ts"] = out["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    with gzip.GzipFile(OUT, "wb", mtime=0) as fh:
        fh.write(out.to_csv(index=False).encode())
    print(f"wrote {OUT} ({len(out)} bars)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
