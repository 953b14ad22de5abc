"""Logging set-up: one line per event, key=value context, to stderr."""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once; repeated calls only change the level."""
    root = logging.getLogger()
    if not any(getattr(h, "_riskd", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S%z"))
        handler._riskd = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    # ccxt and aiohttp are chatty at DEBUG; keep them at WARNING unless asked for.
    for noisy in ("ccxt", "aiohttp", "asyncio", "urllib3", "httpx", "telegram"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
