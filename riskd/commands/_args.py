"""Argument types the commands' parsers share: a time flag floored to its hour, a symbol list, a port.

They live apart from ``riskd.cli`` (the registry that loads the commands) so a command module never
imports the module that imports it.
"""

from __future__ import annotations

import argparse

import pandas as pd

from riskd.config.check import symbol_name
from riskd.errors import ConfigError


def hour_arg(value: str | None, name: str) -> pd.Timestamp | None:
    """A command-line time (ISO date or time; UTC unless it says otherwise) floored to its hour.

    Raises ConfigError naming the flag, so a typo exits 2 with one line instead of a traceback.
    """
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except ValueError:
        raise ConfigError(f"invalid argument {name}: not an ISO date or time: {value!r}") from None
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).floor("h")


def csv_arg(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def symbols_arg(value: str) -> list[str]:
    """``--symbols BTC,eth``: base assets checked like ``universe.symbols`` (so ``../x`` never reaches a path)."""
    try:
        return [symbol_name(v) for v in csv_arg(value)]
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def port_arg(value: str) -> int:
    """A TCP port flag: 0 (any free port) to 65535."""
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port (a whole number from 0 to 65535)")
    return int(value)
