"""Per-path facts a file does not carry itself: a timezone for naive times, the market of a kline file.

Most layouts say everything in their content (columns, offsets in the times, freqtrade names). A few
do not: supervik's Bybit funding writes UTC+3 local time without a zone, and a data.binance.vision
kline file outside its ``spot/`` folder looks the same for spot and perp. Those facts, taken from
``shared/data/PROVENANCE.md``, are the built-in overrides below; a ``riskd-import.toml`` at the root
of the imported folder adds more (and is read first, so it wins)::

    [[override]]
    path = "*my_source/*.csv"   # glob on the path relative to the import root; * crosses folders
    tz = "+03:00"               # naive times in the file are this UTC offset (or an IANA zone)
    market = "spot"             # spot | perp (candle files)
    venue = "bybit"             # binance | bybit | hyperliquid
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path

from riskd.errors import DataError

OVERRIDES_FILE = "riskd-import.toml"
_MARKETS = ("spot", "perp")
_VENUES = ("binance", "bybit", "hyperliquid")


@dataclass(frozen=True)
class Override:
    """What to assume about the files matching ``path`` (None: read it from the file)."""

    path: str
    tz: str | None = None
    market: str | None = None
    venue: str | None = None
    why: str = ""


BUILTIN: tuple[Override, ...] = (
    Override(
        "*supervik_funding/*_funding_history.csv",
        tz="+03:00",
        why="Date is UTC+3 local time without a zone: 00/08/16 UTC prints appear as 03/11/19 (PROVENANCE.md)",
    ),
    Override(
        "*satsushi_infovis/BTCUSDT-5m-*.csv*",
        market="spot",
        why="data.binance.vision spot monthly klines copied without their spot/ folder (PROVENANCE.md)",
    ),
)


def load(root: Path) -> tuple[Override, ...]:
    """The overrides in ``root/riskd-import.toml`` (if any) followed by the built-in ones."""
    file = root / OVERRIDES_FILE
    if not file.is_file():
        return BUILTIN
    try:
        data = tomllib.loads(file.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise DataError(f"import: cannot read {file}: {err}") from None
    out = []
    for i, entry in enumerate(data.get("override", [])):
        where = f"{file} override[{i}]"
        if not isinstance(entry.get("path"), str):
            raise DataError(f"import: {where}.path: a glob string is required")
        if (m := entry.get("market")) is not None and m not in _MARKETS:
            raise DataError(f"import: {where}.market: {m!r} is not one of {', '.join(_MARKETS)}")
        if (v := entry.get("venue")) is not None and v not in _VENUES:
            raise DataError(f"import: {where}.venue: {v!r} is not one of {', '.join(_VENUES)}")
        if (tz := entry.get("tz")) is not None:
            _check_tz(tz, where)
        out.append(Override(entry["path"], tz, m, v, str(entry.get("why", f"from {file.name}"))))
    return (*out, *BUILTIN)


def _check_tz(tz: object, where: str) -> None:
    import pandas as pd

    try:
        pd.Timestamp("2021-01-01").tz_localize(str(tz))
    except Exception:  # pandas raises several types for an unknown zone
        raise DataError(f"import: {where}.tz: {tz!r} is not a UTC offset or a time zone name") from None


def match(overrides: tuple[Override, ...], rel: str) -> Override:
    """The merged override for a file (first match wins per field); an empty one when none matches."""
    tz = market = venue = None
    why = []
    for o in overrides:
        if not fnmatch.fnmatchcase(rel, o.path):
            continue
        tz, market, venue = tz or o.tz, market or o.market, venue or o.venue
        why.append(o.why)
    return Override(rel, tz, market, venue, "; ".join(why))
