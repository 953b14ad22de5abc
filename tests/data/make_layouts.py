"""Cut the small per-layout samples in ``tests/data/layouts/`` out of ``shared/data/raw`` (README.md).

Rows are selected, never changed; each file keeps its source's format, compression and name so the
importer recognises it exactly as it does the real file. Run from the repository root:
``.venv/bin/python tests/data/make_layouts.py [--raw ../shared/data/raw]``.
"""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path

import pandas as pd

OUT = Path(__file__).resolve().parent / "layouts"


def _gz(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))


def _text_rows(src: Path, dst: Path, keep: slice, header: bool = True) -> None:
    """Lines of a (gzipped) text file: the header plus the ``keep`` slice of the data lines."""
    raw = gzip.decompress(src.read_bytes()) if src.name.endswith(".gz") else src.read_bytes()
    lines = raw.decode().splitlines(keepends=True)
    head, body = (lines[:1], lines[1:]) if header else ([], lines)
    data = "".join(head + body[keep]).encode()
    if dst.name.endswith(".gz"):
        _gz(dst, data)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)


def _json_rows(src: Path, dst: Path, start_ms: int, n: int) -> None:
    """freqtrade JSON bars from ``start_ms`` on, written back in the source's compact form."""
    raw = gzip.decompress(src.read_bytes())
    bars = pd.read_json(io.BytesIO(raw)).to_numpy().tolist()
    cut = [b for b in bars if b[0] >= start_ms][:n]
    text = (
        "["
        + ",".join("[" + ",".join(repr(v) if i else str(int(v)) for i, v in enumerate(b)) + "]" for b in cut)
        + "]"
    )
    _gz(dst, text.encode())


def _feather_rows(src: Path, dst: Path, start: str, n: int) -> None:
    raw = gzip.decompress(src.read_bytes()) if src.name.endswith(".gz") else src.read_bytes()
    df = pd.read_feather(io.BytesIO(raw))
    df = df[df["date"] >= pd.Timestamp(start, tz="UTC")].head(n).reset_index(drop=True)
    buf = io.BytesIO()
    df.to_feather(buf)
    if dst.name.endswith(".gz"):
        _gz(dst, buf.getvalue())
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(buf.getvalue())


def main(raw: Path) -> None:
    ms = lambda t: int(pd.Timestamp(t, tz="UTC").value // 1_000_000)  # noqa: E731  (a one-line local helper reads best as a lambda)
    # long-format funding, three venues in three files; BTC, PEPE and a USDC-margined contract each
    for venue, syms in {
        "binance": ["BTCUSDT", "BTCUSDC"],
        "bybit": ["BTCUSDT", "BTCPERP"],
        "hyperliquid": ["BTC", "kPEPE"],
    }.items():
        df = pd.read_parquet(raw / f"zushen168_funding/venue={venue}/data.parquet")
        df = df[df["venue_symbol"].isin(syms)].sort_values("settlement_ts")
        df = df.groupby("venue_symbol").head(12).reset_index(drop=True)
        dst = OUT / f"zushen168_funding/venue={venue}/data.parquet"
        dst.parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(dst, index=False)
    _text_rows(
        raw / "supervik_funding/BTC-USDT_bybit_2021-01-01_2024-01-01_funding_history.csv",
        OUT / "supervik_funding/BTC-USDT_bybit_2021-01-01_2024-01-01_funding_history.csv",
        slice(0, 12),
    )
    _feather_rows(
        raw / "mohsenjfar_trade/bybit/futures/BTC_USDT_USDT-1h-funding_rate.feather",
        OUT / "mohsenjfar_trade/bybit/futures/BTC_USDT_USDT-1h-funding_rate.feather",
        "2024-01-01",
        12,
    )
    _feather_rows(
        raw / "hippocritical_hyperliquid/hyperliquid/futures/kPEPE_USDC_USDC-1h-funding_rate.feather",
        OUT / "hippocritical_hyperliquid/hyperliquid/futures/kPEPE_USDC_USDC-1h-funding_rate.feather",
        "2024-03-01",
        24,
    )
    # +03:00 -> +02:00 on 2020-10-25 (the author's local summer/winter offsets)
    _text_rows(
        raw / "emanuelgoldman_datareport/1h/SOLUSDT_1h.csv.gz",
        OUT / "emanuelgoldman_datareport/1h/SOLUSDT_1h.csv.gz",
        slice(30, 48),
    )
    src = pd.read_parquet(raw / "yagokhan_varanus/1h/SOLUSDT_1h.parquet")
    (OUT / "yagokhan_varanus/1h").mkdir(parents=True, exist_ok=True)
    src.loc["2024-03-19":"2024-03-19 11:00"].to_parquet(OUT / "yagokhan_varanus/1h/SOLUSDT_1h.parquet")
    for tf in ("4h", "1d"):
        _text_rows(
            raw / f"silertrades_gravestone/{tf}/BTCUSDT.csv.gz",
            OUT / f"silertrades_gravestone/{tf}/BTCUSDT.csv.gz",
            slice(0, 12),
        )
    _feather_rows(
        raw / "catman77_cyft/binance/futures/BTC_USDT_USDT-5m-futures.feather.gz",
        OUT / "catman77_cyft/binance/futures/BTC_USDT_USDT-5m-futures.feather.gz",
        "2024-03-19 10:00",
        24,
    )
    _json_rows(
        raw / "trickbaker_ftrepos/binance/futures/BTC_USDT-5m-futures.json.gz",
        OUT / "trickbaker_ftrepos/binance/futures/BTC_USDT-5m-futures.json.gz",
        ms("2022-06-13 10:00"),
        24,
    )
    # NFI spot 5m around its zero-volume filled bar of 2021-01-11 08:05
    _json_rows(
        raw / "iterativv_nfi_5m/binance/BTC_USDT-5m.json.gz",
        OUT / "iterativv_nfi_5m/binance/BTC_USDT-5m.json.gz",
        ms("2021-01-11 07:30"),
        24,
    )
    _json_rows(
        raw / "tooyipjee_freqtrade/binance/BTC_USDT-1m.json.gz",
        OUT / "tooyipjee_freqtrade/binance/BTC_USDT-1m.json.gz",
        ms("2021-05-19 12:00"),
        60,
    )
    _feather_rows(
        raw / "mintanam_ftrade/binance/ETH_USDT-1m.feather.gz",
        OUT / "mintanam_ftrade/binance/ETH_USDT-1m.feather.gz",
        "2024-08-05 00:00",
        60,
    )
    _text_rows(
        raw / "satsushi_infovis/BTCUSDT-5m-2021-09.csv.gz",
        OUT / "satsushi_infovis/BTCUSDT-5m-2021-09.csv.gz",
        slice(1728, 1752),
        header=False,
    )
    _text_rows(
        raw / "hyperliquid_histdata/liquidations.csv",
        OUT / "hyperliquid_histdata/liquidations.csv",
        slice(0, 61),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", type=Path, default=Path(__file__).resolve().parents[3] / "shared/data/raw")
    main(parser.parse_args().raw)
