"""One name per asset across venues.

riskd keys everything by the *base asset* (``BTC``). Venues name the same perpetual differently:
ccxt's unified ``BTC/USDT:USDT`` (Binance, Bybit), the raw id ``BTCUSDT``, and Hyperliquid's
``BTC`` quoted in USDC (``BTC/USDC:USDC``). Rebrands (FTM -> S) map the new name back onto the
old one so a series does not break in two.
"""

from __future__ import annotations

from collections.abc import Mapping

_QUOTE = {"binance": "USDT", "bybit": "USDT", "hyperliquid": "USDC"}
# Venues that list a contract on a scaled unit (1000 tokens per contract, Hyperliquid's "k" prefix).
_SCALED_PREFIXES = ("1000000", "10000", "1000", "k")


def unified_symbol(base: str, venue: str) -> str:
    """ccxt's unified perpetual symbol of ``base`` on ``venue`` (``BTC`` -> ``BTC/USDT:USDT``)."""
    quote = _QUOTE[venue]
    return f"{base}/{quote}:{quote}"


def raw_id(base: str, venue: str) -> str:
    """The venue's own market id (``BTCUSDT`` on Binance and Bybit, ``BTC`` on Hyperliquid)."""
    return base if venue == "hyperliquid" else f"{base}{_QUOTE[venue]}"


def base_of(symbol: str) -> str:
    """Base asset of any spelling: ``BTC/USDT:USDT``, ``BTCUSDT``, ``BTC_USDT_USDT``, ``BTC``."""
    s = symbol.strip().upper()
    if "/" in s:
        return s.split("/", 1)[0]
    if "_" in s:
        return s.split("_", 1)[0]
    for quote in ("USDT", "USDC", "BUSD"):
        if s.endswith(quote) and len(s) > len(quote):
            return s[: -len(quote)]
    return s


def canonical(base: str, renames: Mapping[str, str]) -> str:
    """Map a renamed asset back to the name riskd stores its history under (``S`` -> ``FTM``)."""
    reverse = {new.upper(): old.upper() for old, new in renames.items()}
    b = base.upper()
    return reverse.get(b, b)


def listed_name(base: str, renames: Mapping[str, str], listed: set[str]) -> str | None:
    """The base name under which ``base`` trades on a venue today, or None if delisted there.

    Tries the name itself, then its rebrand (FTM -> S), then scaled-unit listings (1000PEPE, kPEPE).
    """
    candidates = [base.upper()]
    if base.upper() in {k.upper() for k in renames}:
        candidates.append(renames[next(k for k in renames if k.upper() == base.upper())].upper())
    for name in list(candidates):
        candidates.extend(p + name for p in _SCALED_PREFIXES)
    for name in candidates:
        if name in listed:
            return name
    return None
